package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/testwait"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/producers/override"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// ingestRows writes rows as one full billing file and ingests it.
func ingestRows(t *testing.T, ctx context.Context, kc kafkaconf.Config, rows []row) {
	t.Helper()
	lines := []string{records.HeaderLine(records.LayoutFull)}
	for _, r := range rows {
		lines = append(lines, r.line())
	}
	path := filepath.Join(t.TempDir(), "opwr_tst_res_v1-19-0_full_20240101000000.tsv")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ctx, kc, ingest.Config{Topics: topics.NewNames(kc.TopicPrefix)})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := in.Run(ctx, []string{path}); err != nil || res[0].Status != ingest.Completed {
		t.Fatalf("ingest: %+v %v", res, err)
	}
}

// TestOV1OperatorClearThroughTheStages: an operator clears the A3 anomaly
// of a service point; the stages apply it in their exactly-once path, the
// cleared anomaly and the eligibility it gives back cite the action's
// position, an action that matches nothing is refused on anomalies.v1, and
// one that breaks the record's contract is quarantined.
func TestOV1OperatorClearThroughTheStages(t *testing.T) {
	env := kafkatest.Start(t)
	kc := env.Kafka
	ctx := context.Background()
	year := months(electric, "20230101", 12)
	ingestRows(t, ctx, kc, cat(year[:6], with(year[6:], func(r *row) { r.active = "20230601" })))

	p, err := New(ctx, kc, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st := startStages(t, kc, dir, p)
	st.wait(t, 2*time.Minute)

	w, err := override.NewWriter(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	clear := records.OperatorAction{Kind: records.ActionClearAnomaly, Utility: "tst", ServicePointID: "SP1",
		AnomalyCode: rules.AnomalyActiveDateChanged, Actor: "ops", Reason: "the new date is right", Ticket: "OPS-7"}
	pos, err := w.Write(ctx, &clear)
	if err != nil {
		t.Fatal(err)
	}
	refused := records.OperatorAction{Kind: records.ActionClearAnomaly, Utility: "tst", ServicePointID: "SP1",
		AnomalyCode: rules.AnomalyUsageGap, Actor: "ops", Reason: "r", Ticket: "OPS-8"}
	rpos, err := w.Write(ctx, &refused)
	if err != nil {
		t.Fatal(err)
	}
	// Actions no tool would write go to the quarantine, the stage goes on:
	// no framing, a clear without a ticket, one keyed by another service point.
	rc, err := kc.NewRegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	schemaID, err := serde.NewRegistry(rc).Register(ctx, serde.SubjectFor(env.Topics.OperatorActions), schemas.MustText(schemas.OperatorAction))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := override.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	noTicket := clear
	noTicket.ActionID, noTicket.Ticket = "no-ticket", ""
	noTicketValue, err := codec.Append(nil, schemaID, &noTicket)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := clear
	elsewhere.ActionID, elsewhere.ServicePointID = "elsewhere", "SP2"
	elsewhereValue, err := codec.Append(nil, schemaID, &elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = cl.ProduceSync(ctx,
		&kgo.Record{Topic: env.Topics.OperatorActions, Key: []byte("SP1"), Value: []byte("clear SP1 please")},
		&kgo.Record{Topic: env.Topics.OperatorActions, Key: []byte("SP1"), Value: noTicketValue},
		&kgo.Record{Topic: env.Topics.OperatorActions, Key: []byte("SP1"), Value: elsewhereValue},
	).FirstErr()
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, 2*time.Minute)
	st.stop(t)

	var quarantined int
	for _, r := range kafkatest.ReadAll(t, kc, p.Topology().MustStage(StageServicePoint).Quarantine) {
		for _, h := range r.Headers {
			if h.Key == quarantine.HeaderSourceTopic && string(h.Value) == env.Topics.OperatorActions {
				quarantined++
			}
		}
	}
	if quarantined != 3 {
		t.Errorf("%d actions from %s quarantined, want 3 (unframed, no ticket, keyed by another service point)", quarantined, env.Topics.OperatorActions)
	}

	cites := func(m map[string]any, at override.Position) bool {
		c := m["cause"].(map[string]any)
		return c["topic"] == at.Topic && c["partition"] == at.Partition && c["offset"] == at.Offset
	}
	var cleared, refusal map[string]any
	for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, env.Topics.Anomalies)) {
		switch {
		case m["rule"] == "OV1" && m["code"] == rules.AnomalyActiveDateChanged && m["cleared"] == true:
			cleared = m
		case m["code"] == rules.AnomalyOverrideRefused:
			refusal = m
		}
	}
	if cleared == nil {
		t.Fatal("no ACTIVE_DATE_CHANGED cleared by OV1 on anomalies.v1")
	}
	if !cites(cleared, pos) || !strings.Contains(str(cleared["message"]), clear.ActionID) {
		t.Errorf("the cleared anomaly cites %v, message %q; want the action %s at %+v", cleared["cause"], str(cleared["message"]), clear.ActionID, pos)
	}
	if refusal == nil || !cites(refusal, rpos) || !strings.Contains(str(refusal["message"]), refused.ActionID) {
		t.Errorf("refusal %v; want OVERRIDE_REFUSED citing %+v", refusal, rpos)
	}

	// The last communications event of C1 at P1 is eligible again, caused
	// by the action.
	var last map[string]any
	for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, env.Topics.Eligibility)) {
		if m["customer_id"] == "C1" && m["premise_id"] == "P1" && m["program"] == rules.ProgramCommunications {
			last = m
		}
	}
	if last == nil || last["eligible"] != true || !cites(last, pos) {
		t.Fatalf("last communications event %v; want eligible, caused by the action at %+v", last, pos)
	}
}

