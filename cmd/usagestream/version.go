package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version is what --version prints: the module version, the commit the
// binary was built from (with "+dirty" when the work tree had changes) and
// its time, from the build information the go command stamps.
func version(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "usagestream (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "usagestream %s", v)
	switch {
	case rev == "":
		b.WriteString(", commit unknown (built without VCS stamping: go build -buildvcs=true in the git checkout)")
	default:
		fmt.Fprintf(&b, ", commit %s", rev)
		if dirty {
			b.WriteString("+dirty")
		}
		if at != "" {
			fmt.Fprintf(&b, " (%s)", at)
		}
	}
	fmt.Fprintf(&b, ", %s", bi.GoVersion)
	return b.String()
}
