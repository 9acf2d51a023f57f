// Package replay resets processor stages and reprocesses their input: into
// the live topics again (the same event ids, so consumers drop duplicates)
// or into shadow topics (every stage, to compare with the live output).
//
// A replay is planned first (NewPlan reads offsets, group members and the
// changelogs; nothing changes), shown (Plan.String), applied (Plan.Apply:
// members removed, shadow topics made anew, state deleted, offsets reset)
// and, optionally, run (Plan.Run: the stages run here until they reach the
// end their input had). Which topics are internal (rebuilt) or external
// (read only) comes from processors/topology; the changelog's key layout
// stays the runtime's (runtime.ChangelogCleared, runtime.ChangelogTombstone).
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/topology"
	"github.com/usagestream/usagestream/producers/interval"
)

// State says what a live replay does with the stages' state.
type State string

const (
	// Recompute deletes the state (tombstones on the changelog, so every
	// instance drops it on its next restore) and rebuilds it from the input.
	Recompute State = "recompute"
	// Restore wipes one instance's local store (Options.StateDir) and
	// restores it from the changelog.
	Restore State = "restore"
	// Keep leaves the state as it is; the input is applied to it again.
	Keep State = "keep"
)

// Options say what to replay and how.
type Options struct {
	// Kafka is the live connection (its prefix names the live topics).
	Kafka kafkaconf.Config
	// Stages to replay, by name; empty: every stage.
	Stages []string
	// At is the time the input is read again from; zero: the earliest offset.
	At time.Time
	// Offsets are explicit start offsets, [TOPIC:]PARTITION:OFFSET, in the
	// inputs of the one stage given; partitions not named keep their
	// committed offset.
	Offsets []string
	State   State
	// Shadow, when set, names the shadow the replay writes to (topics
	// <prefix>shadow-<name>.*, deleted and created again); "": the live
	// topics.
	Shadow string
	Policy rules.Policy
	// ReadContract is the interval stage's contract of records on
	// intervals.v1 (allowed units...): as the live stage's, or a replay
	// quarantines what the live stage took. Zero: the defaults.
	ReadContract interval.Check
	// PolicyName names Policy in the plan ("": the built-in policy).
	PolicyName string
	// StateDir is the state directory of the stopped instance (Restore
	// wipes its store) or of the replay's run.
	StateDir string
	// Force removes the members still registered in the groups.
	Force bool
	// NoRun says the replay stops after Apply (for the plan's text).
	NoRun bool
	Log   *slog.Logger
}

// ShadowPrefix is where the shadow name's topics, changelogs and groups live.
func ShadowPrefix(prefix, name string) string { return prefix + "shadow-" + name + "." }

// ValidShadowName reports whether s can name a shadow (and so a topic).
func ValidShadowName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// stagePlan is one stage's part of a plan.
type stagePlan struct {
	name     string
	group    string
	inputs   []string
	members  []kadm.DescribedGroupMember
	commits  map[string]map[int32]int64 // committed now, -1: none
	targets  map[string]map[int32]int64 // where the group is reset to
	ends     map[string]map[int32]int64 // the input's end offsets at planning
	left     map[string]map[int32]int64 // records to process per partition (exact up to countExactly)
	again    map[string]map[int32]int64 // of them, records processed before (exact up to countExactly)
	tombs    map[int32][][]byte         // changelog keys to delete (recompute)
	tombSkip int64                      // changelog entries already deleted
	dropped  []string                   // repartition outputs not written again
}

// Plan is a replay worked out and not yet applied.
type Plan struct {
	opts    Options
	kc      kafkaconf.Config // the connection of the stages run (shadow prefix for shadows)
	live    topology.Topology
	run     topology.Topology // the topology the stages run with (the shadow's for shadows)
	shadow  bool
	stages  []*stagePlan
	recreat []topics.Spec // shadow topics created (after deleting the old ones)
	delete  []string      // shadow topics deleted first
	groups  []string      // shadow groups deleted first
	policy  PolicyInfo    // the policy the replay runs with
	// livePolicy is what the live processors published (PolicyTopic); nil
	// when none did, and for a shadow replay (it does not touch them).
	livePolicy *PolicyInfo
}

// Policy is the policy the replay runs with, by file and hash.
func (plan *Plan) Policy() PolicyInfo { return plan.policy }

