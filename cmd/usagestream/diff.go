package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/replay"
	recavro "github.com/usagestream/usagestream/records/avro"
)

type diffCmd struct {
	connFlags
	Shadow string `name:"shadow" default:"default" help:"The shadow replay to compare with the live output (usagestream replay --output shadow --shadow NAME)."`
	JSON   bool   `name:"json" help:"Print one JSON object per difference instead of a table."`
	All    bool   `name:"all" help:"List unchanged subjects too."`
}

// eligibilityState is the latest eligibility event of one subject and
// program: what a consumer of the topic believes now.
type eligibilityState struct {
	Eligible    bool          `json:"eligible"`
	SecondaryID string        `json:"secondary_id,omitempty"`
	Reasons     []reasonBrief `json:"reasons"`
	EventID     string        `json:"event_id"`
}

// reasonBrief is a reason as the diff compares it: its cause (source) is
// left out, the rest must match.
type reasonBrief struct {
	Code           string `json:"code"`
	Rule           string `json:"rule"`
	ServicePointID string `json:"service_point_id,omitempty"`
	EffectiveDate  string `json:"effective_date"`
	Until          string `json:"until,omitempty"`
}

func (r reasonBrief) String() string {
	s := r.Code + " (" + r.Rule
	if r.ServicePointID != "" {
		s += ", service point " + r.ServicePointID
	}
	s += ", from " + r.EffectiveDate
	if r.Until != "" {
		s += " until " + r.Until
	}
	return s + ")"
}

type subjectKey struct {
	CustomerID string `json:"customer_id"`
	PremiseID  string `json:"premise_id"`
	Program    string `json:"program"`
}

// eligibilityDiff is one subject and program whose state differs.
type eligibilityDiff struct {
	Change string `json:"change"` // added, removed, changed, unchanged
	subjectKey
	Live   *eligibilityState `json:"live,omitempty"`
	Shadow *eligibilityState `json:"shadow,omitempty"`
	// Gained and Lost are the reasons only the shadow, or only the live
	// output, has.
	Gained []reasonBrief `json:"gained,omitempty"`
	Lost   []reasonBrief `json:"lost,omitempty"`
}

type diffResult struct {
	Diffs     []eligibilityDiff
	Compared  int
	Unchanged int
	Counts    map[string]int
}

func (c *diffCmd) Run(ctx context.Context, g *Globals) error {
	res, err := diffEligibility(ctx, g.Kafka, c.Shadow, c.All)
	if err != nil {
		return err
	}
	return printDiff(os.Stdout, res, c.JSON)
}

// latestEligibility reads a topic of EligibilityChanged events and keeps
// the last per subject and program. Events of one customer share a key, so
// a partition's order is their order.
func latestEligibility(ctx context.Context, kc kafkaconf.Config, dec *recavro.Decoder, topic string) (map[subjectKey]*eligibilityState, error) {
	out := map[subjectKey]*eligibilityState{}
	var derr error
	err := consume.Each(ctx, kc, topic, func(r *kgo.Record) {
		if derr != nil {
			return
		}
		rec, _, err := dec.Decode(ctx, r.Value)
		if err != nil {
			derr = fmt.Errorf("%s[%d]@%d: %w", topic, r.Partition, r.Offset, err)
			return
		}
		m, ok := rec.(*recavro.EligibilityChanged)
		if !ok {
			derr = fmt.Errorf("%s[%d]@%d: a %s record, not an eligibility event", topic, r.Partition, r.Offset, rec.Schema())
			return
		}
		k := subjectKey{CustomerID: m.CustomerID, PremiseID: m.PremiseID, Program: m.Program}
		st := &eligibilityState{Eligible: m.Eligible, SecondaryID: recavro.Deref(m.SecondaryID), EventID: m.EventID}
		for _, x := range m.Reasons {
			st.Reasons = append(st.Reasons, reasonBrief{Code: x.Code, Rule: x.Rule,
				ServicePointID: recavro.Deref(x.ServicePointID), EffectiveDate: day(&x.EffectiveDate), Until: day(x.Until)})
		}
		slices.SortFunc(st.Reasons, func(a, b reasonBrief) int {
			return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.ServicePointID, b.ServicePointID))
		})
		out[k] = st
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}
	return out, nil
}

