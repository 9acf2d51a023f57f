package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

type demoCmd struct {
	DataDir       string `name:"data-dir" help:"Keep the embedded broker's data and the sample files here (default: a temporary folder, removed at the end)."`
	ServicePoints int    `name:"service-points" default:"300" help:"Size of the generated sample."`
	Seed          int64  `name:"seed" default:"7" help:"Seed of the generated sample."`
}

func (d *demoCmd) Run(ctx context.Context, g *Globals) error {
	out := os.Stdout
	dir := d.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "usagestream-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// Free ports, so the demo never collides with a running 'usagestream run'.
	s, err := startStack(ctx, g, filepath.Join(dir, "embedded"), 0, 0, 3, 1, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	section(out, "1. Embedded default")
	fmt.Fprintf(out, "Kafka broker %s, schema registry %s (127.0.0.1 only, data in %s)\n",
		strings.Join(s.kc.BrokerList(), ","), s.kc.RedactedRegistryURL(), filepath.Join(dir, "embedded"))

	section(out, "2. Sample files")
	incoming := filepath.Join(dir, "incoming")
	if err := os.MkdirAll(incoming, 0o750); err != nil {
		return err
	}
	anomalies, err := gen.ParseAnomalies("all=1")
	if err != nil {
		return err
	}
	res, err := gen.Generate(incoming, gen.Config{ServicePoints: d.ServicePoints, Seed: d.Seed, Anomalies: anomalies})
	if err != nil {
		return err
	}
	var malformed int
	for _, l := range res.Labels {
		if l.RejectCode != "" {
			malformed++
		}
	}
	for _, f := range res.Files {
		fmt.Fprintf(out, "%s: %d rows\n", filepath.Base(f), res.RowsByFile[filepath.Base(f)])
	}
	fmt.Fprintf(out, "%d anomalies injected and labelled, %d of them malformed rows the reader must reject\n", len(res.Labels), malformed)

	section(out, "3. usagestream ingest")
	lim := ingest.DefaultRejectLimit() // the flags' defaults: ic is not parsed from flags
	ic := ingestCmd{ServiceTypes: []string{"E", "G", "W"}, ChunkRows: 50_000, Progress: "auto", MaxRejects: lim.MaxRows, MaxRejectShare: lim.MaxShare}
	in, err := ingest.New(ctx, s.kc, ic.config(g, os.Stderr))
	if err != nil {
		return err
	}
	results, err := in.Run(ctx, res.Files)
	printSummary(out, results)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nThe same file again (idempotence):")
	again, err := in.Run(ctx, res.Files[:1])
	printSummary(out, again)
	if err != nil {
		return err
	}

	section(out, "4. usagestream process (stages per service point, premise, customer and interval feed, exactly once)")
	if err := processUntilCaughtUp(ctx, g, s.kc, filepath.Join(dir, "state")); err != nil {
		return err
	}
	fmt.Fprintln(out, "every stage caught up with its input")

	section(out, "5. What landed on Kafka (read_committed)")
	if err := showTopics(ctx, out, s.kc); err != nil {
		return err
	}
	section(out, "Next")
	fmt.Fprintln(out, "usagestream run                 # serve the embedded broker and registry on 127.0.0.1:9092 and :8081")
	fmt.Fprintln(out, "usagestream gen -o drop --anomalies all=1 && usagestream ingest drop/*.gz")
	return nil
}

// processUntilCaughtUp runs the processors until every stage has read
// everything ingested so far.
func processUntilCaughtUp(ctx context.Context, g *Globals, kc kafkaconf.Config, stateDir string) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runProcessors(pctx, kc, processFlags{StateDir: stateDir, SessionTimeout: 10 * time.Second}, prometheus.NewRegistry(), &atomic.Bool{}, g.log)
	}()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	caught := make(chan error, 1)
	go func() {
		caught <- pipeline.WaitCaughtUp(wctx, kc)
	}()
	select {
	case err := <-done: // a processor stopped before catching up
		if err == nil {
			err = errors.New("the processors stopped before catching up")
		}
		return err
	case err := <-caught:
		cancel()
		if perr := <-done; perr != nil {
			return perr
		}
		return err
	}
}

