package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/usagestream/usagestream/processors/topology"
)

// TestHelpListsEveryStage: the help of the commands that take or run
// stages names each stage of the topology (it once listed three of four).
func TestHelpListsEveryStage(t *testing.T) {
	for _, cmd := range []string{"replay", "process"} {
		t.Run(cmd, func(t *testing.T) {
			var out bytes.Buffer
			exited := false
			var c cli
			k, err := kong.New(&c, append(kongOptions(), kong.Writers(&out, &out), kong.Exit(func(int) { exited = true }))...)
			if err != nil {
				t.Fatal(err)
			}
			// --help prints the help and exits (here: returns with the
			// exit hook called).
			_, _ = k.Parse([]string{cmd, "--help"})
			if !exited {
				t.Fatal("--help did not exit")
			}
			help := out.String()
			for _, s := range topology.New("").StageNames() {
				if !strings.Contains(help, s) {
					t.Errorf("%s --help does not name stage %s:\n%s", cmd, s, help)
				}
			}
		})
	}
}
