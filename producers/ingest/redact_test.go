package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/topics"
)

// TestRegistryPasswordNotInIngestErrorsOrLogs: with a registry URL carrying
// user:s3cret@ that refuses the login, New fails with an error naming the
// registry without its credentials, and nothing logged shows them.
func TestRegistryPasswordNotInIngestErrorsOrLogs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error_code":401,"message":"Unauthorized"}`))
	}))
	defer srv.Close()
	var logs bytes.Buffer
	kc := kafkaconf.Config{Brokers: []string{"127.0.0.1:1"}, Registry: "http://regu:s3cret@" + strings.TrimPrefix(srv.URL, "http://"), TopicPrefix: "t."}
	_, err := New(context.Background(), kc, Config{Topics: topics.NewNames(kc.TopicPrefix), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err == nil {
		t.Fatal("a refused registry login must fail")
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("the registry password leaked:\nerror: %v\nlogs: %s", err, logs.String())
	}
	if !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("the error should name the registry %s: %v", srv.URL, err)
	}
}
