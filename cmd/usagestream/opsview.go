package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/topology"
	"github.com/usagestream/usagestream/sinks/sink"
)

// exactCountBelow bounds the records topics and status read to count
// exactly: offsets overstate records (each transaction ends with a commit
// marker), and counting means reading them. Past it, offsets are shown and
// marked as such.
const exactCountBelow = 200_000

type topicsCmd struct {
	connFlags
	JSON bool `name:"json" help:"Print JSON instead of a table."`
}

// topicInfo is one topic of the prefix as topics prints it.
type topicInfo struct {
	Name        string `json:"name"`
	Partitions  int    `json:"partitions"`
	Replication int    `json:"replication"`
	Retention   string `json:"retention"` // forever, or a duration
	Cleanup     string `json:"cleanup_policy"`
	Records     int64  `json:"records"`
	// Exact is false when Records is an offset count (start to end, commit
	// markers included) because the topic is too large to count.
	Exact bool `json:"records_exact"`
}

func (c *topicsCmd) Run(ctx context.Context, g *Globals) error {
	ts, err := listTopics(ctx, g.Kafka)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ts)
	}
	printTopics(os.Stdout, ts)
	return nil
}

func printTopics(w io.Writer, ts []topicInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION\tRETENTION\tCLEANUP\tRECORDS")
	for _, t := range ts {
		n := strconv.FormatInt(t.Records, 10)
		if !t.Exact {
			n = "~" + n + " (offsets)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", t.Name, t.Partitions, t.Replication, t.Retention, t.Cleanup, n)
	}
	tw.Flush()
}

// listTopics describes every topic of the prefix, sorted by name.
func listTopics(ctx context.Context, kc kafkaconf.Config) ([]topicInfo, error) {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the topics: %w", err)
	}
	var names []string
	for _, td := range tds {
		if strings.HasPrefix(td.Topic, kc.TopicPrefix) && td.Err == nil {
			names = append(names, td.Topic)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return nil, nil
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describing the topics' settings: %w", err)
	}
	var out []topicInfo
	for _, n := range names {
		td := tds[n]
		ti := topicInfo{Name: n, Partitions: len(td.Partitions), Retention: "broker default", Cleanup: "delete"}
		for _, p := range td.Partitions {
			ti.Replication = max(ti.Replication, len(p.Replicas))
		}
		if rc, err := cfgs.On(n, nil); err == nil {
			for _, kv := range rc.Configs {
				if kv.Value == nil {
					continue
				}
				switch kv.Key {
				case "retention.ms":
					ti.Retention = retentionText(*kv.Value)
				case "cleanup.policy":
					ti.Cleanup = *kv.Value
				}
			}
		}
		if ti.Records, ti.Exact, err = countRecords(ctx, kc, adm, n, nil); err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

func retentionText(ms string) string {
	v, err := strconv.ParseInt(ms, 10, 64)
	switch {
	case err != nil:
		return ms
	case v < 0:
		return "forever"
	case v%(24*3600*1000) == 0:
		return fmt.Sprintf("%dd", v/(24*3600*1000))
	}
	return (time.Duration(v) * time.Millisecond).String()
}

// countRecords counts the committed records of topic from the start (or
// from the offsets in from) to its end: exactly when the offsets to read
// are fewer than exactCountBelow, else the offsets (exact false).
func countRecords(ctx context.Context, kc kafkaconf.Config, adm *kadm.Client, topic string, from map[int32]int64) (int64, bool, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, false, fmt.Errorf("listing the offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, false, fmt.Errorf("listing the offsets of %s: %w", topic, err)
	}
	f, to := map[int32]int64{}, map[int32]int64{}
	var offsets int64
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		at := s.Offset
		if c, ok := from[o.Partition]; ok && c > at {
			at = c
		}
		f[o.Partition], to[o.Partition] = at, o.Offset
		offsets += max(0, o.Offset-at)
	})
	if offsets == 0 {
		return 0, true, nil
	}
	if offsets >= exactCountBelow {
		return offsets, false, nil
	}
	counts, err := consume.CountReadable(ctx, kc, topic, f, to)
	if err != nil {
		return 0, false, err
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return n, true, nil
}

type statusCmd struct {
	connFlags
	JSON bool `name:"json" help:"Print JSON instead of text."`
}

// memberInfo is one member of a consumer group.
type memberInfo struct {
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
}

// groupStatus is a stage's or a sink's consumer group: its members, how far
// behind its inputs it is, and what it quarantined.
type groupStatus struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	State string `json:"state"`
	// Started is whether the group committed offsets: a sink that never
	// ran is not listed.
	Started     bool         `json:"started"`
	Members     []memberInfo `json:"members"`
	Lag         int64        `json:"lag"`
	LagExact    bool         `json:"lag_exact"`
	Quarantined int64        `json:"quarantined"`
	Quarantine  string       `json:"quarantine_topic"`
}

