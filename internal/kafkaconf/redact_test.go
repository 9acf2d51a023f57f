package kafkaconf

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:s3cret@host:8081/apis":   "http://host:8081/apis",
		"registry https://u:p@ss@h/x, then":   "registry https://h/x, then",
		`Get "http://user:s3cret@h/subjects"`: `Get "http://h/subjects"`,
		"http://host/path?a=b@c":              "http://host/path?a=b@c",
		"mail a@b.example":                    "mail a@b.example",
		"no url":                              "no url",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	base := errors.New("x")
	err := RedactError(errors.Join(base, errors.New("http://u:s3cret@h")))
	if strings.Contains(err.Error(), "s3cret") || !errors.Is(err, base) {
		t.Fatalf("RedactError: %q, Is %v", err, errors.Is(err, base))
	}
	if RedactError(nil) != nil {
		t.Fatal("RedactError(nil) must be nil")
	}
}

// TestRegistryUserInfoIsBasicAuthNotInErrors: a registry URL with
// user:s3cret@ authenticates with basic auth, and neither the password nor
// the user info appears in RedactedRegistryURL or in the errors of the
// registry client (refused login, unreachable registry).
func TestRegistryUserInfoIsBasicAuthNotInErrors(t *testing.T) {
	var authed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "regu" || p != "s3cret" || r.URL.User != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error_code":401,"message":"Unauthorized"}`))
			return
		}
		authed.Add(1)
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write([]byte(`["s1"]`))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	check := func(what, s string) {
		t.Helper()
		if strings.Contains(s, "s3cret") || strings.Contains(s, "regu:") {
			t.Errorf("%s shows the registry credentials: %q", what, s)
		}
	}
	kc := Config{Registry: "http://regu:s3cret@" + host}
	check("RedactedRegistryURL", kc.RedactedRegistryURL())
	if kc.RedactedRegistryURL() != srv.URL {
		t.Errorf("RedactedRegistryURL = %q, want %q", kc.RedactedRegistryURL(), srv.URL)
	}
	rc, err := kc.NewRegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Subjects(context.Background()); err != nil || authed.Load() != 1 {
		t.Fatalf("basic auth from the URL's user info: %v (authed %d)", err, authed.Load())
	}
	bad := Config{Registry: "http://regu:wrong-s3cret@" + host}
	rc, _ = bad.NewRegistryClient()
	_, err = rc.Subjects(context.Background())
	if err == nil {
		t.Fatal("a wrong password must fail")
	}
	check("refused login error", err.Error())
	srv.Close()
	rc, _ = kc.NewRegistryClient()
	_, err = rc.Subjects(context.Background())
	if err == nil {
		t.Fatal("a closed registry must fail")
	}
	check("unreachable registry error", err.Error())
}
