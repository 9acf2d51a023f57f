package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestRunServesTheConsole: `usagestream run` serves the web console on its
// HTTP address, asking the page for the token the query API requires, and
// GET /v1/stages lists its four stages from the metrics it exports, behind
// the token.
func TestRunServesTheConsole(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	run := startRunEnv(t, hport, []string{"USAGESTREAM_API_TOKEN=console-token"}, "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport),
		"--registry-port", fmt.Sprint(rport))
	defer run.stop(t)

	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	call := func(path, token string) (int, http.Header, []byte) { return httpGet(base+path, token) }

	code, hdr, page := call("/console/", "")
	if code != http.StatusOK || !strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("/console/: %d, CSP %q", code, hdr.Get("Content-Security-Policy"))
	}
	if !strings.Contains(string(page), `<meta name="token-required" content="true">`) {
		t.Errorf("the page does not know the API asks for a token:\n%s", page)
	}
	if code, _, _ := call("/console/app.js", ""); code != http.StatusOK {
		t.Errorf("/console/app.js: %d", code)
	}
	if code, _, _ := call("/v1/stages", ""); code != http.StatusUnauthorized {
		t.Errorf("/v1/stages without the token: %d, want 401", code)
	}
	code, _, body := call("/v1/stages", "console-token")
	var st struct {
		Stages []struct{ Stage string }
	}
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("/v1/stages: %d %s", code, body)
	}
	var names []string
	for _, s := range st.Stages {
		names = append(names, s.Stage)
	}
	if strings.Join(names, ",") != "customer,interval,premise,servicepoint" {
		t.Errorf("/v1/stages lists %v, want the four stages run runs", names)
	}
	if strings.Contains(run.se.String(), "console-token") {
		t.Error("the token is in the log")
	}
}
