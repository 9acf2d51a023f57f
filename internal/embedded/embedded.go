// Package embedded runs the zero-set-up default of `usagestream run`: a
// Kafka-protocol broker (franz-go kfake, persisted in a data directory) and a
// Confluent-compatible schema registry (franz-go srfake, persisted beside it),
// both on 127.0.0.1. It is the default path, not a mock: what is ingested
// survives a restart, and schema ids stay stable so old records still decode.
package embedded

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/internal/httpserve"
)

// Config says where the embedded stack lives.
type Config struct {
	DataDir      string       // required: kafka/ and registry.jsonl go here
	KafkaPort    int          // Default (0): a free port.
	RegistryPort int          // Default (0): a free port.
	Partitions   int32        // the broker's partitions for topics created without a count. Default: 6.
	Logger       *slog.Logger // Default: discard.
}

// withDefaults returns c with the defaults its fields' docs state in place
// of zero values.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Partitions <= 0 {
		c.Partitions = 6
	}
	return c
}

// Stack is a running embedded broker and registry.
type Stack struct {
	cluster  *kfake.Cluster
	registry *srfake.Registry
	server   *http.Server
	ln       net.Listener
	logPath  string
	logMu    sync.Mutex
	log      *slog.Logger
}

// Start starts the broker and the registry. Close stops both.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded: a data directory is required")
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the data directory %s: %w", cfg.DataDir, err)
	}
	s := &Stack{log: cfg.Logger, logPath: filepath.Join(cfg.DataDir, "registry.jsonl")}

	// The registry first: its port check is cheap and its failure leaves no broker behind.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.RegistryPort)))
	if err != nil {
		return nil, fmt.Errorf("the embedded schema registry cannot listen on 127.0.0.1:%d (is another 'usagestream run' running? choose --registry-port): %w", cfg.RegistryPort, err)
	}
	limits := httpserve.Defaults()
	ln = httpserve.Limit(ln, limits)
	s.ln = ln
	s.registry = srfake.NewRegistry()
	if err := s.restoreSchemas(); err != nil {
		ln.Close()
		return nil, err
	}
	s.server = httpserve.Server(s.persisting(s.registry.Handler()), limits)
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("embedded schema registry stopped", "err", err)
		}
	}()

	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(cfg.KafkaPort),
		kfake.DataDir(filepath.Join(cfg.DataDir, "kafka")),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
	)
	if err != nil {
		s.server.Close()
		return nil, fmt.Errorf("starting the embedded Kafka broker on 127.0.0.1:%d with data in %s (is another 'usagestream run' using it? choose --kafka-port or --data-dir): %w", cfg.KafkaPort, cfg.DataDir, err)
	}
	s.cluster = cluster
	return s, nil
}

// BrokerAddrs are the broker's host:port addresses.
func (s *Stack) BrokerAddrs() []string { return s.cluster.ListenAddrs() }

// RegistryURL is the registry's base URL.
func (s *Stack) RegistryURL() string { return "http://" + s.ln.Addr().String() }

// Cluster exposes the broker, for tests that inject faults.
func (s *Stack) Cluster() *kfake.Cluster { return s.cluster }

// Close stops the broker (flushing its data directory) and the registry.
func (s *Stack) Close() {
	if s.cluster != nil {
		s.cluster.Close()
	}
	if s.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.server.Shutdown(ctx)
	}
}

// persisted is one line of registry.jsonl.
type persisted struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
	Type    string `json:"type,omitempty"`
}

// persisting appends every newly registered schema to registry.jsonl, so a
// restarted registry hands out the same ids the persisted records carry.
func (s *Stack) persisting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !isRegister(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		if rec.Code != http.StatusOK {
			return
		}
		var resp struct {
			ID int `json:"id"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
			return
		}
		if err := s.appendSchema(r.URL.Path, resp.ID); err != nil {
			s.log.Error("embedded registry could not persist a schema; it will be lost on restart", "err", err)
		}
	})
}

// isRegister matches POST /subjects/{subject}/versions.
func isRegister(path string) bool {
	return len(path) > len("/subjects//versions") && strings.HasPrefix(path, "/subjects/") &&
		strings.HasSuffix(path, "/versions")
}

func (s *Stack) appendSchema(path string, id int) error {
	subject := path[len("/subjects/") : len(path)-len("/versions")]
	s.logMu.Lock()
	defer s.logMu.Unlock()
	// Find the version the registry gave this id under the subject.
	for v := 1; ; v++ {
		ss, ok := s.registry.GetSchema(subject, v)
		if !ok {
			return nil // already persisted, or not found: nothing new
		}
		if ss.ID != id {
			continue
		}
		if s.known(subject, v) {
			return nil
		}
		line, err := json.Marshal(persisted{Subject: subject, Version: v, ID: id, Schema: ss.Schema.Schema, Type: ss.Schema.Type.String()})
		if err != nil {
			return err
		}
		f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		_, werr := f.Write(append(line, '\n'))
		serr := f.Sync()
		cerr := f.Close()
		return errors.Join(werr, serr, cerr)
	}
}

// known reports whether subject/version is already in the log file.
func (s *Stack) known(subject string, version int) bool {
	f, err := os.Open(s.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		var p persisted
		if json.Unmarshal(sc.Bytes(), &p) == nil && p.Subject == subject && p.Version == version {
			return true
		}
	}
	return false
}

func (s *Stack) restoreSchemas() error {
	f, err := os.Open(s.logPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the embedded registry's schemas %s: %w", s.logPath, err)
	}
	defer f.Close()
	seenID := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		var p persisted
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			// A torn last line from a crash mid-append: the schema was never acknowledged.
			s.log.Warn("embedded registry: skipping an unreadable line", "file", s.logPath, "line", n, "err", err)
			continue
		}
		// An id must fit the 4-byte framing and a version be positive: srfake
		// takes any int, and an id of 2^63-1 made the next one handed out
		// negative (FuzzRestoreSchemas).
		if p.Subject == "" || p.Version < 1 || p.ID < 1 || p.ID > math.MaxInt32 {
			return fmt.Errorf("restoring line %d of %s: subject %q version %d id %d is out of range (a subject, a version from 1, an id from 1 to %d); move the file away to start with an empty registry", n, s.logPath, p.Subject, p.Version, p.ID, math.MaxInt32)
		}
		if _, dup := s.registry.GetSchema(p.Subject, p.Version); dup {
			continue
		}
		sch := sr.Schema{Schema: p.Schema, Type: sr.TypeAvro}
		if seenID[p.ID] {
			// The same schema under a second subject shares its id.
			if _, _, err := s.registry.RegisterSchema(p.Subject, sch); err != nil {
				return fmt.Errorf("restoring %s v%d from %s: %w", p.Subject, p.Version, s.logPath, err)
			}
			continue
		}
		if err := seed(s.registry, p.Subject, p.Version, p.ID, sch); err != nil {
			return fmt.Errorf("restoring %s v%d (id %d) from %s: %w; move the file away to start with an empty registry", p.Subject, p.Version, p.ID, s.logPath, err)
		}
		seenID[p.ID] = true
	}
	return sc.Err()
}

// seed turns SeedSchema's panics (its contract for conflicting slots) into errors.
func seed(r *srfake.Registry, subject string, version, id int, sch sr.Schema) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	r.SeedSchema(subject, version, id, sch)
	return nil
}
