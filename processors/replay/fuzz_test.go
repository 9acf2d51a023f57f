package replay

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseExplicitOffsets: `replay --offsets` values, [TOPIC:]PARTITION:OFFSET,
// for a stage reading one input (single) or two. values holds up to four
// flags separated by newlines.
//
// Properties: no panic; an error quotes the value that is wrong and says
// what to write; on success, every topic is an input of the stage, every
// partition and offset is non-negative and is what the value says (a
// partition fits int32), and formatting the result as flags parses back to
// the same offsets.
func FuzzParseExplicitOffsets(f *testing.F) {
	for _, s := range []string{"3:1200", "0:0", "billing.v1:2:5", "p.billing.v1:2:5", "intervals.v1:1:9\n0:1",
		"-1:5", "1:-5", "2147483648:1", "1:9223372036854775808", "a:b", "::", "1", "x:1:2:3", "1:2\n1:3", "+1:+2", "1:0x10", ""} {
		f.Add(true, s)
		f.Add(false, s)
	}
	f.Fuzz(func(t *testing.T, single bool, values string) {
		if len(values) > 1<<12 {
			return
		}
		const prefix = "p."
		sp := &stagePlan{name: "interval", inputs: []string{prefix + "billing.v1", prefix + "intervals.v1"}}
		if single {
			sp = &stagePlan{name: "servicepoint", inputs: []string{prefix + "billing.v1"}}
		}
		vs := strings.Split(values, "\n")
		if len(vs) > 4 {
			return
		}
		out, err := parseExplicitOffsets(vs, prefix, sp)
		if err != nil {
			msg := err.Error()
			quoted := false
			for _, v := range vs {
				if strings.Contains(msg, fmt.Sprintf("--offsets %q", v)) {
					quoted = true
				}
			}
			if !quoted || !strings.Contains(msg, "PARTITION:OFFSET") && !strings.Contains(msg, "reads") {
				t.Fatalf("error does not quote the value or say what to write: %q", msg)
			}
			return
		}
		var again []string
		for topic, parts := range out {
			found := false
			for _, in := range sp.inputs {
				found = found || in == topic
			}
			if !found {
				t.Fatalf("offsets for %q, which the stage does not read", topic)
			}
			for p, off := range parts {
				if p < 0 || off < 0 {
					t.Fatalf("negative partition or offset: %s %d:%d", topic, p, off)
				}
				again = append(again, topic+":"+strconv.Itoa(int(p))+":"+strconv.FormatInt(off, 10))
			}
		}
		// The last value for a partition wins: each value's numbers are in out.
		for _, v := range vs {
			f := strings.Split(v, ":")
			p, _ := strconv.ParseInt(f[len(f)-2], 10, 32)
			found := false
			for _, parts := range out {
				_, ok := parts[int32(p)]
				found = found || ok
			}
			if !found {
				t.Fatalf("value %q: partition %d missing from %v", v, p, out)
			}
		}
		back, err := parseExplicitOffsets(again, prefix, sp)
		if err != nil {
			t.Fatalf("formatted offsets %q do not parse: %v", again, err)
		}
		if fmt.Sprint(back) != fmt.Sprint(out) {
			t.Fatalf("round trip: %v, want %v", back, out)
		}
	})
}
