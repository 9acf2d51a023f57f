package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/usagestream/usagestream/processors/query"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/sinks/jsonl"
	"github.com/usagestream/usagestream/sinks/postgres"
	"github.com/usagestream/usagestream/sinks/sink"
	"github.com/usagestream/usagestream/sinks/webhook"
)

// descRecorder is a Registerer that keeps the name and variable labels of
// every metric registered with it.
type descRecorder map[string][]string

var (
	descName   = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

func (r descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		s := d.String()
		n, l := descName.FindStringSubmatch(s), descLabels.FindStringSubmatch(s)
		if n == nil || l == nil {
			return fmt.Errorf("cannot read %s", s)
		}
		var labels []string
		for _, x := range strings.Split(l[1], ",") {
			if x = strings.TrimSuffix(strings.TrimPrefix(x, "c("), ")"); x != "" {
				labels = append(labels, x)
			}
		}
		r[n[1]] = labels
	}
	return nil
}

func (r descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r descRecorder) Unregister(prometheus.Collector) bool { return false }

// exportedMetrics are the usagestream metrics the binary registers: those
// of the stages (run, process), the sinks (run, sink), the drop folder
// (ingest --watch) and the query API, through the constructors the
// commands call.
func exportedMetrics(t *testing.T) descRecorder {
	t.Helper()
	r := descRecorder{}
	runtime.NewMetrics(r)
	sink.NewMetrics(r)
	jsonl.NewMetrics(r)
	postgres.NewMetrics(r)
	webhook.NewMetrics(r)
	newIngestMetrics(r)
	query.New(query.Config{Metrics: r}).Close()
	if len(r) < 20 {
		t.Fatalf("only %d metrics recorded: %v", len(r), r)
	}
	return r
}

var (
	metricRef   = regexp.MustCompile(`\busagestream_[a-z0-9_]+`)
	selectorRef = regexp.MustCompile(`\b(usagestream_[a-z0-9_]+)\{([^}]*)\}`)
	matcherRef  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	byRef       = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// checkExpr lists what in a PromQL expression the binary does not export:
// a metric name, a label a selector matches on, a label an aggregation
// groups by that none of the expression's metrics has.
func checkExpr(expr string, exported descRecorder) []string {
	var problems []string
	base := func(name string) (string, bool) {
		if _, ok := exported[name]; ok {
			return name, true
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok {
				if _, ok := exported[b]; ok {
					return b, true
				}
			}
		}
		return "", false
	}
	labels := map[string]bool{"le": true}
	for _, name := range metricRef.FindAllString(expr, -1) {
		b, ok := base(name)
		if !ok {
			problems = append(problems, fmt.Sprintf("metric %s is not exported by the binary", name))
			continue
		}
		for _, l := range exported[b] {
			labels[l] = true
		}
	}
	for _, m := range selectorRef.FindAllStringSubmatch(expr, -1) {
		b, ok := base(m[1])
		if !ok {
			continue
		}
		for _, lm := range matcherRef.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(exported[b], lm[1]) {
				problems = append(problems, fmt.Sprintf("%s has no label %s (it has %v)", m[1], lm[1], exported[b]))
			}
		}
	}
	for _, m := range byRef.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !labels[l] {
				problems = append(problems, fmt.Sprintf("grouped by %s, a label none of its metrics has", l))
			}
		}
	}
	return problems
}

// TestMonitoringUsesExportedMetrics: every metric the Grafana dashboard and
// the Prometheus alerting rules of compose/ use, with every label they
// match or group on, is one the binary exports; the rules cover stage lag,
// aborts, quarantined records, restore, sink lag and stale feeds; the
// scrape targets are the compose services' HTTP addresses.
func TestMonitoringUsesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)

	var exprs []struct{ where, expr string }
	b, err := os.ReadFile("../../compose/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("compose/prometheus/alerts.yml: %v", err)
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, struct{ where, expr string }{"alert " + r.Alert, r.Expr})
			alerts = append(alerts, r.Alert+" "+r.Expr)
		}
	}
	b, err = os.ReadFile("../../compose/grafana/dashboards/usagestream.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("compose/grafana/dashboards/usagestream.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, struct{ where, expr string }{"panel " + p.Title, tg.Expr})
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, p := range checkExpr(e.expr, exported) {
			t.Errorf("%s: %s\n  %s", e.where, p, e.expr)
		}
		for _, n := range metricRef.FindAllString(e.expr, -1) {
			used[n] = true
		}
	}
	// What operators must be told of, each by an alert and a panel.
	for topic, metric := range map[string]string{
		"stage lag": "usagestream_processor_consumer_lag_records", "aborts": "usagestream_processor_transactions_aborted_total",
		"quarantined records": "usagestream_processor_records_quarantined_total", "restore": "usagestream_processor_restore_remaining_records",
		"sink lag": "usagestream_sink_lag_records", "stale feeds": "usagestream_ingest_last_file_timestamp_seconds",
	} {
		if !slices.ContainsFunc(alerts, func(a string) bool { return strings.Contains(a, metric) }) {
			t.Errorf("no alert on %s (%s)", topic, metric)
		}
		if !slices.ContainsFunc(dash.Panels, func(p panel) bool {
			return slices.ContainsFunc(p.Targets, func(tg target) bool { return strings.Contains(tg.Expr, metric) })
		}) {
			t.Errorf("no panel on %s (%s)", topic, metric)
		}
	}

	// The scrape targets are the HTTP addresses the compose file gives.
	b, err = os.ReadFile("../../compose/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	compose, err := os.ReadFile("../../compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(prom.RuleFiles, "/etc/prometheus/alerts.yml") || !strings.Contains(string(compose), "./prometheus:/etc/prometheus:ro") {
		t.Errorf("prometheus.yml loads %v; the compose file must mount compose/prometheus at /etc/prometheus", prom.RuleFiles)
	}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				_, port, _ := strings.Cut(target, ":")
				if !strings.Contains(string(compose), "0.0.0.0:"+port) {
					t.Errorf("scrape target %s: no service of the compose file listens on port %s", target, port)
				}
			}
		}
	}
}

// TestCheckExprFindsMistakes: the check above catches a metric the binary
// lacks, a label a metric lacks, and a grouping on such a label.
func TestCheckExprFindsMistakes(t *testing.T) {
	exported := exportedMetrics(t)
	for expr, want := range map[string]string{
		`sum(rate(usagestream_processor_records_in_totl[5m]))`:                           "usagestream_processor_records_in_totl is not exported",
		`usagestream_sink_lag_records{stage="x"}`:                                        "has no label stage",
		`sum by (sink) (usagestream_processor_consumer_lag_records)`:                     "grouped by sink",
		`histogram_quantile(0.9, rate(usagestream_processor_commit_seconds_bucket[5m]))`: "",
	} {
		got := strings.Join(checkExpr(expr, exported), "; ")
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: problems %q, want %q", expr, got, want)
		}
	}
}