// PolicyMismatch says why the replay would write the live topics with a
// policy other than the one the live processors run with: events written by
// two policies would then mix in the same topics. "" when it would not (a
// shadow replay, the same policy, or no published policy to compare with).
func (plan *Plan) PolicyMismatch() string {
	if plan.shadow || plan.livePolicy == nil || plan.livePolicy.SHA256 == plan.policy.SHA256 {
		return ""
	}
	return fmt.Sprintf("the replay's policy %s is not the live processors' %s: its events would mix with theirs in the live topics. Replay with their policy, replay into a shadow (--output shadow), or restart the processors with the new policy first", plan.policy, *plan.livePolicy)
}

// NewPlan works out a replay: the stages, their offsets now and after, the
// group members, the changelog entries to delete, the shadow topics.
// Nothing changes.
func NewPlan(ctx context.Context, adm *kadm.Client, opts Options) (*Plan, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	shadow := opts.Shadow != ""
	if shadow && opts.State != Recompute {
		return nil, errors.New("a shadow replay always recomputes the state (the shadow starts empty)")
	}
	if opts.State == Restore && opts.StateDir == "" {
		return nil, errors.New("restoring the state wipes the local store of an instance: give its state directory")
	}
	if shadow && !ValidShadowName(opts.Shadow) {
		return nil, fmt.Errorf("shadow %q: use letters, digits, '-' and '_' only", opts.Shadow)
	}
	live := topology.New(opts.Kafka.TopicPrefix)
	plan := &Plan{opts: opts, kc: opts.Kafka, live: live, run: live, shadow: shadow,
		policy: PolicyInfo{File: opts.PolicyName, SHA256: PolicyHash(opts.Policy)}}
	if !shadow {
		lp, ok, err := LivePolicy(ctx, opts.Kafka)
		if err != nil {
			return nil, fmt.Errorf("reading the live processors' policy: %w", err)
		}
		if ok {
			plan.livePolicy = &lp
		}
	}
	if shadow {
		plan.kc.TopicPrefix = ShadowPrefix(live.Prefix, opts.Shadow)
		plan.run = topology.New(plan.kc.TopicPrefix)
	}
	names := live.StageNames()
	selected := map[string]bool{}
	for _, s := range opts.Stages {
		if !slices.Contains(names, s) {
			return nil, fmt.Errorf("no stage %q: the stages are %s", s, strings.Join(names, ", "))
		}
		selected[s] = true
	}
	if len(selected) == 0 {
		for _, n := range names {
			selected[n] = true
		}
	}
	if shadow && len(selected) != len(names) {
		return nil, fmt.Errorf("a shadow replay runs every stage (%s): the shadow pipeline starts from the live input", strings.Join(names, ", "))
	}
	if len(opts.Offsets) > 0 && len(selected) != 1 {
		return nil, errors.New("--offsets applies to the input of one stage: name exactly one stage")
	}
	for _, st := range live.Stages {
		if !selected[st.Name] {
			continue
		}
		sp := &stagePlan{name: st.Name, commits: map[string]map[int32]int64{}, targets: map[string]map[int32]int64{}, ends: map[string]map[int32]int64{}}
		if shadow {
			// The shadow stage reads the live external input and the
			// shadow's own internal topics.
			ss := plan.run.MustStage(st.Name)
			for i, in := range st.Inputs {
				if live.Internal(in) {
					sp.inputs = append(sp.inputs, ss.Inputs[i])
				} else {
					sp.inputs = append(sp.inputs, in)
				}
			}
			sp.group = ss.Group(plan.kc.TopicPrefix)
		} else {
			sp.inputs = slices.Clone(st.Inputs)
			sp.group = st.Group(live.Prefix)
			for _, out := range st.Outputs {
				if live.Internal(out) {
					sp.dropped = append(sp.dropped, out)
				}
			}
		}
		if err := plan.planOffsets(ctx, adm, sp); err != nil {
			return nil, err
		}
		if !shadow {
			gs, err := adm.DescribeGroups(ctx, sp.group)
			if err != nil {
				return nil, fmt.Errorf("describing group %s: %w", sp.group, err)
			}
			if d, ok := gs[sp.group]; ok && d.Err == nil {
				sp.members = d.Members
			}
			if opts.State == Recompute {
				if err := planTombstones(ctx, opts.Kafka, st.Changelog, sp); err != nil {
					return nil, err
				}
			}
		}
		plan.stages = append(plan.stages, sp)
	}
	if shadow {
		if err := plan.planShadowTopics(ctx, adm); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// parseExplicitOffsets reads --offsets values, [TOPIC:]PARTITION:OFFSET, into
// offsets by input topic and partition. TOPIC may leave out the prefix; it
// is needed only when the stage reads more than one input.
func parseExplicitOffsets(values []string, prefix string, sp *stagePlan) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	for _, o := range values {
		f := strings.Split(o, ":")
		topic := ""
		switch len(f) {
		case 2:
			if len(sp.inputs) != 1 {
				return nil, fmt.Errorf("--offsets %q: stage %s reads %s; write TOPIC:PARTITION:OFFSET", o, sp.name, strings.Join(sp.inputs, " and "))
			}
			topic = sp.inputs[0]
		case 3:
			for _, in := range sp.inputs {
				if f[0] == in || prefix+f[0] == in {
					topic = in
				}
			}
			if topic == "" {
				return nil, fmt.Errorf("--offsets %q: stage %s reads %s, not %s", o, sp.name, strings.Join(sp.inputs, " and "), f[0])
			}
			f = f[1:]
		default:
			return nil, fmt.Errorf("--offsets %q: write [TOPIC:]PARTITION:OFFSET, e.g. 3:1200", o)
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || off < 0 {
			return nil, fmt.Errorf("--offsets %q: write [TOPIC:]PARTITION:OFFSET, e.g. 3:1200", o)
		}
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][int32(p)] = off
	}
	return out, nil
}

// planOffsets decides where each input partition of a stage restarts.
func (plan *Plan) planOffsets(ctx context.Context, adm *kadm.Client, sp *stagePlan) error {
	opts := plan.opts
	committed, err := adm.FetchOffsets(ctx, sp.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // a group that never committed: nothing to show
	}
	if err != nil && !plan.shadow {
		return fmt.Errorf("fetching the committed offsets of group %s: %w", sp.group, err)
	}
	explicit, err := parseExplicitOffsets(opts.Offsets, plan.kc.TopicPrefix, sp)
	if err != nil {
		return err
	}
	at := opts.At
	for _, in := range sp.inputs {
		fresh := plan.shadow && plan.run.Internal(in) // a shadow topic made anew
		sp.commits[in] = map[int32]int64{}
		sp.targets[in] = map[int32]int64{}
		sp.ends[in] = map[int32]int64{}
		if fresh {
			continue // read from its start; it is empty now
		}
		starts, err := adm.ListStartOffsets(ctx, in)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return fmt.Errorf("listing the offsets of %s (does it exist?): %w", in, err)
		}
		ends, err := adm.ListEndOffsets(ctx, in)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return fmt.Errorf("listing the offsets of %s: %w", in, err)
		}
		var after kadm.ListedOffsets
		if !at.IsZero() {
			if after, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), in); err == nil {
				err = after.Error()
			}
			if err != nil {
				return fmt.Errorf("finding the offsets of %s after %s: %w", in, at.Format(time.RFC3339), err)
			}
		}
		var perr error
		starts.Each(func(s kadm.ListedOffset) {
			e, _ := ends.Lookup(in, s.Partition)
			sp.ends[in][s.Partition] = e.Offset
			cur := int64(-1)
			if o, ok := committed.Lookup(in, s.Partition); ok && o.Err == nil {
				cur = o.At
			}
			sp.commits[in][s.Partition] = cur
			target := s.Offset
			switch {
			case len(opts.Offsets) > 0:
				off, ok := explicit[in][s.Partition]
				if !ok {
					if cur < 0 {
						return // not committed, not named: the group starts at the beginning anyway
					}
					off = cur
				}
				if off < s.Offset || off > e.Offset {
					perr = fmt.Errorf("--offsets %d:%d: partition %d of %s holds offsets %d to %d", s.Partition, off, s.Partition, in, s.Offset, e.Offset)
				}
				target = off
			case !at.IsZero():
				a, _ := after.Lookup(in, s.Partition)
				target = a.Offset
				if target < 0 || target > e.Offset {
					target = e.Offset
				}
			}
			sp.targets[in][s.Partition] = target
		})
		if perr != nil {
			return perr
		}
		if err := plan.countLeft(ctx, sp, in); err != nil {
			return err
		}
		for p := range explicit[in] {
			if _, ok := sp.commits[in][p]; !ok {
				return fmt.Errorf("--offsets: %s has no partition %d", in, p)
			}
		}
		if !plan.shadow && plan.live.Internal(in) && opts.State == Recompute {
			for p, t := range sp.targets[in] {
				if s, _ := starts.Lookup(in, p); t == s.Offset && s.Offset > 0 {
					return fmt.Errorf("%s[%d] starts at offset %d (older records were deleted): recomputing stage %s from it would miss them; replay with --output shadow, which recomputes every stage from the live input", in, p, s.Offset, sp.name)
				}
			}
		}
	}
	return nil
}

