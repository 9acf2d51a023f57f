package report_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usagestream/usagestream/internal/browsertest"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate"
	"github.com/usagestream/usagestream/processors/validate/report"
	"github.com/usagestream/usagestream/producers/gen"
)

// sampleReport validates generated files with one of every anomaly, every
// finding kept, so that tables are long enough to be paged.
func sampleReport(t *testing.T) *report.Report {
	t.Helper()
	kinds := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		kinds[k] = 1
	}
	res, err := gen.Generate(t.TempDir(), gen.Config{ServicePoints: 200, Months: 14, Seed: 9,
		Now: time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC), Anomalies: kinds})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := validate.Run(context.Background(), res.Files, validate.Options{Policy: rules.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestHTMLRendersInChromium loads the page in headless Chromium over
// loopback: no console error or exception, no request but the page itself,
// the four charts drawn, long tables paged by the script (and the next page
// reachable), and a screenshot taken.
func TestHTMLRendersInChromium(t *testing.T) {
	t.Parallel()
	browser := browsertest.Path(t)
	rep := sampleReport(t)
	// One anomaly raised and cleared within the run, as a historical file
	// after incrementals makes: its own section lists it.
	rep.Resolved = append(rep.Resolved, report.Resolved{
		Raised: report.Finding{Kind: report.KindAnomaly, Rule: "U2", Code: "USAGE_GAP", Severity: report.SeverityWarning,
			File: "hist.tsv", Line: 2, ServicePointID: "SP1", Date: "2022-02-01", Message: "usage gap of 334 days"},
		Cleared: report.Finding{Kind: report.KindAnomaly, Rule: "U2", Code: "USAGE_GAP", Severity: report.SeverityInfo, Cleared: true,
			File: "hist.tsv", Line: 13, ServicePointID: "SP1", Date: "2022-02-01", Message: "usage gap cleared: filled"},
	})
	// Compared with two earlier rounds: the comparison and the trend.
	prev := sampleReport(t)
	prev.OpenByServicePoint["SP-E-99999999"] = map[string]int64{"U2": 3}
	prev.Rounds = []report.Round{{Time: "2025-01-01T00:00:00Z", Errors: 40, Warnings: 30}, report.RoundOf(prev)}
	report.Compare(prev, rep)
	var page bytes.Buffer
	if err := report.WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page.Bytes())
	}))
	defer srv.Close()

	b := browsertest.Start(t, browser)
	ctx := b.Ctx

	tctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	defer tcancel()
	eval := func(js string) int {
		t.Helper()
		n, err := chromedp.Run(tctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return n
	}
	text := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(tctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	if err := chromedp.Do(tctx, chromedp.Navigate(srv.URL+"/report.html"), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(tctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	charts := eval(`document.querySelectorAll("#charts svg").length`)
	rects := eval(`document.querySelectorAll("#charts svg rect").length`)
	pagers := eval(`document.querySelectorAll(".pager").length`)
	trend := eval(`document.querySelectorAll("#compare svg rect").length`)
	resolved := text(`document.querySelector("#resolved tbody tr").textContent`)
	// The first paged table shows 25 rows; its pager's "next" moves to page 2.
	visible := eval(`(function(){ var t = document.querySelector(".pager + table.paged"); var d = t.closest("details"); if (d) { d.open = true; }
		return Array.prototype.filter.call(t.tBodies[0].rows, function(r){ return r.style.display !== "none"; }).length; })()`)
	infoBefore := text(`document.querySelector(".pager span").textContent`)
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(".pager button:nth-of-type(2)"))); err != nil {
		t.Fatal(err)
	}
	infoAfter := text(`document.querySelector(".pager span").textContent`)
	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	// A laptop screen (1366 x 768): nothing wider than the window, no chart
	// label outside its chart, no count with its noun in the wrong number.
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatal(err)
	}
	eval(`(function(){ document.querySelectorAll("details").forEach(function(d){ d.open = true; }); return 0; })()`)
	wide := text(`(function(){ var out = []; var w = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > w) { out.push("page " + document.documentElement.scrollWidth + " > " + w); }
		document.querySelectorAll("table").forEach(function(t){ var r = t.getBoundingClientRect();
			if (r.right > w + 0.5) { out.push((t.closest("section")||{}).id + " table right edge " + Math.round(r.right) + " > " + w); } });
		return out.join("; "); })()`)
	clipped := text(`(function(){ var out = [];
		document.querySelectorAll("svg").forEach(function(svg){ var box = svg.getBoundingClientRect();
			svg.querySelectorAll("text").forEach(function(t){ var r = t.getBoundingClientRect();
				if (r.width > 0 && (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)) { out.push(t.textContent); } }); });
		return out.join(", "); })()`)
	plurals := text(`(function(){ var m = document.body.innerText.match(/(^|[^0-9.,])1 (rows|files|errors|warnings|findings|months|service points)\b/g); return m ? m.join(" | ") : ""; })()`)
	var regions = map[string][]byte{}
	for _, id := range []string{"checks", "compare", "charts", "lists", "findings", "run"} {
		b, err := chromedp.Run(tctx, chromedp.Screenshot(chromedp.CSS("#"+id)))
		if err != nil {
			t.Fatalf("screenshot of #%s: %v", id, err)
		}
		regions[id] = b
	}
	b.Stop()
	problems, requests := b.Problems(), b.Requests()

	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	for _, u := range requests {
		if !strings.HasPrefix(u, srv.URL+"/report.html") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page fetched %s; it must be self-contained", u)
		}
	}
	if len(requests) == 0 {
		t.Error("no request seen: the network listener did not work, so the check above proves nothing")
	}
	if want := map[bool]string{true: "usagestream validate: PASS", false: "usagestream validate: FAIL"}[rep.Pass]; title != want {
		t.Errorf("title %q, want %q", title, want)
	}
	if trend < 5 {
		t.Errorf("%d bars in the trend of three rounds", trend)
	}
	if charts != 4 || rects < 20 {
		t.Errorf("%d charts with %d bars drawn, want 4 charts and their bars", charts, rects)
	}
	if !strings.Contains(resolved, "hist.tsv:2") || !strings.Contains(resolved, "hist.tsv:13") {
		t.Errorf("the raised-and-cleared section shows %q, want the gap raised at hist.tsv:2 and cleared at hist.tsv:13", resolved)
	}
	if pagers == 0 || visible != 25 {
		t.Errorf("%d pagers, %d rows visible in the first paged table; want pagers and 25 rows a page", pagers, visible)
	}
	if !strings.HasPrefix(infoBefore, "page 1 of ") || !strings.HasPrefix(infoAfter, "page 2 of ") {
		t.Errorf("pager said %q, then %q after next", infoBefore, infoAfter)
	}
	if wide != "" {
		t.Errorf("wider than a 1366-pixel laptop screen: %s", wide)
	}
	if clipped != "" {
		t.Errorf("chart labels outside their chart: %s", clipped)
	}
	if plurals != "" {
		t.Errorf("wrong plurals on the page: %s", plurals)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 1500 {
		t.Errorf("screenshot of %v: the page did not lay out", b)
	}
	// USAGESTREAM_SCREENSHOTS keeps the screenshot for a person to look at.
	dir := os.Getenv("USAGESTREAM_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	out := filepath.Join(dir, "validate-report.png")
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	for id, b := range regions {
		if err := os.WriteFile(filepath.Join(dir, "validate-laptop-"+id+".png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot %s (%d bytes), %d requests, %d chart bars", out, len(shot), len(requests), rects)
}
