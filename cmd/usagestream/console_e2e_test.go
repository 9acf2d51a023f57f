package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunServesTheConsole: `usagestream run` serves the web console on its
// HTTP address, asking the page for the token the query API requires, and
// GET /v1/stages lists its four stages from the metrics it exports, behind
// the token.
func TestRunServesTheConsole(t *testing.T) {
	kport, rport, hport := freePort(t), freePort(t), freePort(t)
	var se bytes.Buffer
	cmd := exec.Command(binary, "run", "--data-dir", t.TempDir(), "--kafka-port", fmt.Sprint(kport),
		"--registry-port", fmt.Sprint(rport), "--http-addr", fmt.Sprintf("127.0.0.1:%d", hport))
	cmd.Env = append(cmd.Environ(), "USAGESTREAM_API_TOKEN=console-token")
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run did not stop cleanly: %v\n%s", err, se.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("run did not stop on SIGTERM")
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", hport)
	call := func(path, token string) (int, http.Header, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := call("/readyz", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not become ready: %s", se.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

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
	if strings.Contains(se.String(), "console-token") {
		t.Error("the token is in the log")
	}
}