// countExactly bounds the offsets per partition whose records the plan
// counts by reading them; a longer range is estimated by its offsets (a
// commit marker per transaction too many).
const countExactly = 10_000

// countLeft works out how many records of in each partition of sp holds
// from its target to its end. Offsets are not records (commit markers,
// aborted records): a group caught up on a transactional input stands an
// offset short of the end with nothing left to process.
func (plan *Plan) countLeft(ctx context.Context, sp *stagePlan, in string) error {
	if sp.left == nil {
		sp.left = map[string]map[int32]int64{}
	}
	left := map[int32]int64{}
	from, to := map[int32]int64{}, map[int32]int64{}
	for p, t := range sp.targets[in] {
		n := max(0, sp.ends[in][p]-t)
		left[p] = n
		if n > 0 && n <= countExactly {
			from[p], to[p] = t, sp.ends[in][p]
		}
	}
	if len(from) > 0 {
		exact, err := consume.CountReadable(ctx, plan.kc, in, from, to)
		if err != nil {
			return fmt.Errorf("counting the records of %s to process: %w", in, err)
		}
		maps.Copy(left, exact)
	}
	sp.left[in] = left
	// Of them, those the group had processed (between the reset point and
	// its committed offset): offsets overstate them by a commit marker per
	// transaction, so they are counted too when few.
	if sp.again == nil {
		sp.again = map[string]map[int32]int64{}
	}
	again := map[int32]int64{}
	from, to = map[int32]int64{}, map[int32]int64{}
	for p, t := range sp.targets[in] {
		cur := sp.commits[in][p]
		n := max(0, min(cur, sp.ends[in][p])-t)
		again[p] = n
		if n > 0 && n <= countExactly {
			from[p], to[p] = t, min(cur, sp.ends[in][p])
		}
	}
	if len(from) > 0 {
		exact, err := consume.CountReadable(ctx, plan.kc, in, from, to)
		if err != nil {
			return fmt.Errorf("counting the records of %s processed before: %w", in, err)
		}
		maps.Copy(again, exact)
	}
	sp.again[in] = again
	return nil
}

