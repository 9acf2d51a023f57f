package validate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

// TestFindingsEqualStreamingEvents runs the same generated files (one of
// every anomaly, malformed rows, a customer and a usage file as well as a
// full one) through ingest and every stage on the embedded broker, and
// through validate: the findings are the events of the output topics (same
// kind, service point, code, file and line), the rejected rows are the
// rejected topic, and the eligibility per program is what the eligibility
// topic holds at the end, subject by subject.
func TestFindingsEqualStreamingEvents(t *testing.T) {
	env := kafkatest.Start(t)
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	now := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	full, err := gen.Generate(dir, gen.Config{ServicePoints: 120, Months: 14, Seed: 5, Now: now, Anomalies: kinds})
	if err != nil {
		t.Fatal(err)
	}
	// A later customer/usage pair. The generator numbers service points from
	// 1, so it delivers other accounts and usage for service points of the
	// full file: late history, overlaps, corrections and supersessions that
	// both paths must agree on.
	split, err := gen.Generate(dir, gen.Config{ServicePoints: 40, Months: 14, Seed: 6, Now: now.Add(time.Hour),
		Split: true, Utility: "gec", Anomalies: map[gen.Kind]int{"U2_GAP": 1, "BAD_DATE": 1}})
	if err != nil {
		t.Fatal(err)
	}
	files := append(slices.Clone(full.Files), split.Files...)

	policy := rules.DefaultPolicy()
	rep, err := Run(context.Background(), files, Options{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, files); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(ctx, env.Kafka, policy)
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	stages := p.Stages()
	errs := make(chan error, len(stages))
	for _, st := range stages {
		go func() { errs <- runtime.Run(ctx, runtime.Config{Kafka: env.Kafka, DataDir: stateDir}, st) }()
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 3*time.Minute)
	waited := make(chan error, 1)
	go func() { waited <- pipeline.WaitCaughtUp(waitCtx, env.Kafka) }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-errs:
		t.Fatalf("a stage stopped: %v", err)
	}
	waitCancel()
	cancel()
	for range stages {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	read := func(topic string) []map[string]any {
		return kafkatest.Decode(t, env.Kafka, kafkatest.ReadAll(t, env.Kafka, topic))
	}

	// Stage 1 events and rejected rows, one line each.
	var want []string
	for _, m := range read(env.Topics.Corrections) {
		want = append(want, fmt.Sprintf("correction %s %s %s", m["service_point_id"], m["kind"], cause(m)))
	}
	for _, m := range read(env.Topics.Anomalies) {
		want = append(want, fmt.Sprintf("anomaly %s %s cleared=%v %s", m["service_point_id"], m["code"], m["cleared"], cause(m)))
	}
	// A refused or changed account is an account event and an anomaly of
	// the same code at the same row; the report counts it once, as the
	// anomaly (issue 17).
	raised := map[string]bool{}
	for _, w := range want {
		raised[w] = true
	}
	for _, m := range read(env.Topics.AccountEvents) {
		if raised[fmt.Sprintf("anomaly %s %s cleared=false %s", m["service_point_id"], m["type"], cause(m))] {
			continue
		}
		want = append(want, fmt.Sprintf("account %s %s %s", m["service_point_id"], m["type"], cause(m)))
	}
	for _, m := range read(env.Topics.Rejected) {
		src := m["source"].(map[string]any)
		for _, r := range m["reasons"].([]any) {
			rr := r.(map[string]any)
			want = append(want, fmt.Sprintf("rejected %s %s %s:%v", rr["rule"], rr["code"], src["file"], src["line"]))
		}
	}
	var got []string
	var total int64
	for _, g := range rep.Rules {
		total += g.Count
		if int64(len(g.Findings)) != g.Count {
			t.Fatalf("%s %s %s: %d findings kept of %d with Examples 0", g.Kind, g.Rule, g.Code, len(g.Findings), g.Count)
		}
		for _, f := range g.Findings {
			switch f.Kind {
			case report.KindCorrection:
				got = append(got, fmt.Sprintf("correction %s %s %s:%d", f.ServicePointID, f.Code, f.File, f.Line))
			case report.KindAnomaly:
				got = append(got, fmt.Sprintf("anomaly %s %s cleared=%v %s:%d", f.ServicePointID, f.Code, f.Cleared, f.File, f.Line))
			case report.KindAccount:
				got = append(got, fmt.Sprintf("account %s %s %s:%d", f.ServicePointID, f.Code, f.File, f.Line))
			case report.KindRejected:
				got = append(got, fmt.Sprintf("rejected %s %s %s:%d", f.Rule, f.Code, f.File, f.Line))
			}
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) < 50 {
		t.Fatalf("only %d events streamed: the scenario is too thin to compare", len(want))
	}
	if d := diff(want, got); d != "" {
		t.Fatalf("validate's findings differ from the streamed events (- streamed, + validate):\n%s", d)
	}

	// Final eligibility per (customer, premise, program).
	final := map[string]string{}
	for _, m := range read(env.Topics.Eligibility) {
		var rs []string
		for _, r := range m["reasons"].([]any) {
			rr := r.(map[string]any)
			rs = append(rs, fmt.Sprintf("%s/%s/%s", rr["code"], rr["rule"], str(rr["service_point_id"])))
		}
		slices.Sort(rs)
		final[fmt.Sprintf("%s %s %s", m["program"], m["customer_id"], m["premise_id"])] = strings.Join(rs, ",")
	}
	counted := map[string][2]int64{} // program -> eligible, not eligible
	streamedBlocked := map[string]string{}
	for k, rs := range final {
		prog := strings.Fields(k)[0]
		c := counted[prog]
		if rs == "" {
			c[0]++
		} else {
			c[1]++
			streamedBlocked[k] = rs
		}
		counted[prog] = c
	}
	validateBlocked := map[string]string{}
	for _, p := range rep.Eligibility {
		if c := counted[p.Program]; c[0] != p.Eligible || c[1] != p.NotEligible {
			t.Errorf("%s: streamed %d eligible and %d not, validate %d and %d", p.Program, c[0], c[1], p.Eligible, p.NotEligible)
		}
		if p.Subjects != p.Eligible+p.NotEligible {
			t.Errorf("%s: %d subjects but %d + %d", p.Program, p.Subjects, p.Eligible, p.NotEligible)
		}
		for _, s := range p.Examples {
			var rs []string
			for _, r := range s.Reasons {
				rs = append(rs, fmt.Sprintf("%s/%s/%s", r.Code, r.Rule, r.ServicePointID))
			}
			slices.Sort(rs)
			validateBlocked[fmt.Sprintf("%s %s %s", p.Program, s.CustomerID, s.PremiseID)] = strings.Join(rs, ",")
		}
	}
	for k, v := range streamedBlocked {
		if validateBlocked[k] != v {
			t.Errorf("%s: streamed reasons %q, validate %q", k, v, validateBlocked[k])
		}
	}
	if len(validateBlocked) != len(streamedBlocked) {
		t.Errorf("%d subjects×programs blocked in validate, %d streamed", len(validateBlocked), len(streamedBlocked))
	}
	t.Logf("%d findings (%d stage 1 events and rejected reasons), %d eligibility subjects×programs", total, len(got), len(final))
}

func cause(m map[string]any) string {
	c := m["cause"].(map[string]any)
	return fmt.Sprintf("%s:%s", str(c["file"]), str(c["line"]))
}

// str unwraps the Avro union maps that nullable fields decode to.
func str(v any) string {
	if m, ok := v.(map[string]any); ok {
		for _, x := range m {
			return str(x)
		}
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// diff lists the lines only in a (-) or only in b (+), both sorted.
func diff(a, b []string) string {
	var out []string
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, "- "+a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, "+ "+b[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(out) > 60 {
		out = append(out[:60], fmt.Sprintf("... %d more", len(out)-60))
	}
	return strings.Join(out, "\n")
}