// day renders an optional date as YYYY-MM-DD, "" for null.
func day(d *dates.Date) string {
	if d == nil {
		return ""
	}
	return d.Time().Format(time.DateOnly)
}

// diffEligibility compares the final eligibility of the shadow's output
// with the live output.
func diffEligibility(ctx context.Context, kc kafkaconf.Config, shadow string, all bool) (*diffResult, error) {
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return nil, err
	}
	dec := recavro.NewDecoder(serde.NewRegistry(rc))
	liveTopic := topics.NewNames(kc.TopicPrefix).Eligibility
	shadowTopic := topics.NewNames(replay.ShadowPrefix(kc.TopicPrefix, shadow)).Eligibility
	cl, err := kc.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	exists, err := topicExists(ctx, cl, shadowTopic)
	cl.Close()
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("shadow %q has no output (%s is missing): run 'usagestream replay --output shadow --shadow %s' first", shadow, shadowTopic, shadow)
	}
	live, err := latestEligibility(ctx, kc, dec, liveTopic)
	if err != nil {
		return nil, err
	}
	sh, err := latestEligibility(ctx, kc, dec, shadowTopic)
	if err != nil {
		return nil, err
	}
	res := &diffResult{Counts: map[string]int{}}
	keys := map[subjectKey]bool{}
	for k := range live {
		keys[k] = true
	}
	for k := range sh {
		keys[k] = true
	}
	for k := range keys {
		l, s := live[k], sh[k]
		d := eligibilityDiff{subjectKey: k, Live: l, Shadow: s}
		switch {
		case l == nil:
			d.Change = "added"
		case s == nil:
			d.Change = "removed"
		default:
			d.Gained, d.Lost = reasonDelta(l.Reasons, s.Reasons)
			d.Change = "unchanged"
			if l.Eligible != s.Eligible || len(d.Gained) > 0 || len(d.Lost) > 0 {
				d.Change = "changed"
			}
		}
		res.Compared++
		res.Counts[d.Change]++
		if d.Change == "unchanged" {
			res.Unchanged++
			if !all {
				continue
			}
		}
		res.Diffs = append(res.Diffs, d)
	}
	slices.SortFunc(res.Diffs, func(a, b eligibilityDiff) int {
		return cmp.Or(cmp.Compare(a.CustomerID, b.CustomerID), cmp.Compare(a.PremiseID, b.PremiseID),
			cmp.Compare(a.Program, b.Program))
	})
	return res, nil
}

func topicExists(ctx context.Context, cl *kgo.Client, topic string) (bool, error) {
	tds, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("listing topics: %w", err)
	}
	td, ok := tds[topic]
	return ok && td.Err == nil, nil
}

// reasonDelta lists the reasons only b has (gained) and only a has (lost).
func reasonDelta(a, b []reasonBrief) (gained, lost []reasonBrief) {
	for _, r := range b {
		if !slices.Contains(a, r) {
			gained = append(gained, r)
		}
	}
	for _, r := range a {
		if !slices.Contains(b, r) {
			lost = append(lost, r)
		}
	}
	return gained, lost
}

func eligibleWord(s *eligibilityState) string {
	switch {
	case s == nil:
		return "-"
	case s.Eligible:
		return "eligible"
	}
	return "not eligible"
}

func printDiff(w io.Writer, res *diffResult, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range res.Diffs {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tCUSTOMER\tPREMISE\tPROGRAM\tLIVE\tSHADOW\tREASONS")
	for _, d := range res.Diffs {
		var rs []string
		for _, r := range d.Gained {
			rs = append(rs, "+"+r.String())
		}
		for _, r := range d.Lost {
			rs = append(rs, "-"+r.String())
		}
		if d.Change == "added" || d.Change == "removed" {
			st := d.Shadow
			if st == nil {
				st = d.Live
			}
			for _, r := range st.Reasons {
				rs = append(rs, r.String())
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Change, d.CustomerID, d.PremiseID, d.Program,
			eligibleWord(d.Live), eligibleWord(d.Shadow), strings.Join(rs, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d subject-programs compared: %d changed, %d added, %d removed, %d unchanged\n",
		res.Compared, res.Counts["changed"], res.Counts["added"], res.Counts["removed"], res.Counts["unchanged"])
	return err
}