// planTombstones lists every state, timer and event time on the stage's
// changelog: deleting them makes every instance's store empty on its next
// restore, so the state is rebuilt from the input alone.
func planTombstones(ctx context.Context, kc kafkaconf.Config, changelog string, sp *stagePlan) error {
	latest := map[int32]map[string]bool{} // key -> holds state
	err := consume.Each(ctx, kc, changelog, func(r *kgo.Record) {
		m := latest[r.Partition]
		if m == nil {
			m = map[string]bool{}
			latest[r.Partition] = m
		}
		m[string(r.Key)] = !runtime.ChangelogCleared(r.Key, r.Value)
	})
	if err != nil {
		return fmt.Errorf("reading changelog %s: %w", changelog, err)
	}
	sp.tombs = map[int32][][]byte{}
	for p, m := range latest {
		for k, holds := range m {
			if holds {
				sp.tombs[p] = append(sp.tombs[p], []byte(k))
			} else {
				sp.tombSkip++
			}
		}
	}
	return nil
}

// planShadowTopics lists the shadow's old topics and groups (deleted first)
// and the topics to create: every topic the stages write, with the live
// input's partition count (the stages need co-partitioned topics).
func (plan *Plan) planShadowTopics(ctx context.Context, adm *kadm.Client) error {
	sp := plan.kc.TopicPrefix
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	for _, t := range tds.Names() {
		if strings.HasPrefix(t, sp) {
			plan.delete = append(plan.delete, t)
		}
	}
	slices.Sort(plan.delete)
	lgs, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("listing groups: %w", err)
	}
	for _, g := range lgs.Groups() {
		if strings.HasPrefix(g, sp) {
			plan.groups = append(plan.groups, g)
		}
	}
	slices.Sort(plan.groups)
	// The shadow gets what the stages write (events, repartition and
	// quarantine topics; the runtime makes the changelogs); the producers'
	// topics stay live.
	for _, x := range plan.run.Topics {
		switch x.Kind {
		case topology.Event, topology.Repartition, topology.Quarantine:
			plan.recreat = append(plan.recreat, x.Spec())
		}
	}
	return nil
}

// Members lists the groups of the plan that have members, with their
// members: a replay must not run beside live processors.
func (plan *Plan) Members() []string {
	var live []string
	for _, s := range plan.stages {
		if len(s.members) > 0 {
			live = append(live, fmt.Sprintf("%s (%s)", s.group, memberNames(s.members)))
		}
	}
	return live
}

func memberNames(ms []kadm.DescribedGroupMember) string {
	var out []string
	for _, m := range ms {
		if m.InstanceID != nil {
			out = append(out, *m.InstanceID)
		} else {
			out = append(out, m.MemberID)
		}
	}
	return strings.Join(out, ", ")
}

// String is the plan for an operator to read before it is applied.
func (plan *Plan) String() string {
	var b strings.Builder
	opts := plan.opts
	b.WriteString("Replay plan\n")
	fmt.Fprintf(&b, "  policy: %s\n", plan.policy)
	if plan.shadow {
		fmt.Fprintf(&b, "  output: shadow topics %s* (the live topics are not touched)\n", plan.kc.TopicPrefix)
		if len(plan.delete) > 0 {
			fmt.Fprintf(&b, "  delete the shadow's old topics: %s\n", strings.Join(plan.delete, ", "))
		}
		if len(plan.groups) > 0 {
			fmt.Fprintf(&b, "  delete the shadow's old groups: %s\n", strings.Join(plan.groups, ", "))
		}
	} else {
		b.WriteString("  output: the live topics again, with the same event ids (consumers drop duplicates by event_id)\n")
		switch {
		case plan.livePolicy == nil:
			fmt.Fprintf(&b, "  the live processors' policy: unknown (none published on %s; processors publish theirs when they start)\n", PolicyTopic(opts.Kafka.TopicPrefix))
		case plan.livePolicy.SHA256 == plan.policy.SHA256:
			fmt.Fprintf(&b, "  the live processors' policy: the same, %s\n", *plan.livePolicy)
		default:
			fmt.Fprintf(&b, "  the live processors' policy: %s, published by %s at %s: NOT the replay's\n", *plan.livePolicy, plan.livePolicy.Host, plan.livePolicy.At.Format(time.RFC3339))
		}
	}
	for _, sp := range plan.stages {
		st := plan.live.MustStage(sp.name)
		fmt.Fprintf(&b, "  stage %s (group %s, members: %d)\n", sp.name, sp.group, len(sp.members))
		for _, in := range sp.inputs {
			if len(sp.targets[in]) == 0 {
				fmt.Fprintf(&b, "    input %s: from its start (a new shadow topic)\n", in)
				continue
			}
			var again, total int64
			var parts []string
			for _, p := range slices.Sorted(maps.Keys(sp.targets[in])) {
				cur, to := sp.commits[in][p], sp.targets[in][p]
				total += sp.left[in][p]
				curS := "none"
				if cur >= 0 {
					curS = strconv.FormatInt(cur, 10)
					again += sp.again[in][p]
				}
				parts = append(parts, fmt.Sprintf("%d: %s -> %d", p, curS, to))
			}
			fmt.Fprintf(&b, "    input %s: offsets per partition (committed -> reset) [%s]; about %d records to process, %d of them processed before\n", in, strings.Join(parts, ", "), total, again)
		}
		switch {
		case plan.shadow:
			b.WriteString("    state: new and empty, rebuilt from the input\n")
		case opts.State == Recompute:
			n := 0
			for _, ks := range sp.tombs {
				n += len(ks)
			}
			fmt.Fprintf(&b, "    state: deleted (%d tombstones on %s; every instance drops it on its next restore), rebuilt from the input\n", n, st.Changelog)
			if !opts.At.IsZero() || len(opts.Offsets) > 0 {
				b.WriteString("    warning: the input before the reset point will not be in the rebuilt state\n")
			}
		case opts.State == Restore:
			fmt.Fprintf(&b, "    state: local store %s deleted, restored from %s\n", filepath.Join(opts.StateDir, sp.name, "pebble"), st.Changelog)
		default:
			b.WriteString("    state: kept as it is; the input is applied to it again\n")
		}
		if len(sp.dropped) > 0 {
			fmt.Fprintf(&b, "    outputs to repartition topics are not written again (the next stages read the records already there): %s\n", strings.Join(sp.dropped, ", "))
		}
	}
	if opts.NoRun {
		b.WriteString("  then: nothing; the processors reprocess when started\n")
	} else {
		b.WriteString("  then: run the stages here until they reach the end their input has now, and exit\n")
	}
	return b.String()
}