// TestOV2OperatorHoldThroughTheStages: a hold of communications for a
// customer at a premise, then its release, through the customer stage:
// each changes the program's eligibility, caused by the action.
func TestOV2OperatorHoldThroughTheStages(t *testing.T) {
	env := kafkatest.Start(t)
	kc := env.Kafka
	ctx := context.Background()
	ingestRows(t, ctx, kc, months(electric, "20230101", 12))
	p, err := New(ctx, kc, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	st := startStages(t, kc, t.TempDir(), p)
	st.wait(t, 2*time.Minute)
	w, err := override.NewWriter(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	lastComm := func() map[string]any {
		var last map[string]any
		for _, m := range kafkatest.Decode(t, kc, kafkatest.ReadAll(t, kc, env.Topics.Eligibility)) {
			if m["customer_id"] == "C1" && m["premise_id"] == "P1" && m["program"] == rules.ProgramCommunications {
				last = m
			}
		}
		return last
	}
	cites := func(m map[string]any, at override.Position) bool {
		c := m["cause"].(map[string]any)
		return c["topic"] == at.Topic && c["partition"] == at.Partition && c["offset"] == at.Offset
	}
	if m := lastComm(); m == nil || m["eligible"] != true {
		t.Fatalf("setup: communications %v, want eligible", m)
	}

	hold := records.OperatorAction{Kind: records.ActionHoldIneligible, Utility: "tst", CustomerID: "C1", PremiseID: "P1",
		Program: rules.ProgramCommunications, Actor: "ops", Reason: "the customer asked for no reports", Ticket: "OPS-11"}
	hpos, err := w.Write(ctx, &hold)
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, 2*time.Minute)
	m := lastComm()
	reasons, _ := m["reasons"].([]any)
	if m["eligible"] != false || len(reasons) != 1 || !cites(m, hpos) {
		t.Fatalf("communications after the hold: %v; want ineligible for the hold alone, caused by it at %+v", m, hpos)
	}
	if r := reasons[0].(map[string]any); r["code"] != rules.ReasonOperatorHold || r["rule"] != "OV2" || !cites(map[string]any{"cause": r["source"]}, hpos) {
		t.Errorf("the hold's reason: %v", r)
	}

	release := hold
	release.ActionID, release.Kind, release.RequestedAt = "", records.ActionReleaseHold, time.Time{}
	rpos, err := w.Write(ctx, &release)
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, 2*time.Minute)
	if m := lastComm(); m["eligible"] != true || !cites(m, rpos) {
		t.Errorf("communications after the release: %v; want eligible, caused by the release at %+v", m, rpos)
	}

	// A hold through today: in force now; two days later (the stages'
	// clock moved on) the customer stage's timer ends it, citing the hold.
	today := dates.FromTime(time.Now().UTC())
	brief := hold
	brief.ActionID, brief.RequestedAt, brief.Until = "", time.Time{}, &today
	bpos, err := w.Write(ctx, &brief)
	if err != nil {
		t.Fatal(err)
	}
	st.wait(t, 2*time.Minute)
	if m := lastComm(); m["eligible"] != false || !cites(m, bpos) {
		t.Fatalf("communications after a hold through today: %v; want ineligible, caused by it at %+v", m, bpos)
	}
	st.stop(t)
	later := func() time.Time { return time.Now().Add(49 * time.Hour) }
	st = startStagesAt(t, kc, t.TempDir(), p, later, StageCustomer)
	if !testwait.For(time.Minute, func() bool { m := lastComm(); return m["eligible"] == true }) {
		t.Fatalf("communications two days after a hold through today: %v; want eligible again", lastComm())
	}
	st.stop(t)
	if m := lastComm(); !cites(m, bpos) {
		t.Errorf("the end of the hold cites %v, want the hold at %+v", m["cause"], bpos)
	}
}
