package main

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/processors/runtime"
)

// Paths of the pause and resume endpoints of run and process.
const (
	pausePath  = "/v1/processors/pause"
	resumePath = "/v1/processors/resume"
)

// stageSet runs the stages and can stop them and start them again while
// the process goes on (the broker and registry of run, the HTTP servers):
// `replay --pause URL` pauses them, replays, and resumes them, so the
// all-in-one run needs no restart as `run --no-process`.
type stageSet struct {
	parent context.Context
	kc     kafkaconf.Config
	log    *slog.Logger
	// start starts every stage under ctx and returns their waits; started
	// is called with each instance started (the query API attaches it).
	start func(ctx context.Context, started func(*runtime.Instance)) ([]func(), error)

	mu     sync.Mutex // held while stages start, stop, pause, resume
	cancel context.CancelFunc
	waits  []func()
	paused bool

	// members are the static instance ids this process runs, by group
	// (several with --instances); written by Started, also on a supervised
	// restart, which keeps its id.
	membersMu sync.Mutex
	members   map[string][]string
}

// run starts the stages.
func (s *stageSet) run() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

func (s *stageSet) startLocked() error {
	ctx, cancel := context.WithCancel(s.parent)
	waits, err := s.start(ctx, func(in *runtime.Instance) {
		if id, err := in.MemberID(); err == nil {
			s.membersMu.Lock()
			if s.members == nil {
				s.members = map[string][]string{}
			}
			if ids := s.members[in.Group()]; !slices.Contains(ids, id) {
				s.members[in.Group()] = append(ids, id)
			}
			s.membersMu.Unlock()
		}
	})
	s.cancel, s.waits, s.paused = cancel, waits, false
	if err != nil {
		s.stopLocked()
	}
	return err
}

func (s *stageSet) stopLocked() {
	if s.cancel != nil {
		s.cancel()
	}
	for _, w := range s.waits {
		w()
	}
	s.cancel, s.waits = nil, nil
}

// stop stops the stages for good.
func (s *stageSet) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// pause stops the stages (each finishes its transaction) and removes their
// static members from the groups, so that a replay finds the groups empty
// at once instead of after the session timeout.
func (s *stageSet) pause(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		return nil
	}
	if s.start == nil {
		return fmt.Errorf("the processors have not started yet; try again once /readyz answers")
	}
	s.stopLocked()
	s.paused = true
	cl, err := s.kc.NewClient(ctx)
	if err != nil {
		return fmt.Errorf("the processors are stopped, but their group members could not be removed (a replay waits for their session timeout or needs --force): %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	s.membersMu.Lock()
	members := maps.Clone(s.members)
	s.membersMu.Unlock()
	for group, ids := range members {
		if _, err := adm.LeaveGroup(ctx, kadm.LeaveGroup(group).InstanceIDs(ids...)); err != nil {
			return fmt.Errorf("the processors are stopped, but members %s could not leave %s: %w", strings.Join(ids, ", "), group, err)
		}
	}
	s.log.Info("processors paused", "groups", len(members))
	return nil
}

// resume starts the stages again after pause.
func (s *stageSet) resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.paused {
		return nil
	}
	if err := s.startLocked(); err != nil {
		return err
	}
	s.log.Info("processors resumed")
	return nil
}

// mount serves POST pausePath and resumePath, behind the API token when
// one is set.
func (s *stageSet) mount(token string) func(*http.ServeMux) {
	return func(mux *http.ServeMux) {
		handle := func(path string, fn func(context.Context) error, done string) {
			mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
				if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) != 1 {
					http.Error(w, "a bearer token is required (USAGESTREAM_API_TOKEN)", http.StatusUnauthorized)
					return
				}
				ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
				defer cancel()
				if err := fn(ctx); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				fmt.Fprintln(w, done)
			})
		}
		handle(pausePath, s.pause, "paused")
		handle(resumePath, func(context.Context) error { return s.resume() }, "resumed")
	}
}

// callProcessors POSTs to the pause or resume endpoint of the run or
// process serving base (http://127.0.0.1:8088).
func callProcessors(ctx context.Context, base, path, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("--pause %s: %w", base, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &unreachableError{fmt.Errorf("--pause %s: is run (or process) serving there? %w", base, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("--pause %s: %s answered %s: %s", base, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// unreachableError is a pause or resume request that reached no server:
// nothing was paused.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }
