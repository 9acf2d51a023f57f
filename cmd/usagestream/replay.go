package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/topology"
)

type replayCmd struct {
	Stages      []string      `arg:"" optional:"" help:"Stages to replay, by name (${stages}); default: every stage."`
	To          string        `name:"to" default:"earliest" help:"Where the input is read again from: earliest, or a time (RFC 3339, YYYY-MM-DD, or a duration back from now such as 24h)."`
	Offsets     []string      `name:"offsets" placeholder:"[TOPIC:]PARTITION:OFFSET" help:"Explicit start offsets in the inputs of the one stage given (repeatable; TOPIC, with or without the prefix, is needed when the stage reads several); partitions not named keep their committed offset."`
	State       string        `name:"state" enum:"recompute,restore,keep" default:"recompute" help:"recompute: delete the stage's state (tombstones on its changelog, so every instance drops it) and rebuild it from the input; restore: wipe the local store in --state-dir and restore it from the changelog; keep: leave the state as it is."`
	Output      string        `name:"output" enum:"same,shadow" default:"same" help:"same: write into the live topics again (event ids as before, so consumers can drop duplicates); shadow: write to topics <prefix>shadow-<name>. (live topics untouched), to compare with 'usagestream diff'."`
	Shadow      string        `name:"shadow" default:"default" help:"Name of the shadow (with --output shadow): its topics are <prefix>shadow-<name>.*; they are deleted and created again."`
	Policy      string        `name:"policy" env:"USAGESTREAM_POLICY" type:"existingfile" help:"Eligibility policy (YAML) the replay runs with; default: the built-in policy. A shadow replay with another policy answers 'what would it change?'."`
	StateDir    string        `name:"state-dir" env:"USAGESTREAM_STATE_DIR" help:"State directory the replay's processors use (give the stopped instance's own to leave it up to date; required by --state restore). Default: a temporary directory, removed afterwards."`
	Force       bool          `name:"force" help:"Remove the members still registered in the groups (a stopped instance stays a member for its session timeout) instead of refusing. Never while processors run."`
	Yes         bool          `name:"yes" short:"y" help:"Do not ask for confirmation."`
	DryRun      bool          `name:"dry-run" help:"Show what would be done, and do nothing."`
	NoRun       bool          `name:"no-run" help:"Only reset offsets and state; the processors redo the work when started again. Default: the replay runs the stages until they reach the input's end as it was at the start, then exits."`
	Timeout     time.Duration `name:"timeout" default:"2h" help:"Give up when the stages have not caught up by then."`
	Quarantine  string        `name:"quarantine" placeholder:"STAGE" help:"Instead of a replay: re-feed the records stage STAGE (or sink-NAME, a sink) quarantined, from its quarantine topic <prefix>quarantine-STAGE.v1 back to their source topics, addressed to that stage only; each record is re-fed once (progress in group <prefix>refeed-STAGE). With --dry-run: list them."`
	Since       string        `name:"since" placeholder:"WHEN" help:"With --quarantine: re-feed only records quarantined since then (RFC 3339, YYYY-MM-DD, or a duration back such as 24h); never one re-fed already."`
	MetricsAddr string        `name:"metrics-addr" env:"USAGESTREAM_REPLAY_METRICS_ADDR" placeholder:"HOST:PORT" help:"Serve the processors' Prometheus metrics on http://HOST:PORT/metrics while the replay runs (127.0.0.1:8090, say); empty: not served."`
}

// replayStage is one stage's part of a replay plan.
type replayStage struct {
	name     string
	group    string
	stage    runtime.Stage // as the replay runs it (outputs rerouted or dropped)
	inputs   []string
	members  []kadm.DescribedGroupMember
	commits  map[string]map[int32]int64 // committed now, -1: none
	targets  map[string]map[int32]int64 // where the group is reset to
	ends     map[string]map[int32]int64 // the input's end offsets at planning
	tombs    map[int32][][]byte         // changelog keys to delete (recompute)
	tombSkip int64                      // changelog entries already deleted
	dropped  []string                   // repartition outputs not written again
}

type replayPlan struct {
	kc      kafkaconf.Config // the connection of the stages run (shadow prefix for shadows)
	live    kafkaconf.Config
	shadow  bool
	stages  []*replayStage
	recreat []topics.Spec // shadow topics created (after deleting the old ones)
	delete  []string      // shadow topics deleted first
	groups  []string      // shadow groups deleted first
}

func (c *replayCmd) Run(ctx context.Context, g *Globals) error {
	return c.run(ctx, g, os.Stdin, os.Stdout)
}

func (c *replayCmd) policy() (rules.Policy, error) {
	if c.Policy == "" {
		return rules.DefaultPolicy(), nil
	}
	return rules.LoadPolicy(c.Policy)
}

// shadowPrefix is where a shadow's topics, changelogs and groups live.
func shadowPrefix(prefix, name string) string { return prefix + "shadow-" + name + "." }

// repartition tells the internal topics between stages from external input.
func repartition(prefix, topic string) bool {
	return strings.HasPrefix(strings.TrimPrefix(topic, prefix), "repartition-")
}

func (c *replayCmd) run(ctx context.Context, g *Globals, stdin *os.File, out io.Writer) error {
	if c.Quarantine != "" {
		return c.requeue(ctx, g.Kafka, out) // requeue.go
	}
	if c.Since != "" {
		return errors.New("--since applies to --quarantine; a replay starts --to a time")
	}
	if c.Output == "shadow" && c.State != "recompute" {
		return errors.New("--output shadow always recomputes the state (the shadow starts empty): drop --state")
	}
	if c.State == "restore" && c.StateDir == "" {
		return errors.New("--state restore wipes the local store of an instance: give its --state-dir")
	}
	if c.Output == "shadow" && !validShadowName(c.Shadow) {
		return fmt.Errorf("--shadow %q: use letters, digits, '-' and '_' only", c.Shadow)
	}
	policy, err := c.policy()
	if err != nil {
		return err
	}
	cl, err := g.Kafka.NewClient(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	plan, err := c.plan(ctx, g.Kafka, adm, policy)
	if err != nil {
		return err
	}
	c.printPlan(out, plan)
	if c.DryRun {
		fmt.Fprintln(out, "Dry run: nothing was changed.")
		return nil
	}
	var live []string
	for _, s := range plan.stages {
		if len(s.members) > 0 {
			live = append(live, fmt.Sprintf("%s (%s)", s.group, memberNames(s.members)))
		}
	}
	if len(live) > 0 && !c.Force {
		return &exitError{code: 2, msg: fmt.Sprintf("refusing to replay: groups have members: %s. Stop the processors of these stages first (a stopped instance stays a member for its --session-timeout, 10s by default), or pass --force to remove members that are gone", strings.Join(live, "; "))}
	}
	if !c.Yes {
		ok, err := confirm(stdin, out, "Proceed? [y/N] ")
		if err != nil {
			return err
		}
		if !ok {
			return &exitError{code: 1, msg: "replay cancelled: nothing was changed"}
		}
	}
	if err := c.apply(ctx, adm, plan, out, g); err != nil {
		return err
	}
	if c.NoRun {
		fmt.Fprintln(out, "Offsets and state reset; start the processors to reprocess.")
		return nil
	}
	return c.runStages(ctx, plan, out, g)
}

func validShadowName(s string) bool {
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

// confirm asks on a terminal; elsewhere --yes is required, so that a
// script never replays by accident.
func confirm(stdin *os.File, out io.Writer, prompt string) (bool, error) {
	if stdin == nil || !isTerminal(stdin) {
		return false, &exitError{code: 2, msg: "replay needs confirmation and stdin is not a terminal: pass --yes (or --dry-run to see the plan)"}
	}
	fmt.Fprint(out, prompt)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

func (c *replayCmd) plan(ctx context.Context, live kafkaconf.Config, adm *kadm.Client, policy rules.Policy) (*replayPlan, error) {
	plan := &replayPlan{kc: live, live: live, shadow: c.Output == "shadow"}
	if plan.shadow {
		plan.kc.TopicPrefix = shadowPrefix(live.TopicPrefix, c.Shadow)
	}
	// The shadow pipeline's output schemas are registered when it is built,
	// so it is built after the shadow topics exist (apply); here the live
	// one gives the stage names and inputs.
	p, err := pipeline.New(ctx, live, policy)
	if err != nil {
		return nil, err
	}
	all := p.Stages()
	var names []string
	for _, st := range all {
		names = append(names, runtime.StageName(st))
	}
	selected := map[string]bool{}
	for _, s := range c.Stages {
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
	if plan.shadow && len(selected) != len(names) {
		return nil, fmt.Errorf("a shadow replay runs every stage (%s): the shadow pipeline starts from the live input", strings.Join(names, ", "))
	}
	if len(c.Offsets) > 0 && len(selected) != 1 {
		return nil, errors.New("--offsets applies to the input of one stage: name exactly one stage")
	}
	var at time.Time
	if c.To != "earliest" {
		if at, err = parseWhen(c.To, time.Now()); err != nil {
			return nil, fmt.Errorf("--to: %w (or earliest)", err)
		}
	}
	prefix := live.TopicPrefix
	for _, st := range all {
		name := runtime.StageName(st)
		if !selected[name] {
			continue
		}
		rs := &replayStage{name: name, commits: map[string]map[int32]int64{}, targets: map[string]map[int32]int64{}, ends: map[string]map[int32]int64{}}
		inputs := runtime.StageInputs(st)
		if plan.shadow {
			sp := shadowPrefix(prefix, c.Shadow)
			for i, in := range inputs {
				if repartition(prefix, in) {
					inputs[i] = sp + strings.TrimPrefix(in, prefix)
				}
			}
			rs.group = groupName(sp, name)
		} else {
			rs.group = groupName(prefix, name)
			rs.dropped = topology.New(prefix).OfKind(topology.Repartition)
		}
		rs.inputs = inputs
		if err := c.planOffsets(ctx, adm, plan, rs, at); err != nil {
			return nil, err
		}
		if !plan.shadow {
			gs, err := adm.DescribeGroups(ctx, rs.group)
			if err != nil {
				return nil, fmt.Errorf("describing group %s: %w", rs.group, err)
			}
			if d, ok := gs[rs.group]; ok && d.Err == nil {
				rs.members = d.Members
			}
			if c.State == "recompute" {
				if err := planTombstones(ctx, live, rs); err != nil {
					return nil, err
				}
			}
		}
		plan.stages = append(plan.stages, rs)
	}
	if plan.shadow {
		if err := c.planShadowTopics(ctx, adm, plan); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// parseExplicitOffsets reads --offsets values, [TOPIC:]PARTITION:OFFSET, into
// offsets by input topic and partition. TOPIC may leave out the prefix; it
// is needed only when the stage reads more than one input.
func parseExplicitOffsets(values []string, prefix string, rs *replayStage) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	for _, o := range values {
		f := strings.Split(o, ":")
		topic := ""
		switch len(f) {
		case 2:
			if len(rs.inputs) != 1 {
				return nil, fmt.Errorf("--offsets %q: stage %s reads %s; write TOPIC:PARTITION:OFFSET", o, rs.name, strings.Join(rs.inputs, " and "))
			}
			topic = rs.inputs[0]
		case 3:
			for _, in := range rs.inputs {
				if f[0] == in || prefix+f[0] == in {
					topic = in
				}
			}
			if topic == "" {
				return nil, fmt.Errorf("--offsets %q: stage %s reads %s, not %s", o, rs.name, strings.Join(rs.inputs, " and "), f[0])
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
func (c *replayCmd) planOffsets(ctx context.Context, adm *kadm.Client, plan *replayPlan, rs *replayStage, at time.Time) error {
	committed, err := adm.FetchOffsets(ctx, rs.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // a group that never committed: nothing to show
	}
	if err != nil && !plan.shadow {
		return fmt.Errorf("fetching the committed offsets of group %s: %w", rs.group, err)
	}
	explicit, err := parseExplicitOffsets(c.Offsets, plan.kc.TopicPrefix, rs)
	if err != nil {
		return err
	}
	for _, in := range rs.inputs {
		fresh := plan.shadow && repartition(plan.kc.TopicPrefix, in) // a shadow topic made anew
		rs.commits[in] = map[int32]int64{}
		rs.targets[in] = map[int32]int64{}
		rs.ends[in] = map[int32]int64{}
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
			rs.ends[in][s.Partition] = e.Offset
			cur := int64(-1)
			if o, ok := committed.Lookup(in, s.Partition); ok && o.Err == nil {
				cur = o.At
			}
			rs.commits[in][s.Partition] = cur
			target := s.Offset
			switch {
			case len(c.Offsets) > 0:
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
			rs.targets[in][s.Partition] = target
		})
		if perr != nil {
			return perr
		}
		for p := range explicit[in] {
			if _, ok := rs.commits[in][p]; !ok {
				return fmt.Errorf("--offsets: %s has no partition %d", in, p)
			}
		}
		if !plan.shadow && repartition(plan.live.TopicPrefix, in) && c.State == "recompute" {
			for p, t := range rs.targets[in] {
				if s, _ := starts.Lookup(in, p); t == s.Offset && s.Offset > 0 {
					return fmt.Errorf("%s[%d] starts at offset %d (older records were deleted): recomputing stage %s from it would miss them; replay with --output shadow, which recomputes every stage from the live input", in, p, s.Offset, rs.name)
				}
			}
		}
	}
	return nil
}

// planTombstones lists every state, timer and event time on the stage's
// changelog: deleting them makes every instance's store empty on its next
// restore, so the state is rebuilt from the input alone.
func planTombstones(ctx context.Context, kc kafkaconf.Config, rs *replayStage) error {
	topic := runtime.ChangelogTopic(kc.TopicPrefix, rs.name)
	latest := map[int32]map[string]bool{} // key -> has a value
	err := consume.Each(ctx, kc, topic, func(r *kgo.Record) {
		m := latest[r.Partition]
		if m == nil {
			m = map[string]bool{}
			latest[r.Partition] = m
		}
		m[string(r.Key)] = r.Value != nil && !(len(r.Key) == 1 && r.Key[0] == 'w' && isZeroU64(r.Value))
	})
	if err != nil {
		return fmt.Errorf("reading changelog %s: %w", topic, err)
	}
	rs.tombs = map[int32][][]byte{}
	for p, m := range latest {
		for k, live := range m {
			if live {
				rs.tombs[p] = append(rs.tombs[p], []byte(k))
			} else {
				rs.tombSkip++
			}
		}
	}
	return nil
}

func isZeroU64(b []byte) bool {
	return len(b) == 8 && string(b) == "\x00\x00\x00\x00\x00\x00\x00\x00"
}

// planShadowTopics lists the shadow's old topics and groups (deleted first)
// and the topics to create: every topic the stages write, with the live
// input's partition count (the stages need co-partitioned topics).
func (c *replayCmd) planShadowTopics(ctx context.Context, adm *kadm.Client, plan *replayPlan) error {
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
	sort.Strings(plan.delete)
	lgs, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("listing groups: %w", err)
	}
	for _, g := range lgs.Groups() {
		if strings.HasPrefix(g, sp) {
			plan.groups = append(plan.groups, g)
		}
	}
	sort.Strings(plan.groups)
	live := topics.NewNames(plan.live.TopicPrefix)
	external := map[string]bool{live.Billing: true, live.Rejected: true, live.Files: true, live.IngestCheckpoints: true}
	for _, rs := range plan.stages {
		for _, in := range rs.inputs {
			if !strings.HasPrefix(in, sp) {
				external[in] = true
			}
		}
	}
	for _, s := range topology.New(sp).Specs() {
		if !external[plan.live.TopicPrefix+strings.TrimPrefix(s.Name, sp)] {
			plan.recreat = append(plan.recreat, s)
		}
	}
	return nil
}

func (c *replayCmd) printPlan(out io.Writer, plan *replayPlan) {
	fmt.Fprintln(out, "Replay plan")
	if plan.shadow {
		pol := "the built-in policy"
		if c.Policy != "" {
			pol = c.Policy
		}
		fmt.Fprintf(out, "  output: shadow topics %s* (the live topics are not touched), policy %s\n", plan.kc.TopicPrefix, pol)
		if len(plan.delete) > 0 {
			fmt.Fprintf(out, "  delete the shadow's old topics: %s\n", strings.Join(plan.delete, ", "))
		}
		if len(plan.groups) > 0 {
			fmt.Fprintf(out, "  delete the shadow's old groups: %s\n", strings.Join(plan.groups, ", "))
		}
	} else {
		fmt.Fprintln(out, "  output: the live topics again, with the same event ids (consumers drop duplicates by event_id)")
	}
	for _, rs := range plan.stages {
		fmt.Fprintf(out, "  stage %s (group %s, members: %d)\n", rs.name, rs.group, len(rs.members))
		for _, in := range rs.inputs {
			if len(rs.targets[in]) == 0 {
				fmt.Fprintf(out, "    input %s: from its start (a new shadow topic)\n", in)
				continue
			}
			var again, total int64
			var parts []string
			for _, p := range sortedParts(rs.targets[in]) {
				cur, to := rs.commits[in][p], rs.targets[in][p]
				total += max(0, rs.ends[in][p]-to)
				curS := "none"
				if cur >= 0 {
					curS = strconv.FormatInt(cur, 10)
					again += max(0, cur-to)
				}
				parts = append(parts, fmt.Sprintf("%d: %s -> %d", p, curS, to))
			}
			fmt.Fprintf(out, "    input %s: offsets per partition (committed -> reset) [%s]; about %d records to process, %d of them processed before\n", in, strings.Join(parts, ", "), total, again)
		}
		switch {
		case plan.shadow:
			fmt.Fprintln(out, "    state: new and empty, rebuilt from the input")
		case c.State == "recompute":
			n := 0
			for _, ks := range rs.tombs {
				n += len(ks)
			}
			fmt.Fprintf(out, "    state: deleted (%d tombstones on %s; every instance drops it on its next restore), rebuilt from the input\n", n, runtime.ChangelogTopic(plan.live.TopicPrefix, rs.name))
			if c.To != "earliest" || len(c.Offsets) > 0 {
				fmt.Fprintln(out, "    warning: the input before the reset point will not be in the rebuilt state")
			}
		case c.State == "restore":
			fmt.Fprintf(out, "    state: local store %s deleted, restored from %s\n", filepath.Join(c.StateDir, rs.name, "pebble"), runtime.ChangelogTopic(plan.live.TopicPrefix, rs.name))
		default:
			fmt.Fprintln(out, "    state: kept as it is; the input is applied to it again")
		}
		if len(rs.dropped) > 0 {
			fmt.Fprintf(out, "    outputs to repartition topics are not written again (the next stages read the records already there): %s\n", strings.Join(rs.dropped, ", "))
		}
	}
	if c.NoRun {
		fmt.Fprintln(out, "  then: nothing; the processors reprocess when started")
	} else {
		fmt.Fprintln(out, "  then: run the stages here until they reach the end their input has now, and exit")
	}
}

func sortedParts(m map[int32]int64) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// apply carries the plan out: members removed (--force), shadow topics made
// anew, tombstones written, local stores wiped, offsets reset.
func (c *replayCmd) apply(ctx context.Context, adm *kadm.Client, plan *replayPlan, out io.Writer, g *Globals) error {
	for _, rs := range plan.stages {
		if len(rs.members) == 0 {
			continue
		}
		var ids []string
		for _, m := range rs.members {
			if m.InstanceID == nil {
				// Only static members can be removed by an admin; a dynamic
				// one is a live consumer that is not usagestream's.
				return fmt.Errorf("group %s has member %s without a static instance id: it is no usagestream processor; stop it", rs.group, m.MemberID)
			}
			ids = append(ids, *m.InstanceID)
		}
		if _, err := adm.LeaveGroup(ctx, kadm.LeaveGroup(rs.group).InstanceIDs(ids...)); err != nil {
			return fmt.Errorf("removing the members of group %s (--force): %w", rs.group, err)
		}
		g.log.Info("removed group members", "group", rs.group, "members", ids)
	}
	if plan.shadow {
		if err := recreateShadow(ctx, adm, plan); err != nil {
			return err
		}
	}
	for _, rs := range plan.stages {
		if len(rs.tombs) > 0 {
			if err := writeTombstones(ctx, plan.live, runtime.ChangelogTopic(plan.live.TopicPrefix, rs.name), rs.tombs); err != nil {
				return err
			}
		}
		if c.State == "restore" && !plan.shadow {
			dir := filepath.Join(c.StateDir, rs.name, "pebble")
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("wiping the local store %s: %w", dir, err)
			}
		}
		offs := kadm.Offsets{}
		for in, ps := range rs.targets {
			for p, o := range ps {
				offs.Add(kadm.Offset{Topic: in, Partition: p, At: o, LeaderEpoch: -1})
			}
		}
		if len(offs) == 0 {
			continue
		}
		if err := adm.CommitAllOffsets(ctx, rs.group, offs); err != nil {
			return fmt.Errorf("resetting the offsets of group %s (are its processors stopped?): %w", rs.group, err)
		}
		g.log.Info("group offsets reset", "group", rs.group)
	}
	return nil
}

// recreateShadow deletes the shadow's old topics and groups and creates its
// topics again, empty.
func recreateShadow(ctx context.Context, adm *kadm.Client, plan *replayPlan) error {
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
	tds, err := adm.ListTopics(ctx, topics.NewNames(plan.live.TopicPrefix).Billing)
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

// writeTombstones deletes the given changelog keys; the event time goes
// back to zero (its restore ignores a null value).
func writeTombstones(ctx context.Context, kc kafkaconf.Config, topic string, tombs map[int32][][]byte) error {
	cl, err := kc.NewClient(ctx, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	var rs []*kgo.Record
	for p, keys := range tombs {
		for _, k := range keys {
			r := &kgo.Record{Topic: topic, Partition: p, Key: k}
			if len(k) == 1 && k[0] == 'w' {
				r.Value = make([]byte, 8)
			}
			rs = append(rs, r)
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("writing tombstones to %s: %w", topic, err)
	}
	return nil
}

// runStages runs the planned stages until each has caught up with the end
// its input had when it was reached (stages in data-flow order, so a stage
// waits for the one before it).
func (c *replayCmd) runStages(ctx context.Context, plan *replayPlan, out io.Writer, g *Globals) error {
	policy, err := c.policy()
	if err != nil {
		return err
	}
	p, err := pipeline.New(ctx, plan.kc, policy)
	if err != nil {
		return err
	}
	byName := map[string]runtime.Stage{}
	for _, st := range p.Stages() {
		byName[runtime.StageName(st)] = st
	}
	dir := c.StateDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "usagestream-replay-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	reg := newMetricsRegistry()
	m := runtime.NewMetrics(reg)
	if c.MetricsAddr != "" {
		stop, err := serveMetrics(c.MetricsAddr, reg, g.log)
		if err != nil {
			return err
		}
		defer stop()
	}
	rctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	eg, ectx := errgroup.WithContext(rctx)
	var insts []*runtime.Instance
	defer func() {
		for _, in := range insts {
			in.Close()
		}
	}()
	for _, rs := range plan.stages {
		st := byName[rs.name]
		if plan.shadow {
			st = runtime.WithInputs(st, rs.inputs)
		} else if len(rs.dropped) > 0 {
			st = runtime.WithoutOutputs(st, rs.dropped...)
		}
		in, err := runtime.NewInstance(runtime.Config{Kafka: plan.kc, Group: rs.group, DataDir: dir, Logger: g.log, Metrics: m}, st)
		if err != nil {
			return err
		}
		insts = append(insts, in)
		eg.Go(func() error { return in.Run(ectx) })
	}
	started := time.Now()
	eg.Go(func() error {
		defer cancel()
		// Stages are waited for in data-flow order; should a later stage
		// feed an earlier one, a pass ends with that one's input grown: the
		// stages are waited for again until a pass sees no internal topic
		// grow. External input (live ingestion) is not waited for.
		for pass := 1; ; pass++ {
			before, err := internalEnds(ectx, plan)
			if err != nil {
				return err
			}
			for _, rs := range plan.stages {
				for _, in := range rs.inputs {
					if err := consume.WaitCaughtUp(ectx, plan.kc, rs.group, in); err != nil {
						return fmt.Errorf("stage %s did not catch up on %s: %w", rs.name, in, err)
					}
				}
				if pass == 1 {
					fmt.Fprintf(out, "stage %s caught up (%s)\n", rs.name, time.Since(started).Round(time.Millisecond))
				}
			}
			after, err := internalEnds(ectx, plan)
			if err != nil {
				return err
			}
			if maps.Equal(before, after) {
				return nil
			}
		}
	})
	err = eg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if rctx.Err() != nil && !errors.Is(rctx.Err(), context.Canceled) {
		return fmt.Errorf("the stages did not catch up within --timeout %s", c.Timeout)
	}
	// The replay's members leave at once, so that the processors started
	// next get their partitions without waiting out a session timeout.
	cl, err := plan.kc.NewClient(ctx)
	if err == nil {
		adm := kadm.NewClient(cl)
		for _, in := range insts {
			if id, err := in.MemberID(); err == nil {
				_, _ = adm.LeaveGroup(ctx, kadm.LeaveGroup(in.Group()).InstanceIDs(id))
			}
		}
		cl.Close()
	}
	fmt.Fprintf(out, "replay done in %s: %s\n", time.Since(started).Round(time.Millisecond), recordCounts(reg))
	if plan.shadow {
		fmt.Fprintf(out, "compare with: usagestream diff --shadow %s\n", c.Shadow)
	}
	return nil
}

// internalEnds are the end offsets of the stages' internal inputs (the
// repartition topics between them).
func internalEnds(ctx context.Context, plan *replayPlan) (map[string]int64, error) {
	var internal []string
	for _, rs := range plan.stages {
		for _, in := range rs.inputs {
			if repartition(plan.kc.TopicPrefix, in) {
				internal = append(internal, in)
			}
		}
	}
	out := map[string]int64{}
	if len(internal) == 0 {
		return out, nil
	}
	cl, err := plan.kc.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, internal...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %v: %w", internal, err)
	}
	ends.Each(func(o kadm.ListedOffset) { out[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.Offset })
	return out, nil
}

// recordCounts sums the runtime's record counters for the summary line.
func recordCounts(reg *prometheus.Registry) string {
	mfs, err := reg.Gather()
	if err != nil {
		return ""
	}
	in, out := 0.0, 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "usagestream_processor_records_in_total":
				in += m.GetCounter().GetValue()
			case "usagestream_processor_records_out_total":
				out += m.GetCounter().GetValue()
			}
		}
	}
	return fmt.Sprintf("%.0f records in, %.0f records out", in, out)
}

// groupName is the runtime's default consumer group of a stage.
func groupName(prefix, stage string) string { return prefix + "processor-" + stage }
