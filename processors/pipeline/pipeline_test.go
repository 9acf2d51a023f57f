package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

// streamed runs files through ingest and every stage on the embedded broker
// and returns the decoded events of each output topic.
type streamed struct {
	eligibility, corrections, accountEvents, anomalies []map[string]any
}

func runPipeline(t *testing.T, env *kafkatest.Env, policy rules.Policy, files []string) streamed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, files); err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, env.Kafka, policy)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st := startStages(t, env.Kafka, dir, p)
	st.wait(t, 2*time.Minute)
	st.stop(t)
	read := func(topic string) []map[string]any {
		return kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, topic))
	}
	return streamed{read(env.Topics.Eligibility), read(env.Topics.Corrections), read(env.Topics.AccountEvents), read(env.Topics.Anomalies)}
}

// direct runs the same pure rules over the same files in file order.
type direct struct {
	stage1 []rules.Stage1Output
	elig   []rules.EligibilityChanged
}

func runDirect(t *testing.T, policy rules.Policy, files []string) direct {
	t.Helper()
	chain := rules.NewChain(policy)
	var d direct
	err := ingest.EachRow(files, billing.Options{}, func(file string, row *records.BillingRow) error {
		out, err := chain.Apply(row, rules.Source{File: file, Line: row.Line})
		d.stage1 = append(d.stage1, out.Stage1Output)
		d.elig = append(d.elig, out.Eligibility...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func str(v any) string {
	if m, ok := v.(map[string]any); ok {
		for _, x := range m {
			return str(x)
		}
	}
	if t, ok := v.(time.Time); ok {
		return t.Format("20060102")
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func causeLine(m map[string]any) string {
	c := m["cause"].(map[string]any)
	return str(c["file"]) + ":" + str(c["line"])
}

// TestStreamingEqualsRules: the generated file with one of every anomaly
// kind gives, through Kafka, exactly the stage-1 events the pure rules give
// (same events at the same file lines), the same final eligibility for every
// subject and program, and every injected anomaly is reported.
func TestStreamingEqualsRules(t *testing.T) {
	env := kafkatest.Start(t)
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	res, err := gen.Generate(t.TempDir(), gen.Config{ServicePoints: 120, Months: 14, Seed: 5,
		Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC), Anomalies: kinds})
	if err != nil {
		t.Fatal(err)
	}
	policy := rules.DefaultPolicy()
	s := runPipeline(t, env, policy, res.Files)
	d := runDirect(t, policy, res.Files)

	// Stage 1: same events, compared as (kind, service point, what, file:line).
	var want, got []string
	for _, o := range d.stage1 {
		for _, c := range o.Corrections {
			want = append(want, fmt.Sprintf("correction %s %s %s %s:%d", c.ServicePointID, c.Kind, c.DateTo, c.Source.File, c.Source.Line))
		}
		for _, a := range o.Anomalies {
			want = append(want, fmt.Sprintf("anomaly %s %s %v %s:%d", a.ServicePointID, a.Code, a.Cleared, a.Source.File, a.Source.Line))
		}
		for _, a := range o.AccountEvents {
			want = append(want, fmt.Sprintf("account %s %s %s %s:%d", a.ServicePointID, a.AccountID, a.Type, a.Source.File, a.Source.Line))
		}
	}
	for _, m := range s.corrections {
		got = append(got, fmt.Sprintf("correction %s %s %s %s", m["service_point_id"], m["kind"], str(m["date_to"]), causeLine(m)))
	}
	for _, m := range s.anomalies {
		got = append(got, fmt.Sprintf("anomaly %s %s %v %s", m["service_point_id"], m["code"], m["cleared"], causeLine(m)))
	}
	for _, m := range s.accountEvents {
		got = append(got, fmt.Sprintf("account %s %s %s %s", m["service_point_id"], m["account_id"], m["type"], causeLine(m)))
	}
	slices.Sort(want)
	slices.Sort(got)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("stage 1 through Kafka differs from the rules:\nrules (%d):\n%s\n\nstreamed (%d):\n%s", len(want), strings.Join(want, "\n"), len(got), strings.Join(got, "\n"))
	}

	// Stage 2: the final reasons of every (customer, premise, program).
	final := func(key, reasons string, m map[string]string) { m[key] = reasons }
	wantFinal, gotFinal := map[string]string{}, map[string]string{}
	for _, e := range d.elig {
		var rs []string
		for _, r := range e.Reasons {
			rs = append(rs, r.Code+"/"+r.Rule+"/"+r.ServicePointID)
		}
		final(e.CustomerID+" "+e.PremiseID+" "+e.Program, fmt.Sprintf("%v %s", e.Eligible, strings.Join(rs, ",")), wantFinal)
	}
	for _, m := range s.eligibility {
		var rs []string
		for _, r := range m["reasons"].([]any) {
			rr := r.(map[string]any)
			rs = append(rs, str(rr["code"])+"/"+str(rr["rule"])+"/"+str(rr["service_point_id"]))
		}
		final(fmt.Sprintf("%s %s %s", m["customer_id"], m["premise_id"], m["program"]), fmt.Sprintf("%v %s", m["eligible"], strings.Join(rs, ",")), gotFinal)
	}
	if len(wantFinal) != len(gotFinal) {
		t.Fatalf("%d subjects×programs streamed, %d from the rules", len(gotFinal), len(wantFinal))
	}
	for k, v := range wantFinal {
		if gotFinal[k] != v {
			t.Errorf("final eligibility of %s: streamed %q, rules %q", k, gotFinal[k], v)
		}
	}

	// Every injected anomaly is on an output topic, at its service point.
	expect := map[gen.Kind]func(l gen.Label) bool{
		gen.Kind("U2_GAP"):                       hasAnomaly(s, "USAGE_GAP"),
		gen.Kind("U3_OVERLAP"):                   hasAnomaly(s, "USAGE_OVERLAP"),
		gen.Kind("U4_EXACT_OVERWRITE"):           hasCorrection(s, "EXACT"),
		gen.Kind("U5_OVERLAPPING_OVERWRITE"):     hasCorrection(s, "OVERLAPPING"),
		gen.Kind("A2_SUPERSEDE"):                 hasAccountEvent(s, "SUPERSEDED"),
		gen.Kind("A3_ACTIVE_DATE_CHANGED"):       hasAnomaly(s, "ACTIVE_DATE_CHANGED"),
		gen.Kind("A4_TERMINATION"):               hasAccountEvent(s, "TERMINATED"),
		gen.Kind("A5_REACTIVATION"):              hasAccountEvent(s, "REACTIVATED"),
		gen.Kind("A5_INVALID_REACTIVATION"):      hasAnomaly(s, "REACTIVATION_REFUSED"),
		gen.Kind("A7_RATE_NOT_ALLOWED"):          hasReason(s, "RATE_NOT_ALLOWED"),
		gen.Kind("A8_DELETION"):                  hasAccountEvent(s, "DELETED"),
		gen.Kind("A8_INVALID_DELETION"):          hasAnomaly(s, "DELETION_REFUSED"),
		gen.Kind("C2_PROPERTY_MANAGER"):          hasReason(s, "PROPERTY_MANAGER"),
		gen.Kind("S1_SERVICE_POINT_REPLACEMENT"): hasReason(s, "SERVICE_POINT_CHANGED"),
	}
	for _, l := range res.Labels {
		if f, ok := expect[l.Kind]; ok && !f(l) {
			t.Errorf("injected %s at %s (%s line %d) is not reported", l.Kind, l.ServicePointID, l.File, l.Line)
		}
	}
	t.Logf("%d corrections, %d anomalies, %d account events, %d eligibility events", len(s.corrections), len(s.anomalies), len(s.accountEvents), len(s.eligibility))
}

func hasAnomaly(s streamed, code string) func(gen.Label) bool {
	return func(l gen.Label) bool {
		for _, m := range s.anomalies {
			if m["code"] == code && m["service_point_id"] == l.ServicePointID {
				return true
			}
		}
		return false
	}
}

func hasCorrection(s streamed, kind string) func(gen.Label) bool {
	return func(l gen.Label) bool {
		for _, m := range s.corrections {
			if m["kind"] == kind && m["service_point_id"] == l.ServicePointID {
				return true
			}
		}
		return false
	}
}

func hasAccountEvent(s streamed, typ string) func(gen.Label) bool {
	return func(l gen.Label) bool {
		for _, m := range s.accountEvents {
			if m["type"] == typ && m["service_point_id"] == l.ServicePointID {
				return true
			}
		}
		return false
	}
}

// hasReason: an eligibility event for the label's customer blocks a program
// with the reason.
func hasReason(s streamed, code string) func(gen.Label) bool {
	return func(l gen.Label) bool {
		for _, m := range s.eligibility {
			if m["customer_id"] != l.CustomerID {
				continue
			}
			for _, r := range m["reasons"].([]any) {
				if r.(map[string]any)["code"] == code {
					return true
				}
			}
		}
		return false
	}
}