// Apply carries the plan out: members removed (Options.Force), shadow
// topics made anew, tombstones written, local stores wiped, offsets reset.
// It refuses when groups have members and Force is not set.
func (plan *Plan) Apply(ctx context.Context, adm *kadm.Client) error {
	log := plan.opts.Log
	if live := plan.Members(); len(live) > 0 && !plan.opts.Force {
		return fmt.Errorf("groups have members: %s; stop their processors first", strings.Join(live, "; "))
	}
	for _, sp := range plan.stages {
		if len(sp.members) == 0 {
			continue
		}
		var ids []string
		for _, m := range sp.members {
			if m.InstanceID == nil {
				// Only static members can be removed by an admin; a dynamic
				// one is a live consumer that is not usagestream's.
				return fmt.Errorf("group %s has member %s without a static instance id: it is no usagestream processor; stop it", sp.group, m.MemberID)
			}
			ids = append(ids, *m.InstanceID)
		}
		if _, err := adm.LeaveGroup(ctx, kadm.LeaveGroup(sp.group).InstanceIDs(ids...)); err != nil {
			return fmt.Errorf("removing the members of group %s (--force): %w", sp.group, err)
		}
		log.Info("removed group members", "group", sp.group, "members", ids)
	}
	if plan.shadow {
		if err := plan.recreateShadow(ctx, adm); err != nil {
			return err
		}
	}
	for _, sp := range plan.stages {
		if len(sp.tombs) > 0 {
			if err := writeTombstones(ctx, plan.opts.Kafka, plan.live.MustStage(sp.name).Changelog, sp.tombs); err != nil {
				return err
			}
		}
		if plan.opts.State == Restore && !plan.shadow {
			dir := filepath.Join(plan.opts.StateDir, sp.name, "pebble")
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("wiping the local store %s: %w", dir, err)
			}
		}
		offs := kadm.Offsets{}
		for in, ps := range sp.targets {
			for p, o := range ps {
				offs.Add(kadm.Offset{Topic: in, Partition: p, At: o, LeaderEpoch: -1})
			}
		}
		if len(offs) == 0 {
			continue
		}
		if err := adm.CommitAllOffsets(ctx, sp.group, offs); err != nil {
			return fmt.Errorf("resetting the offsets of group %s (are its processors stopped?): %w", sp.group, err)
		}
		log.Info("group offsets reset", "group", sp.group)
	}
	return nil
}

// recreateShadow deletes the shadow's old topics and groups and creates its
// topics again, empty.
func (plan *Plan) recreateShadow(ctx context.Context, adm *kadm.Client) error {
	if len(plan.groups) > 0 {
		if _, err := adm.DeleteGroups(ctx, plan.groups...); err != nil {
			return fmt.Errorf("deleting the shadow's groups: %w", err)
		}
	}
	if len(plan.delete) > 0 {
		resp, err := adm.DeleteTopics(ctx, plan.delete...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("deleting the shadow's topics: %w", err)
		}
		// Deletion is asynchronous on a real cluster: wait until they are
		// gone, or the creation below would find them still there.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			tds, err := adm.ListTopics(ctx, plan.delete...)
			if err != nil {
				return fmt.Errorf("listing topics: %w", err)
			}
			gone := true
			for _, td := range tds {
				if td.Err == nil {
					gone = false
				}
			}
			if gone {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("the shadow's old topics are still there 2 minutes after their deletion: check the cluster")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	tds, err := adm.ListTopics(ctx, plan.live.Names.Billing)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	parts := int32(-1)
	for _, td := range tds {
		if td.Err != nil {
			return fmt.Errorf("topic %s: %w ('usagestream run' creates it)", td.Topic, td.Err)
		}
		parts = int32(len(td.Partitions))
	}
	return topics.Ensure(ctx, adm, plan.recreat, parts, -1)
}

// writeTombstones deletes the given changelog keys.
func writeTombstones(ctx context.Context, kc kafkaconf.Config, topic string, tombs map[int32][][]byte) error {
	cl, err := kc.NewClient(ctx, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	var rs []*kgo.Record
	for p, keys := range tombs {
		for _, k := range keys {
			rs = append(rs, runtime.ChangelogTombstone(topic, p, k))
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("writing tombstones to %s: %w", topic, err)
	}
	return nil
}
