package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
	recavro "github.com/usagestream/usagestream/records/avro"
)

type demoCmd struct {
	connFlags
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
	s, err := startStack(ctx, g, stackOptions{DataDir: filepath.Join(dir, "embedded"), Partitions: 3, Replication: 1})
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
	dec := recavro.NewDecoder(serde.NewRegistry(rc))
	read := func(topic string) ([]recavro.Record, error) {
		recs, err := consume.All(ctx, kc, topic)
		if err != nil {
			return nil, err
		}
		out := make([]recavro.Record, 0, len(recs))
		for _, r := range recs {
			rec, _, err := dec.Decode(ctx, r.Value)
			if err != nil {
				return nil, fmt.Errorf("%s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			out = append(out, rec)
		}
		return out, nil
	}
	rows, err := readAs[recavro.BillingRow](read, names.Billing)
	if err != nil {
		return err
	}
	rejected, err := readAs[recavro.RejectedRow](read, names.Rejected)
	if err != nil {
		return err
	}
	files, err := readAs[recavro.FileEvent](read, names.Files)
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
		fmt.Fprintf(w, "  %s %s  account %s  %s..%s  %s %s  rate %s  (%s line %d)\n",
			m.ServicePointID, recavro.Deref(m.ServiceType), recavro.Deref(m.AccountID),
			periodStart(m), optDate(m.DateTo), optNumber(m.UsageValue), recavro.Deref(m.IsEstimate),
			recavro.Deref(m.RateCode), m.Source.File, m.Source.Line)
	}
	fmt.Fprintln(w, "\nRejected rows, explained (Avro RejectedRow):")
	slices.SortStableFunc(rejected, func(a, b *recavro.RejectedRow) int { return cmp.Compare(a.Source.Line, b.Source.Line) })
	for _, m := range rejected {
		for _, r := range m.Reasons {
			field := recavro.Deref(r.Field)
			if field == "" {
				field = "(row)"
			}
			fmt.Fprintf(w, "  %s line %d, %s: %s [%s, rule %s]\n", m.Source.File, m.Source.Line, field, r.Message, r.Code, r.Rule)
		}
	}
	if err := showEvents(w, names, read); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nFile events:")
	for _, m := range files {
		fmt.Fprintf(w, "  %s %s read %d = published %d + rejected %d\n", m.Status, m.File, m.RowsRead, m.RowsPublished, m.RowsRejected)
	}
	return nil
}

// readAs reads topic and keeps its records of type T.
func readAs[T any](read func(string) ([]recavro.Record, error), topic string) ([]*T, error) {
	recs, err := read(topic)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(recs))
	for _, r := range recs {
		v, ok := any(r).(*T)
		if !ok {
			return nil, fmt.Errorf("a %s record on %s", r.Schema(), topic)
		}
		out = append(out, v)
	}
	return out, nil
}

func optDate(d *dates.Date) string {
	if d == nil {
		return ""
	}
	return d.Time().Format(time.DateOnly)
}

func optNumber(f *float64) string {
	if f == nil {
		return ""
	}
	return fmt.Sprint(*f)
}

func periodStart(m *recavro.BillingRow) string {
	if m.DateTo == nil || m.Duration == nil {
		return ""
	}
	return (*m.DateTo - dates.Date(*m.Duration) + 1).Time().Format(time.DateOnly)
}

// showEvents prints the processors' output: corrections, anomalies, and the
// subjects blocked for communications with every reason and its source.
func showEvents(w io.Writer, names topics.Names, read func(string) ([]recavro.Record, error)) error {
	elig, err := readAs[recavro.EligibilityChanged](read, names.Eligibility)
	if err != nil {
		return err
	}
	corr, err := readAs[recavro.UsageCorrected](read, names.Corrections)
	if err != nil {
		return err
	}
	acct, err := readAs[recavro.AccountEvent](read, names.AccountEvents)
	if err != nil {
		return err
	}
	anom, err := readAs[recavro.Anomaly](read, names.Anomalies)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-32s %7d records\n", names.Eligibility, len(elig))
	fmt.Fprintf(w, "%-32s %7d records\n", names.Corrections, len(corr))
	fmt.Fprintf(w, "%-32s %7d records\n", names.AccountEvents, len(acct))
	fmt.Fprintf(w, "%-32s %7d records\n", names.Anomalies, len(anom))

	fmt.Fprintln(w, "\nCorrections (Avro UsageCorrected):")
	for _, m := range corr {
		fmt.Fprintf(w, "  %s period ending %s: %v -> %v  [%s, rule %s] %s\n", m.ServicePointID, optDate(&m.DateTo),
			m.OldValue, m.NewValue, m.Kind, m.Rule, causeOf(&m.Cause))
	}
	fmt.Fprintln(w, "\nAnomalies (Avro Anomaly):")
	for _, m := range anom {
		state := "raised"
		if m.Cleared {
			state = "cleared"
		}
		fmt.Fprintf(w, "  %s %s %s [rule %s]: %s %s\n", m.ServicePointID, m.Code, state, m.Rule, m.Message, causeOf(&m.Cause))
	}
	// The latest event per (customer, premise, program) is its current state.
	type subject struct{ customer, premise string }
	latest := map[subject]map[string]*recavro.EligibilityChanged{}
	var order []subject
	for _, m := range elig {
		k := subject{m.CustomerID, m.PremiseID}
		if latest[k] == nil {
			latest[k] = map[string]*recavro.EligibilityChanged{}
			order = append(order, k)
		}
		latest[k][m.Program] = m
	}
	counts := map[string][2]int{}
	for _, k := range order {
		for prog, m := range latest[k] {
			c := counts[prog]
			if m.Eligible {
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
		if m == nil || m.Eligible || shown >= 20 {
			continue
		}
		shown++
		fmt.Fprintf(w, "  customer %s at premise %s:\n", k.customer, k.premise)
		for _, r := range m.Reasons {
			until := ""
			if u := optDate(r.Until); u != "" {
				until = " until " + u
			}
			fmt.Fprintf(w, "    %s (rule %s) %s since %s%s, from %s\n", r.Code, r.Rule, recavro.Deref(r.ServicePointID),
				optDate(&r.EffectiveDate), until, causeOf(&r.Source))
		}
	}
	return nil
}

func causeOf(c *recavro.Cause) string {
	if c.File != nil {
		line := ""
		if c.Line != nil {
			line = fmt.Sprint(*c.Line)
		}
		return fmt.Sprintf("(%s line %s)", *c.File, line)
	}
	return fmt.Sprintf("(%s[%v]@%v)", c.Topic, c.Partition, c.Offset)
}
