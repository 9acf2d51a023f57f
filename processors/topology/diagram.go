package topology

import (
	"fmt"
	"slices"
	"strings"
)

// Diagram renders the data flow as text: one tree per group of external
// inputs, each stage with its event outputs on one line and its repartition
// outputs leading to the stage that reads them (drawn once; later arrows
// name it). Topic names lose the prefix. The README's diagram is this
// rendering of New(""), and a test keeps it so.
func (t Topology) Diagram() string {
	var b strings.Builder
	short := func(name string) string { return strings.TrimPrefix(name, t.Prefix) }
	drawn := map[string]bool{}
	var stage func(s Stage, indent string)
	stage = func(s Stage, indent string) {
		drawn[s.Name] = true
		fmt.Fprintf(&b, "%s└─ stage %q: %s\n", indent, s.Name, s.Doc)
		indent += "     "
		var events []string
		var reparts []Topic
		var keys []string
		for _, out := range s.Outputs {
			x, _ := t.Topic(out)
			if x.Kind == Repartition {
				reparts = append(reparts, x)
			} else {
				events = append(events, short(out))
				keys = append(keys, x.Key)
			}
		}
		// One key for the line when the events share it, as they mostly do.
		if len(slices.Compact(slices.Clone(keys))) == 1 {
			events[len(events)-1] += " (key " + keys[0] + ")"
		} else {
			for i := range events {
				events[i] += " (key " + keys[i] + ")"
			}
		}
		n := len(reparts)
		if len(events) > 0 {
			n++
		}
		branch := func(i int) (string, string) {
			if i == n-1 {
				return "└─> ", "      "
			}
			return "├─> ", "│     "
		}
		i := 0
		if len(events) > 0 {
			arrow, _ := branch(i)
			fmt.Fprintf(&b, "%s%s%s\n", indent, arrow, strings.Join(events, ", "))
			i++
		}
		for _, x := range reparts {
			arrow, under := branch(i)
			i++
			line := fmt.Sprintf("%s%s%s (internal, key %s)", indent, arrow, short(x.Name), x.Key)
			for _, c := range t.Consumers(x.Name) {
				if drawn[c] {
					line += fmt.Sprintf(" ─> stage %q", c)
				}
			}
			b.WriteString(line + "\n")
			for _, c := range t.Consumers(x.Name) {
				if !drawn[c] {
					stage(t.MustStage(c), indent+under)
				}
			}
		}
	}
	fed := map[string]bool{} // external inputs drawn at the head of their stage
	for _, s := range t.Stages {
		if drawn[s.Name] || slices.ContainsFunc(s.Inputs, func(in string) bool { x, _ := t.Topic(in); return x.Kind != Input }) {
			continue
		}
		names := make([]string, len(s.Inputs))
		for i, in := range s.Inputs {
			names[i] = short(in)
			fed[in] = true
		}
		if len(names) == 1 {
			fmt.Fprintf(&b, "%s (key %s)\n", names[0], s.Key)
		} else {
			fmt.Fprintf(&b, "%s (key %s, co-partitioned)\n", strings.Join(names, " + "), s.Key)
		}
		stage(s, "  ")
	}
	// External inputs of a stage drawn under another stage's repartition
	// topic (operator holds into the customer stage).
	for _, s := range t.Stages {
		for _, in := range s.Inputs {
			if x, _ := t.Topic(in); x.Kind == Input && !fed[in] {
				fmt.Fprintf(&b, "%s (key %s) ─> stage %q\n", short(in), x.Key, s.Name)
			}
		}
	}
	var cls, qs []string
	for _, s := range t.Stages {
		cls = append(cls, short(s.Changelog))
		qs = append(qs, short(s.Quarantine))
	}
	fmt.Fprintf(&b, "state of each stage, per key: %s (internal, compacted)\n", strings.Join(cls, ", "))
	fmt.Fprintf(&b, "input a stage cannot decode: %s\n", strings.Join(qs, ", "))
	return b.String()
}
