package topology

import (
	"errors"
	"fmt"
)

// Validate checks that the topology is one the runtime can run:
//   - topic and stage names are unique and not empty;
//   - a stage reads only declared input or repartition topics, keyed by the
//     stage's key, and writes only declared event or repartition topics (the
//     runtime writes the changelog and quarantine topics, and refuses any
//     other output);
//   - each stage has a changelog and a quarantine topic of its own;
//   - each repartition topic has exactly one producing and one consuming
//     stage, and the producer comes first in Stages (data-flow order, which
//     the catch-up wait and the replay follow);
//   - co-partitioned topics that declare a partition count agree on it.
//
// The error lists every problem found.
func (t Topology) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	topics := map[string]Topic{}
	for _, x := range t.Topics {
		switch {
		case x.Name == "":
			bad("a topic of kind %s has no name", x.Kind)
		case topics[x.Name].Name != "":
			bad("topic %s is declared twice", x.Name)
		}
		if _, ok := kindNames[x.Kind]; !ok {
			bad("topic %s has no kind", x.Name)
		}
		topics[x.Name] = x
	}
	pos := map[string]int{}
	owner := map[string]string{} // changelog or quarantine topic -> stage
	for i, s := range t.Stages {
		if s.Name == "" {
			bad("stage %d has no name", i)
			continue
		}
		if _, dup := pos[s.Name]; dup {
			bad("stage %s is declared twice", s.Name)
		}
		pos[s.Name] = i
		if len(s.Inputs) == 0 {
			bad("stage %s reads no topic", s.Name)
		}
		for _, in := range s.Inputs {
			x, ok := topics[in]
			switch {
			case !ok:
				bad("stage %s reads undeclared topic %s", s.Name, in)
			case x.Kind != Input && x.Kind != Repartition:
				bad("stage %s reads %s, a %s topic: stages read input and repartition topics", s.Name, in, x.Kind)
			case x.Key != s.Key:
				bad("stage %s is keyed by %s but reads %s, keyed by %s: repartition it first", s.Name, s.Key, in, x.Key)
			}
		}
		for _, out := range s.Outputs {
			x, ok := topics[out]
			switch {
			case !ok:
				bad("stage %s writes undeclared topic %s", s.Name, out)
			case x.Kind != Event && x.Kind != Repartition:
				bad("stage %s writes %s, a %s topic: Process writes event and repartition topics only", s.Name, out, x.Kind)
			}
		}
		for _, own := range []struct {
			topic string
			kind  Kind
		}{{s.Changelog, Changelog}, {s.Quarantine, Quarantine}} {
			x, ok := topics[own.topic]
			switch {
			case !ok:
				bad("stage %s: its %s topic %q is not declared", s.Name, own.kind, own.topic)
			case x.Kind != own.kind:
				bad("stage %s: its %s topic %s is declared as a %s topic", s.Name, own.kind, own.topic, x.Kind)
			case owner[own.topic] != "":
				bad("stages %s and %s share the %s topic %s", owner[own.topic], s.Name, own.kind, own.topic)
			}
			owner[own.topic] = s.Name
		}
	}
	for _, x := range t.Topics {
		if x.Kind != Repartition {
			continue
		}
		from, to := t.Producers(x.Name), t.Consumers(x.Name)
		if len(from) != 1 || len(to) != 1 {
			bad("repartition topic %s must have one producing and one consuming stage; it has producers %v and consumers %v", x.Name, from, to)
			continue
		}
		if pos[from[0]] >= pos[to[0]] {
			bad("stage %s reads %s from stage %s, which comes after it: list the stages in data-flow order", to[0], x.Name, from[0])
		}
	}
	for _, g := range t.CoPartitioned() {
		first, n := "", int32(0)
		for _, name := range g {
			c := topics[name].Partitions
			if c == 0 {
				continue
			}
			if first == "" {
				first, n = name, c
			} else if c != n {
				bad("%s declares %d partitions and %s %d, but they are co-partitioned (%v)", name, c, first, n, g)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid topology: %w", errors.Join(errs...))
	}
	return nil
}