func section(w io.Writer, title string) { fmt.Fprintf(w, "\n== %s\n", title) }

// showTopics prints record counts per topic, a few decoded billing records
// (personal fields left out) and every rejected row's reasons.
func showTopics(ctx context.Context, w io.Writer, kc kafkaconf.Config) error {
	names := topics.NewNames(kc.TopicPrefix)
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return err
	}
	reg := serde.NewRegistry(rc)
	read := func(topic string) ([]map[string]any, error) {
		recs, err := consume.All(ctx, kc, topic)
		if err != nil {
			return nil, err
		}
		out := make([]map[string]any, 0, len(recs))
		for _, r := range recs {
			m, _, err := reg.Decode(ctx, r.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	rows, err := read(names.Billing)
	if err != nil {
		return err
	}
	rejected, err := read(names.Rejected)
	if err != nil {
		return err
	}
	files, err := read(names.Files)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-32s %7d records\n", names.Billing, len(rows))
	fmt.Fprintf(w, "%-32s %7d records\n", names.Rejected, len(rejected))
	fmt.Fprintf(w, "%-32s %7d records\n", names.Files, len(files))

	fmt.Fprintln(w, "\nA few billing rows (Avro BillingRow, key service_point_id; addresses not shown):")
	for i, m := range rows {
		if i == 3 {
			break
		}
		fmt.Fprintf(w, "  %s %s  account %s  %s..%s  %v %s  rate %s  (%s line %d)\n",
			m["service_point_id"], unwrap(m["service_type"]), unwrap(m["account_id"]),
			periodStart(m), unwrap(m["date_to"]), unwrap(m["usage_value"]), unwrap(m["is_estimate"]),
			unwrap(m["rate_code"]), m["source"].(map[string]any)["file"], m["source"].(map[string]any)["line"])
	}
	fmt.Fprintln(w, "\nRejected rows, explained (Avro RejectedRow):")
	sort.Slice(rejected, func(a, b int) bool {
		return rejected[a]["source"].(map[string]any)["line"].(int64) < rejected[b]["source"].(map[string]any)["line"].(int64)
	})
	for _, m := range rejected {
		src := m["source"].(map[string]any)
		for _, r := range m["reasons"].([]any) {
			rr := r.(map[string]any)
			field := unwrap(rr["field"])
			if field == "" {
				field = "(row)"
			}
			fmt.Fprintf(w, "  %s line %d, %s: %s [%s, rule %s]\n", src["file"], src["line"], field, rr["message"], rr["code"], rr["rule"])
		}
	}
	if err := showEvents(w, names, read); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nFile events:")
	for _, m := range files {
		fmt.Fprintf(w, "  %s %s read %d = published %d + rejected %d\n", m["status"], m["file"], m["rows_read"], m["rows_published"], m["rows_rejected"])
	}
	return nil
}

// unwrap renders a goavro union value ({"type": v}) or a plain value.
func unwrap(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case map[string]any:
		for _, inner := range x {
			return unwrap(inner)
		}
		return ""
	case time.Time:
		return x.Format("2006-01-02")
	default:
		return fmt.Sprint(x)
	}
}

func periodStart(m map[string]any) string {
	to, ok1 := m["date_to"].(map[string]any)
	dur, ok2 := m["duration"].(map[string]any)
	if !ok1 || !ok2 {
		return ""
	}
	t, _ := to["int.date"].(time.Time)
	n, _ := dur["int"].(int32)
	return t.AddDate(0, 0, 1-int(n)).Format("2006-01-02")
}

// showEvents prints the processors' output: corrections, anomalies, and the
// subjects blocked for communications with every reason and its source.
func showEvents(w io.Writer, names topics.Names, read func(string) ([]map[string]any, error)) error {
	elig, err := read(names.Eligibility)
	if err != nil {
		return err
	}
	corr, err := read(names.Corrections)
	if err != nil {
		return err
	}
	acct, err := read(names.AccountEvents)
	if err != nil {
		return err
	}
	anom, err := read(names.Anomalies)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-32s %7d records\n", names.Eligibility, len(elig))
	fmt.Fprintf(w, "%-32s %7d records\n", names.Corrections, len(corr))
	fmt.Fprintf(w, "%-32s %7d records\n", names.AccountEvents, len(acct))
	fmt.Fprintf(w, "%-32s %7d records\n", names.Anomalies, len(anom))

	fmt.Fprintln(w, "\nCorrections (Avro UsageCorrected):")
	for _, m := range corr {
		fmt.Fprintf(w, "  %s period ending %s: %v -> %v  [%s, rule %s] %s\n", m["service_point_id"], unwrap(m["date_to"]),
			m["old_value"], m["new_value"], m["kind"], m["rule"], causeOf(m))
	}
	fmt.Fprintln(w, "\nAnomalies (Avro Anomaly):")
	for _, m := range anom {
		state := "raised"
		if m["cleared"] == true {
			state = "cleared"
		}
		fmt.Fprintf(w, "  %s %s %s [rule %s]: %s %s\n", m["service_point_id"], m["code"], state, m["rule"], m["message"], causeOf(m))
	}
	// The latest event per (customer, premise, program) is its current state.
	type subject struct{ customer, premise string }
	latest := map[subject]map[string]map[string]any{}
	var order []subject
	for _, m := range elig {
		k := subject{fmt.Sprint(m["customer_id"]), fmt.Sprint(m["premise_id"])}
		if latest[k] == nil {
			latest[k] = map[string]map[string]any{}
			order = append(order, k)
		}
		latest[k][fmt.Sprint(m["program"])] = m
	}
	counts := map[string][2]int{}
	for _, k := range order {
		for prog, m := range latest[k] {
			c := counts[prog]
			if m["eligible"] == true {
				c[0]++
			} else {
				c[1]++
			}
			counts[prog] = c
		}
	}
	fmt.Fprintf(w, "\nEligibility now (Avro EligibilityChanged; %d customers at premises):\n", len(order))
	for _, prog := range []string{"communications", "web_access", "neighbor_comparison", "dual_fuel_insights", "disaggregation"} {
		fmt.Fprintf(w, "  %-20s %5d eligible %5d not eligible\n", prog, counts[prog][0], counts[prog][1])
	}
	fmt.Fprintln(w, "\nWhy customers are not eligible for communications (or neighbor comparison):")
	shown := 0
	for _, k := range order {
		m := latest[k]["neighbor_comparison"]
		if m == nil || m["eligible"] == true || shown >= 20 {
			continue
		}
		shown++
		fmt.Fprintf(w, "  customer %s at premise %s:\n", k.customer, k.premise)
		for _, r := range m["reasons"].([]any) {
			rr := r.(map[string]any)
			until := ""
			if u := unwrap(rr["until"]); u != "" {
				until = " until " + u
			}
			fmt.Fprintf(w, "    %s (rule %s) %s since %s%s, from %s\n", rr["code"], rr["rule"], unwrap(rr["service_point_id"]),
				unwrap(rr["effective_date"]), until, causeOf(map[string]any{"cause": rr["source"]}))
		}
	}
	return nil
}

func causeOf(m map[string]any) string {
	c, ok := m["cause"].(map[string]any)
	if !ok {
		return ""
	}
	if f := unwrap(c["file"]); f != "" {
		return fmt.Sprintf("(%s line %s)", f, unwrap(c["line"]))
	}
	return fmt.Sprintf("(%s[%v]@%v)", c["topic"], c["partition"], c["offset"])
}
