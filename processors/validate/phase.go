package validate

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/validate/report"
)

// Phases of the data transfer (docs/data-contract.md §2.6): each adds the
// checks it needs to the policy's.
const (
	// PhaseSample is a sample file: the policy's checks alone.
	PhaseSample = "sample"
	// PhaseHistorical is the full historical file: every account, active
	// or inactive, has usage, and the usage spans the months of history
	// the policy needs.
	PhaseHistorical = "historical"
	// PhaseIncremental is an incremental file: it continues what is already
	// loaded (Options.StateFrom), with no gap after the loaded history and
	// no change of an active date on file.
	PhaseIncremental = "incremental"
)

// stateMarker names a folder written by SaveState, so that --state-from
// refuses a folder that is something else.
const stateMarker = "USAGESTREAM_VALIDATE_STATE"

// stateSaver writes the service point states of a run to a folder, for an
// incremental run to continue from. The validator's summarise hook sees
// every final state (the Pebble store may show a state more than once: the
// last one wins).
type stateSaver struct {
	db  *pebble.DB
	buf []byte
	err error
}

func openStateSaver(dir string) (*stateSaver, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("validate: --save-state %s: %w", dir, err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(dir, stateMarker)); err != nil {
			return nil, fmt.Errorf("validate: --save-state %s: the folder holds other files; give an empty folder or one an earlier --save-state wrote", dir)
		}
		if err := os.RemoveAll(dir); err != nil { // replaced whole: no state of an earlier round stays behind
			return nil, fmt.Errorf("validate: --save-state %s: %w", dir, err)
		}
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("validate: --save-state %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateMarker), []byte("service point states of a usagestream validate run\n"), 0o644); err != nil {
		db.Close()
		return nil, fmt.Errorf("validate: --save-state %s: %w", dir, err)
	}
	return &stateSaver{db: db}, nil
}

func (s *stateSaver) save(id string, sp *rules.ServicePoint) {
	if s.err != nil {
		return
	}
	b, err := sp.AppendBinary(s.buf[:0])
	if err == nil {
		s.buf = b
		err = s.db.Set([]byte(id), b, pebble.NoSync)
	}
	if err != nil {
		s.err = fmt.Errorf("validate: saving the state of %s: %w", id, err)
	}
}

// close closes the store; later calls do nothing.
func (s *stateSaver) close() error {
	if s.db == nil {
		return nil
	}
	err := s.err
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("validate: closing the saved state: %w", cerr)
	}
	s.db = nil
	return err
}

// loadState puts the service point states an earlier run saved into the
// store before the run, so the rules judge the new rows against them: a gap
// after the loaded history is the rules' U2, a changed active date their
// A3. It returns the hashes of the loaded ids.
func (r *run) loadState(dir string, store rules.Store[*rules.ServicePoint]) error {
	if _, err := os.Stat(filepath.Join(dir, stateMarker)); err != nil {
		return fmt.Errorf("validate: --state-from %s is no saved state (%w); give the folder an earlier run wrote with --save-state", dir, err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("validate: --state-from %s: %w", dir, err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("validate: --state-from %s: %w", dir, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		id := string(it.Key())
		sp, err := store.Load(id)
		if err != nil {
			return err
		}
		if err := sp.UnmarshalBinary(it.Value()); err != nil {
			return fmt.Errorf("validate: --state-from %s, service point %s: %w", dir, id, err)
		}
		r.loaded.put(maphash.String(r.seed, id), struct{}{})
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("validate: --state-from %s: %w", dir, err)
	}
	return nil
}

// continuity notes the findings of an incremental run that break with the
// loaded history: a gap (U2) or a changed active date (A3) on a service
// point the earlier run left.
func (r *run) continuity(f report.Finding) {
	if r.loaded == nil || f.Cleared || f.ServicePointID == "" ||
		!(f.Code == rules.AnomalyUsageGap || f.Code == rules.AnomalyActiveDateChanged) {
		return
	}
	if !r.loaded.has(maphash.String(r.seed, f.ServicePointID)) {
		return
	}
	r.rep.ContinuityCount++
	if r.opts.Examples == 0 || len(r.rep.Continuity) < r.opts.Examples {
		r.rep.Continuity = append(r.rep.Continuity, f)
	}
}

// checkPhase validates the phase options before a run.
func checkPhase(opts Options) error {
	switch opts.Phase {
	case "", PhaseSample, PhaseHistorical:
		if opts.StateFrom != "" {
			return errors.New("validate: --state-from is for --phase incremental: an incremental file continues the state an earlier run saved")
		}
	case PhaseIncremental:
		if opts.StateFrom == "" {
			return errors.New("validate: --phase incremental needs --state-from DIR, the folder the run of the files already loaded wrote with --save-state")
		}
	default:
		return fmt.Errorf("validate: unknown phase %q; use %s", opts.Phase, strings.Join([]string{PhaseSample, PhaseHistorical, PhaseIncremental}, ", "))
	}
	return nil
}
