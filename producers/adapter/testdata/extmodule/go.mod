// An adapter written in a module of its own, against the SDK's docs
// alone: TestExternalModule (producers/adapter) copies this folder, points
// the replace directive at the repository, and runs it offline.
module example.com/mdmsadapter

go 1.26

require github.com/usagestream/usagestream v0.0.0

replace github.com/usagestream/usagestream => ../../../..
