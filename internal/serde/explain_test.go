package serde_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
)

const schema = `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`

func register(t *testing.T, kc kafkaconf.Config) (error, time.Duration) {
	t.Helper()
	rc, err := kc.NewRegistryClient()
	if err != nil {
		return err, 0
	}
	start := time.Now()
	_, err = serde.NewRegistry(rc).Register(context.Background(), "t-value", schema)
	return err, time.Since(start)
}

// TestRegistryErrorsSayWhatIsWrong: each way a registry call fails gets its
// own explanation; only an incompatible schema speaks of compatibility.
func TestRegistryErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	conflict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`)
	}))
	defer conflict.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error_code":401,"message":"Unauthorized"}`)
	}))
	defer refusing.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	// A server that accepts and reads but never answers, as a Kafka broker
	// given as --registry does.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() {
				b := make([]byte, 1024)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
				}
			}()
		}
	}()

	for _, tc := range []struct {
		name string
		kc   kafkaconf.Config
		want string
	}{
		{"wrong path", kafkaconf.Config{Registry: notFound.URL + "/nope"}, "not a schema registry's API"},
		{"incompatible", kafkaconf.Config{Registry: conflict.URL}, "BACKWARD"},
		{"credentials", kafkaconf.Config{Registry: refusing.URL}, "USAGESTREAM_REGISTRY_PASSWORD"},
		{"refused", kafkaconf.Config{Registry: "http://" + closed}, "nothing listens"},
		{"silent", kafkaconf.Config{Registry: "http://" + silent.Addr().String(), RegistryTimeout: 300 * time.Millisecond}, "not a Kafka broker's"},
		{"the broker", kafkaconf.Config{Brokers: []string{"127.0.0.1:9092"}, Registry: "http://127.0.0.1:9092"}, "is the address of a Kafka broker"},
	} {
		err, took := register(t, tc.kc)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q in %v", tc.name, tc.want, err)
		}
		if tc.want != "BACKWARD" && err != nil && strings.Contains(err.Error(), "BACKWARD") {
			t.Errorf("%s: speaks of compatibility: %v", tc.name, err)
		}
		if took > 5*time.Second {
			t.Errorf("%s: took %v", tc.name, took)
		}
	}
}
