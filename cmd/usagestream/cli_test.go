package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// model is the command tree as kong builds it from the cli struct.
func model(t *testing.T) *kong.Kong {
	t.Helper()
	var c cli
	k, err := kong.New(&c, append(kongOptions(), kong.Exit(func(int) {}))...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// eachFlag calls fn for every flag of every command, with the command path.
func eachFlag(k *kong.Kong, fn func(path string, f *kong.Flag)) {
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			fn(n.Path(), f)
		}
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	walk(k.Model.Node)
}

// sameMeaning are the variables read by flags of two names that mean the
// same: the batch size of the sinks, `run --sink-batch` and `sink --batch`.
var sameMeaning = map[string]bool{"USAGESTREAM_SINK_BATCH": true}

// TestEnvironmentVariables: every flag has an environment variable, or is
// among those the README lists as having none; no variable is shared by
// flags of different names (one variable, one meaning).
func TestEnvironmentVariables(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)These flags have no environment variable[^\n]*\n\n(.*?)\n\n`).FindSubmatch(readme)
	if m == nil {
		t.Fatal(`the README has no "These flags have no environment variable ..." list`)
	}
	listed := map[string]string{} // command path: its line
	for _, l := range strings.Split(string(m[1]), "\n") {
		if cm := regexp.MustCompile("^- `([a-z ]+)`: (.*)$").FindStringSubmatch(l); cm != nil {
			listed[cm[1]] = cm[2]
		}
	}
	byEnv := map[string]string{}
	eachFlag(model(t), func(path string, f *kong.Flag) {
		if f.Name == "help" || f.Name == "version" || f.Hidden {
			return
		}
		if len(f.Envs) == 0 {
			if !strings.Contains(listed[path], "`--"+f.Name+"`") {
				t.Errorf("%s --%s has no environment variable and the README does not list it", path, f.Name)
			}
			return
		}
		for _, e := range f.Envs {
			if other, ok := byEnv[e]; ok && other != f.Name && !sameMeaning[e] {
				t.Errorf("%s sets both --%s and --%s", e, other, f.Name)
			}
			byEnv[e] = f.Name
		}
	})
}

// TestUsageErrorsExitWithOneStatus: an unknown flag or command, or a value
// out of its set, exits 64 after a short message naming the help, not the
// whole help.
func TestUsageErrorsExitWithOneStatus(t *testing.T) {
	for _, args := range [][]string{{"ingest", "--no-such-flag", "x"}, {"no-such-command"}, {"tail"}, {"run", "--log-level", "loud"},
		{"process", "--commit-interval=1m"}, {"run", "--instances", "0"}} {
		r := runCLI(t, nil, args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitUsage, r.stderr)
		}
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; n > 3 || strings.Contains(r.stderr, "Flags:") || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%v: want a short message pointing at --help, got %d lines:\n%s", args, n, r.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, nil, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "usagestream ") || !strings.Contains(r.stdout, "commit") {
		t.Fatalf("--version: exit %d %q", r.code, r.stdout)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "7ea0af6c0ffee"}, {Key: "vcs.time", Value: "2026-12-07T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got := version(bi, true); got != "usagestream v1.4.0, commit 7ea0af6c0ffee+dirty (2026-12-07T10:00:00Z), go1.26" {
		t.Fatalf("version: %q", got)
	}
}

// TestHelpShowsTheFlagsACommandUses: gen and validate (offline) list no
// connection flag; the commands that talk to Kafka list them in a group.
func TestHelpShowsTheFlagsACommandUses(t *testing.T) {
	help := func(args ...string) string {
		var out bytes.Buffer
		var c cli
		parse(&c, append(args, "--help"), &out, &out, func(int) {})
		return out.String()
	}
	for _, cmd := range []string{"gen", "validate", "completion"} {
		h := help(cmd)
		for _, f := range []string{"--brokers", "--registry", "--tls", "--sasl", "--topic-prefix", "--kafka-log-level"} {
			if strings.Contains(h, f) {
				t.Errorf("%s --help lists %s:\n%s", cmd, f, h)
			}
		}
	}
	for _, cmd := range [][]string{{"ingest"}, {"run"}, {"tail"}, {"override", "clear"}, {"sink", "jsonl"}, {"replay"}} {
		h := help(cmd...)
		i := strings.Index(h, "Kafka and schema registry connection:")
		if i < 0 || !strings.Contains(h[i:], "--brokers") || !strings.Contains(h[i:], "--sasl-mechanism") || strings.Contains(h[i:], " --log-level=") {
			t.Errorf("%v --help: no connection group with --brokers and --sasl-mechanism:\n%s", cmd, h)
		}
	}
}

// TestCompletion: the bash script completes commands and each command's
// own flags.
func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	r := runCLI(t, nil, "completion", "bash")
	if r.code != 0 {
		t.Fatalf("completion bash: exit %d\n%s", r.code, r.stderr)
	}
	script := filepath.Join(t.TempDir(), "usagestream.bash")
	os.WriteFile(script, []byte(r.stdout), 0o644)
	complete := func(words ...string) []string {
		t.Helper()
		prog := "source " + script + "; COMP_WORDS=(" + strings.Join(quoteAll(words), " ") + "); COMP_CWORD=" +
			strings.TrimSpace(string(rune('0'+len(words)-1))) + "; _usagestream; printf '%s\\n' \"${COMPREPLY[@]}\""
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	if got := complete("usagestream", "ing"); !slices.Equal(got, []string{"ingest"}) {
		t.Errorf("usagestream ing<TAB>: %v", got)
	}
	if got := complete("usagestream", "ingest", "--wa"); !slices.Equal(got, []string{"--watch"}) {
		t.Errorf("ingest --wa<TAB>: %v", got)
	}
	if got := complete("usagestream", "gen", "--b"); len(got) != 0 {
		t.Errorf("gen --b<TAB> offers %v; gen has no --brokers", got)
	}
	if got := complete("usagestream", "override", "c"); !slices.Equal(got, []string{"clear"}) {
		t.Errorf("override c<TAB>: %v", got)
	}
}
