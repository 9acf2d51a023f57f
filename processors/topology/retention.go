package topology

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Retention defaults, set when the topics are created (run); existing
// topics keep theirs, and CheckRetention warns about those that defeat
// replay. Broker defaults (7 days) are no choice for usagestream: a replay
// "from the earliest offset" would silently start a week back.
const (
	// InputRetention keeps the inputs (billing, intervals) forever: they
	// are the record of truth every state and event is recomputed from
	// ('usagestream replay'), and a bill may be corrected years later.
	InputRetention = -1 * time.Millisecond
	// EventRetention keeps the event topics 90 days: long enough for a new
	// consumer (a sink added later) to see three billing cycles, and for a
	// sink that was down for weeks to catch up. Older events are recomputed
	// from the inputs by a replay when needed (same event ids).
	EventRetention = 90 * 24 * time.Hour
)

// retentionMs is d as retention.ms: -1 for forever.
func retentionMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// setRetention gives each input, repartition and event topic its default
// retention. A repartition topic is a stage's input like billing.v1 is: a
// replay of the stages that read it ('replay --stages') reads it from the
// earliest offset, so it is kept as long (RetentionWarnings warns about
// anything shorter; creating it shorter would warn about ourselves).
func (t *Topology) setRetention() {
	for i := range t.Topics {
		x := &t.Topics[i]
		var d time.Duration
		switch x.Kind {
		case Input, Repartition:
			d = InputRetention
		case Event:
			d = EventRetention
		default:
			continue
		}
		x.Config = map[string]string{"retention.ms": retentionMs(d), "cleanup.policy": "delete"}
	}
}

// ParseRetention reads --retention values, TOPIC=DURATION, where TOPIC is a
// topic name without the prefix (billing.v1) and DURATION a Go duration
// with d for days allowed (720h, 30d) or "forever". It returns retention.ms
// per full topic name.
func ParseRetention(values []string, t Topology) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		name, dur, ok := strings.Cut(v, "=")
		if !ok {
			return nil, fmt.Errorf("--retention %q: want TOPIC=DURATION, like billing.v1=forever or eligibility.v1=30d", v)
		}
		full := t.Prefix + strings.TrimPrefix(name, t.Prefix)
		x, ok := t.Topic(full)
		if !ok || x.Kind == Changelog || x.Kind == Checkpoint {
			return nil, fmt.Errorf("--retention %q: %s is no topic whose retention can be set (the inputs, events, records, repartition and quarantine topics can)", v, name)
		}
		var d time.Duration
		switch {
		case dur == "forever" || dur == "-1":
			d = -1
		case strings.HasSuffix(dur, "d"):
			n, err := strconv.Atoi(strings.TrimSuffix(dur, "d"))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("--retention %q: %q is no number of days", v, dur)
			}
			d = time.Duration(n) * 24 * time.Hour
		default:
			var err error
			if d, err = time.ParseDuration(dur); err != nil || d <= 0 {
				return nil, fmt.Errorf("--retention %q: want a positive duration (720h, 30d) or forever", v)
			}
		}
		out[full] = retentionMs(d)
	}
	return out, nil
}

// WithRetention returns t with the retention.ms of the named topics
// replaced (ParseRetention's result).
func (t Topology) WithRetention(ms map[string]string) Topology {
	t.Topics = slices.Clone(t.Topics)
	for i := range t.Topics {
		x := &t.Topics[i]
		if v, ok := ms[x.Name]; ok {
			cfg := map[string]string{"cleanup.policy": "delete"}
			for k, old := range x.Config {
				cfg[k] = old
			}
			cfg["retention.ms"] = v
			x.Config = cfg
		}
	}
	return t
}

// RetentionWarnings checks the described configs of existing topics
// (topic -> config -> value) against what replay and restore need, and
// says for each topic that defeats them what is lost and what to change.
func (t Topology) RetentionWarnings(configs map[string]map[string]string) []string {
	var out []string
	for _, x := range t.Topics {
		cfg, ok := configs[x.Name]
		if !ok {
			continue
		}
		policy := cfg["cleanup.policy"]
		switch x.Kind {
		case Input, Repartition:
			what := "'usagestream replay' from the earliest offset"
			if x.Kind == Repartition {
				what = "'usagestream replay --stages' of the stages reading it"
			}
			if ms, err := strconv.ParseInt(cfg["retention.ms"], 10, 64); err == nil && ms >= 0 {
				out = append(out, fmt.Sprintf("topic %s keeps records %s only (retention.ms=%d): %s silently starts there; set retention.ms=-1 on it unless that loss is meant", x.Name, time.Duration(ms)*time.Millisecond, ms, what))
			}
			if b, err := strconv.ParseInt(cfg["retention.bytes"], 10, 64); err == nil && b >= 0 {
				out = append(out, fmt.Sprintf("topic %s keeps %d bytes per partition only (retention.bytes): %s silently misses what was deleted; set retention.bytes=-1", x.Name, b, what))
			}
			if strings.Contains(policy, "compact") {
				out = append(out, fmt.Sprintf("topic %s is compacted (cleanup.policy=%s): a key's older records are dropped, so %s sees only the latest of each key; set cleanup.policy=delete", x.Name, policy, what))
			}
		case Changelog:
			if policy != "" && !strings.Contains(policy, "compact") {
				out = append(out, fmt.Sprintf("changelog %s is not compacted (cleanup.policy=%s): once its retention passes, a restore from it loses state; set cleanup.policy=compact", x.Name, policy))
			}
		}
	}
	return out
}

// DescribeRetention reads the retention configs of t's topics that exist,
// for RetentionWarnings.
func (t Topology) DescribeRetention(ctx context.Context, adm *kadm.Client) (map[string]map[string]string, error) {
	var names []string
	for _, x := range t.Topics {
		names = append(names, x.Name)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describing the topics' configs: %w", err)
	}
	out := map[string]map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			continue // a topic not created yet (changelogs are made by their stage)
		}
		cfg := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				cfg[c.Key] = *c.Value
			}
		}
		out[rc.Name] = cfg
	}
	return out, nil
}
