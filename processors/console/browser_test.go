package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usagestream/usagestream/internal/browsertest"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/console"
	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/query"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	"github.com/usagestream/usagestream/processors/runtime/runtimetest"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/producers/ingest"
)

const token = "console-test-token"

// stack is the demo's data (generated billing files with one of every
// labelled anomaly, and interval reads) ingested into an embedded broker,
// processed by every stage, and served as run serves it: the query API
// under /v1/ behind a token, the console under /console/.
type stack struct {
	url    string
	labels []gen.Label
}

func startStack(t *testing.T) stack {
	t.Helper()
	env := kafkatest.Start(t)
	now := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	dir := t.TempDir()
	res, err := gen.Generate(dir, gen.Config{ServicePoints: 60, Months: 14, Seed: 21, Now: now, Anomalies: kinds})
	if err != nil {
		t.Fatal(err)
	}
	iv, _, err := gen.GenerateIntervals(dir, gen.IntervalConfig{ServicePoints: 60, Days: 30, Minutes: 60, Seed: 3, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	in, err := ingest.New(ctx, env.Kafka, ingest.Config{Topics: env.Topics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Run(ctx, append(res.Files, iv)); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(ctx, env.Kafka, rules.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := runtime.NewMetrics(reg)
	for _, s := range p.Topology().Stages {
		m.Declare(s.Name, s.Inputs, s.Outputs)
	}
	api := query.New(query.Config{Kafka: env.Kafka, Token: token, Metrics: reg, Gatherer: reg})
	h, err := console.Handler(console.Config{TokenRequired: api.TokenRequired()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", api.Handler())
	mux.Handle("/console", h)
	mux.Handle(console.Path, h)
	ts := httptest.NewServer(mux)
	api.Listening(strings.TrimPrefix(ts.URL, "http://"))
	t.Cleanup(func() { ts.Close(); api.Close() })
	runtimetest.StartAll(t, ctx, p.Stages(), func(runtime.Stage) runtime.Config {
		return runtime.Config{Kafka: env.Kafka, DataDir: t.TempDir(), SessionTimeout: 6 * time.Second, Metrics: m}
	}, api.Attach)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer wcancel()
	if err := pipeline.WaitCaughtUp(wctx, env.Kafka); err != nil {
		t.Fatal(err)
	}
	return stack{url: ts.URL, labels: res.Labels}
}

func apiGet[T any](t *testing.T, base, path string) T {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// screenshotDir is where the screenshots go: $USAGESTREAM_SCREENSHOTS, or
// the test's temporary folder.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("USAGESTREAM_SCREENSHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// TestConsoleInChromium opens the console in headless Chromium against the
// demo's data: the login takes the token (kept in sessionStorage, in no
// URL); a service point and a customer are searched through the form, the
// files and stages pages opened; every number on the page equals the query
// API's; no console error, no failed request, no request to another
// origin; screenshots of each page are saved.
func TestConsoleInChromium(t *testing.T) {
	browser := browsertest.Path(t)
	s := startStack(t)
	shots := screenshotDir(t)

	// A service point with a gap, and a customer blocked by it.
	var gap gen.Label
	for _, l := range s.labels {
		if l.Rule == "U2" {
			gap = l
		}
	}
	if gap.ServicePointID == "" {
		t.Fatal("no labelled gap")
	}
	sp := apiGet[query.ServicePoint](t, s.url, "/v1/service-points/"+url.PathEscape(gap.ServicePointID))
	corr := apiGet[query.Corrections](t, s.url, "/v1/service-points/"+url.PathEscape(gap.ServicePointID)+"/corrections")
	cov := apiGet[query.Coverage](t, s.url, "/v1/service-points/"+url.PathEscape(gap.ServicePointID)+"/intervals")
	customerID := sp.Accounts[len(sp.Accounts)-1].CustomerID
	cust := apiGet[query.Customer](t, s.url, "/v1/customers/"+url.PathEscape(customerID))
	var premises []query.Premise
	for _, p := range cust.Premises {
		premises = append(premises, apiGet[query.Premise](t, s.url, "/v1/customers/"+url.PathEscape(customerID)+"/premises/"+url.PathEscape(p.PremiseID)))
	}
	files := apiGet[query.Files](t, s.url, "/v1/files")
	stages := apiGet[query.Stages](t, s.url, "/v1/stages")

	b := browsertest.Start(t, browser)
	ctx := b.Ctx

	tctx, tcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer tcancel()
	text := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(tctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	stat := func(key string) int {
		t.Helper()
		v := text(`document.querySelector('[data-k="` + key + `"]').textContent`)
		n, err := strconv.Atoi(strings.ReplaceAll(v, ",", ""))
		if err != nil {
			t.Fatalf("stat %s: %q is no number", key, v)
		}
		return n
	}
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tctx, actions...); err != nil {
			t.Fatal(err)
		}
	}

	// Login.
	do(chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	do(chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button")), chromedp.WaitVisible(chromedp.CSS("#search")))
	if got := text(`sessionStorage.getItem("usagestream-api-token")`); got != token {
		t.Errorf("sessionStorage holds %q, want the token", got)
	}

	// A service point, searched through the form.
	do(chromedp.SetValue(chromedp.CSS("#search-kind"), "sp"), chromedp.SendKeys(chromedp.CSS("#search-id"), gap.ServicePointID), chromedp.Click(chromedp.CSS("#search button")),
		chromedp.WaitVisible(chromedp.CSS(`[data-k="sp-id"]`)), chromedp.WaitVisible(chromedp.CSS("figure.timeline svg")))
	gaps, overlaps := 0, 0
	for i := 1; i < len(sp.Timeline); i++ {
		prevEnd, _ := time.Parse(time.DateOnly, sp.Timeline[i-1].DateTo)
		start, _ := time.Parse(time.DateOnly, sp.Timeline[i].Start)
		switch d := start.Sub(prevEnd).Hours() / 24; {
		case d > 1:
			gaps++
		case d < 1:
			overlaps++
		}
	}
	days := 0
	for _, c := range cov.Channels {
		days += len(c.Days)
	}
	for key, want := range map[string]int{"periods": len(sp.Timeline), "corrections": len(corr.Corrections), "accounts": len(sp.Accounts),
		"anomalies": len(sp.Anomalies), "gaps": gaps, "overlaps": overlaps, "interval-days": days} {
		if got := stat(key); got != want {
			t.Errorf("service point page: %s %d, the API says %d", key, got, want)
		}
	}
	if gaps == 0 {
		t.Errorf("the labelled gap's service point has no gap in its timeline: %+v", sp.Timeline)
	}
	if n := text(`String(document.querySelectorAll("svg.chart rect.bar").length)`); n != strconv.Itoa(len(sp.Timeline)) {
		t.Errorf("%s bars drawn for %d periods", n, len(sp.Timeline))
	}
	if n := text(`String(document.querySelectorAll("svg.chart rect.gap").length)`); n != strconv.Itoa(gaps) {
		t.Errorf("%s gaps marked for %d", n, gaps)
	}
	// Charges show their cents (59.30, not 59.3), as on a bill.
	if bad := text(`Array.prototype.map.call(document.querySelectorAll("table.periods tbody tr td:nth-child(5)"), function(td){ return td.textContent; })
		.filter(function(v){ return v !== "" && !/^[0-9]{1,3}(,[0-9]{3})*[.][0-9]{2}$/.test(v); }).join(" | ")`); bad != "" {
		t.Errorf("charges not shown with two decimals: %s", bad)
	}
	if got := text(`document.querySelector("table.anomalies tbody tr td:last-child").textContent`); len(sp.Anomalies) > 0 && got != fmt.Sprintf("%s:%d", sp.Anomalies[0].Source.File, sp.Anomalies[0].Source.Line) {
		t.Errorf("the first anomaly's source reads %q, the API says %s:%d", got, sp.Anomalies[0].Source.File, sp.Anomalies[0].Source.Line)
	}
	shot("console-service-point.png")

	// A service point with a correction: old and new values in the table,
	// a mark on the chart for each.
	var corrected gen.Label
	for _, l := range s.labels {
		if l.Rule == "U5" || (l.Rule == "U4" && corrected.ServicePointID == "") {
			corrected = l
		}
	}
	csp := apiGet[query.Corrections](t, s.url, "/v1/service-points/"+url.PathEscape(corrected.ServicePointID)+"/corrections")
	if len(csp.Corrections) == 0 {
		t.Fatalf("the labelled %s on %s made no correction", corrected.Rule, corrected.ServicePointID)
	}
	do(chromedp.Navigate(s.url+"/console/#sp/"+url.PathEscape(corrected.ServicePointID)), chromedp.WaitVisible(chromedp.CSS(`table.corrections`)))
	if got := stat("corrections"); got != len(csp.Corrections) {
		t.Errorf("corrected service point: %d corrections on the page, the API says %d", got, len(csp.Corrections))
	}
	if n := text(`String(document.querySelectorAll("svg.chart path.corr").length)`); n != strconv.Itoa(len(csp.Corrections)) {
		t.Errorf("%s corrections marked on the chart for %d", n, len(csp.Corrections))
	}
	c0 := csp.Corrections[0]
	row := text(`document.querySelector("table.corrections tbody tr").textContent`)
	for _, want := range []string{fmt.Sprint(c0.OldValue), fmt.Sprint(c0.NewValue), fmt.Sprintf("%s:%d", c0.Source.File, c0.Source.Line)} {
		if !strings.Contains(strings.ReplaceAll(row, ",", ""), want) {
			t.Errorf("the first correction's row %q lacks %q (API: %+v)", row, want, c0)
		}
	}
	shot("console-correction.png")

	// A premise, searched through the form: its service points and customers.
	premiseID := sp.Accounts[len(sp.Accounts)-1].PremiseID
	site := apiGet[query.PremiseSite](t, s.url, "/v1/premises/"+url.PathEscape(premiseID))
	do(chromedp.SetValue(chromedp.CSS("#search-kind"), "premise"), chromedp.SetValue(chromedp.CSS("#search-id"), premiseID),
		chromedp.Click(chromedp.CSS("#search button")), chromedp.WaitVisible(chromedp.CSS(`[data-k="premise-id"]`)))
	sps, custs, active := map[string]bool{}, map[string]bool{}, 0
	for _, m := range site.Members {
		sps[m.ServicePointID], custs[m.CustomerID] = true, true
		if m.Active {
			active++
		}
	}
	for key, want := range map[string]int{"service-points": len(sps), "customers": len(custs), "active": active} {
		if got := stat(key); got != want {
			t.Errorf("premise page: %s %d, the API says %d", key, got, want)
		}
	}

	// A customer, searched through the form: every program at each premise.
	do(chromedp.SetValue(chromedp.CSS("#search-kind"), "customer"), chromedp.SetValue(chromedp.CSS("#search-id"), customerID),
		chromedp.Click(chromedp.CSS("#search button")), chromedp.WaitVisible(chromedp.CSS(`[data-k="customer-id"]`)))
	eligible, blocked := 0, 0
	for _, p := range premises {
		for _, prog := range p.Programs {
			if prog.Eligible {
				eligible++
			} else {
				blocked++
			}
			sel := fmt.Sprintf(`article[data-premise=%q] tr[data-program=%q] td.verdict`, p.PremiseID, prog.Program)
			want := map[bool]string{true: "eligible", false: "not eligible"}[prog.Eligible]
			if got := text(`document.querySelector('` + sel + `').textContent`); got != want {
				t.Errorf("%s at %s, %s: page says %q, the API %q", customerID, p.PremiseID, prog.Program, got, want)
			}
			for _, r := range prog.Reasons {
				link := fmt.Sprintf(`article[data-premise=%q] a.rule[href$="#%s"]`, p.PremiseID, r.Rule)
				if text(`String(!!document.querySelector('`+link+`'))`) != "true" {
					t.Errorf("no link to docs/rules.md#%s for %s at %s", r.Rule, r.Code, p.PremiseID)
				}
				if r.Source.File != "" && !strings.Contains(text(`document.querySelector('article[data-premise="`+p.PremiseID+`"] table.programs').textContent`), fmt.Sprintf("%s:%d", r.Source.File, r.Source.Line)) {
					t.Errorf("reason %s at %s: its file line %s:%d is not shown", r.Code, p.PremiseID, r.Source.File, r.Source.Line)
				}
			}
		}
	}
	if blocked == 0 {
		t.Errorf("customer %s is eligible everywhere: the page shows no reason", customerID)
	}
	for key, want := range map[string]int{"premises": len(cust.Premises), "active-premises": cust.ActivePremises, "eligible": eligible, "blocked": blocked} {
		if got := stat(key); got != want {
			t.Errorf("customer page: %s %d, the API says %d", key, got, want)
		}
	}
	shot("console-customer.png")
	// A reason's service point links to the timeline at the reason's date.
	href := text(`(function(){ var a = document.querySelector('table.programs a[href^="#sp/"]'); return a ? a.getAttribute("href") : ""; })()`)
	if at := strings.LastIndex(href, "@"); at < 0 {
		t.Errorf("a reason's service point links to %q, not to a date on its timeline", href)
	} else {
		do(chromedp.Click(chromedp.CSS(`table.programs a[href^="#sp/"]`)), chromedp.WaitVisible(chromedp.CSS("svg.chart line.highlight")))
		if got := text(`document.querySelector("svg.chart text.highlight-label").textContent`); got != href[at+1:] {
			t.Errorf("the timeline opened from %q marks %q", href, got)
		}
	}

	// Files and stages.
	do(chromedp.Navigate(s.url+"/console/#files"), chromedp.WaitVisible(chromedp.CSS(`[data-k="files"]`)))
	// A file's newest event (the API lists newest first) holds its counts.
	var read, published, rejected, ingested int64
	newest := map[string]bool{}
	for _, f := range files.Files {
		if k := fmt.Sprint(f.SHA256, "/", f.Generation); !newest[k] {
			newest[k] = true
			ingested++
			read += f.RowsRead
			published += f.RowsPublished
			rejected += f.RowsRejected
		}
	}
	if ingested != 2 || read == 0 || rejected == 0 {
		t.Errorf("the API lists %d files, %d rows read, %d rejected; the demo ingested 2 files with rejects", ingested, read, rejected)
	}
	for key, want := range map[string]int64{"files": ingested, "rows-read": read, "rows-published": published, "rows-rejected": rejected} {
		if got := stat(key); int64(got) != want {
			t.Errorf("files page: %s %d, the API says %d", key, got, want)
		}
	}
	shot("console-files.png")
	// At rest every stage's lag comes to 0 once a poll finds nothing left
	// (the commit markers are not lag): compare a page with the API then,
	// when the numbers no longer move.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		stages = apiGet[query.Stages](t, s.url, "/v1/stages")
		busy := false
		for _, st := range stages.Stages {
			busy = busy || st.Lag != 0 || st.RestoreRemaining != 0
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stages never came to rest: %+v", stages)
		}
	}
	do(chromedp.Navigate(s.url+"/console/#stages"), chromedp.WaitVisible(chromedp.CSS(`table.stages`)))
	for _, st := range stages.Stages {
		for col, want := range map[int]float64{2: st.RecordsIn, 3: st.RecordsOut, 4: st.Lag, 5: st.RestoreRemaining, 9: st.Quarantined} {
			got := text(fmt.Sprintf(`document.querySelector('tr[data-stage=%q] td:nth-child(%d)').textContent`, st.Stage, col))
			if strings.ReplaceAll(got, ",", "") != fmt.Sprint(int64(want)) {
				t.Errorf("stages page: %s column %d reads %s, the API says %v", st.Stage, col, got, want)
			}
		}
	}
	if len(stages.Stages) != 4 {
		t.Errorf("the API lists %d stages, want 4", len(stages.Stages))
	}
	shot("console-stages.png")

	// Signing out forgets the token.
	do(chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	if got := text(`String(sessionStorage.getItem("usagestream-api-token"))`); got != "null" {
		t.Errorf("after signing out sessionStorage holds %q", got)
	}

	b.Stop()
	problems, requests := b.Problems(), b.Requests()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	if len(requests) == 0 {
		t.Error("no request seen: the network listener did not work, so the checks on requests prove nothing")
	}
	for _, u := range requests {
		if !strings.HasPrefix(u, s.url+"/") {
			t.Errorf("the console fetched %s: it must work offline, from its own origin", u)
		}
		if strings.Contains(u, token) {
			t.Errorf("the token is in a URL: %s", u)
		}
	}
	if !slices.ContainsFunc(requests, func(u string) bool { return strings.Contains(u, "/v1/files") }) {
		t.Error("the files page did not read /v1/files")
	}
}
