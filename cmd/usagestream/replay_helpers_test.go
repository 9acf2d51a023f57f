package main

import "github.com/usagestream/usagestream/processors/runtime"

// groupName is the runtime's default consumer group of a stage, as the
// replay tests name it.
func groupName(prefix, stage string) string { return runtime.GroupName(prefix, stage) }