type statusReport struct {
	Stages []groupStatus `json:"stages"`
	Sinks  []groupStatus `json:"sinks"`
}

func (c *statusCmd) Run(ctx context.Context, g *Globals) error {
	st, err := pipelineStatus(ctx, g.Kafka)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(os.Stdout, st)
	return nil
}

func printStatus(w io.Writer, st statusReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(kind string, s groupStatus) {
		lag := strconv.FormatInt(s.Lag, 10)
		if !s.LagExact {
			lag = "~" + lag + " (offsets)"
		}
		var ms []string
		for _, m := range s.Members {
			ms = append(ms, cmpOr(m.InstanceID, m.ClientID)+"@"+m.Host)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", kind, s.Name, s.State, len(s.Members), lag, s.Quarantined, strings.Join(ms, ","))
	}
	fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tMEMBERS\tLAG\tQUARANTINED\tMEMBER IDS")
	for _, s := range st.Stages {
		row("stage", s)
	}
	for _, s := range st.Sinks {
		row("sink", s)
	}
	tw.Flush()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sinkNames are the sinks status looks for (sink postgres|jsonl|webhook).
var sinkNames = []string{"postgres", "jsonl", "webhook"}

// pipelineStatus describes every stage's group and every sink group that
// exists.
func pipelineStatus(ctx context.Context, kc kafkaconf.Config) (statusReport, error) {
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return statusReport{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topo := topology.New(kc.TopicPrefix)
	var rep statusReport
	for _, s := range topo.Stages {
		gs, err := groupState(ctx, kc, adm, s.Name, runtime.GroupName(kc.TopicPrefix, s.Name), s.Inputs, quarantine.StageTopic(kc.TopicPrefix, s.Name))
		if err != nil {
			return rep, err
		}
		rep.Stages = append(rep.Stages, gs)
	}
	for _, n := range sinkNames {
		gs, err := groupState(ctx, kc, adm, n, sink.GroupFor(kc.TopicPrefix, n), topo.OfKind(topology.Event), quarantine.SinkTopic(kc.TopicPrefix, n))
		if err != nil {
			return rep, err
		}
		if !gs.Started && len(gs.Members) == 0 {
			continue // never ran
		}
		rep.Sinks = append(rep.Sinks, gs)
	}
	return rep, nil
}

// groupState describes group: its members, its lag on inputs (records
// between its committed offsets and the ends, counted when few) and the
// records in its quarantine topic.
func groupState(ctx context.Context, kc kafkaconf.Config, adm *kadm.Client, name, group string, inputs []string, qtopic string) (groupStatus, error) {
	gs := groupStatus{Name: name, Group: group, Quarantine: qtopic, Members: []memberInfo{}}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return gs, fmt.Errorf("describing the group %s: %w", group, err)
	}
	l, ok := lags[group]
	if !ok {
		return gs, fmt.Errorf("describing the group %s: no answer", group)
	}
	if err := l.Error(); errors.Is(err, kerr.GroupIDNotFound) {
		gs.State = "not started"
		l = kadm.DescribedGroupLag{}
	} else if err != nil {
		return gs, fmt.Errorf("describing the group %s: %w", group, err)
	} else {
		gs.State = l.State
	}
	for _, m := range l.Members {
		mi := memberInfo{ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			mi.InstanceID = *m.InstanceID
		}
		gs.Members = append(gs.Members, mi)
	}
	committed := false
	gs.LagExact = true
	for _, in := range inputs {
		from := map[int32]int64{}
		for _, ml := range l.Lag[in] {
			if ml.Commit.At >= 0 {
				from[ml.Partition] = ml.Commit.At
				committed = true
			}
		}
		// Where nothing is committed the group starts at the start.
		n, exact, err := countRecords(ctx, kc, adm, in, from)
		if err != nil {
			return gs, err
		}
		gs.Lag += n
		gs.LagExact = gs.LagExact && exact
	}
	gs.Started = committed
	if q, _, err := countRecords(ctx, kc, adm, qtopic, nil); err == nil {
		gs.Quarantined = q
	}
	return gs, nil
}
