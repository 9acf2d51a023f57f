package query

import (
	"context"
	"errors"
	"fmt"
	"github.com/usagestream/usagestream/internal/dates"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"encoding/json"

	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/override"
	"github.com/usagestream/usagestream/records"
)

// OverrideRequest is the body of POST /v1/overrides: an operator action,
// a clear (docs/rules.md#OV1: service_point_id, anomaly_code) or a hold or
// release (docs/rules.md#OV2: customer_id, premise_id, program). The server
// stamps requested_at and, when none is given, the action id.
type OverrideRequest struct {
	ActionID       string `json:"action_id,omitempty"`
	Kind           string `json:"kind"`
	Utility        string `json:"utility"`
	ServicePointID string `json:"service_point_id,omitempty"`
	AnomalyCode    string `json:"anomaly_code,omitempty"`
	AccountID      string `json:"account_id,omitempty"`
	CustomerID     string `json:"customer_id,omitempty"`
	PremiseID      string `json:"premise_id,omitempty"`
	Program        string `json:"program,omitempty"`
	// Until is a hold's last day (YYYY-MM-DD); none: until released.
	Until  string `json:"until,omitempty"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
	Ticket string `json:"ticket"`
}

// Override is an operator action as written to the operator-actions topic,
// with its position there: the cause every event it causes cites.
type Override struct {
	ActionID       string `json:"action_id"`
	Kind           string `json:"kind"`
	Utility        string `json:"utility,omitempty"`
	ServicePointID string `json:"service_point_id,omitempty"`
	AnomalyCode    string `json:"anomaly_code,omitempty"`
	AccountID      string `json:"account_id,omitempty"`
	CustomerID     string `json:"customer_id,omitempty"`
	PremiseID      string `json:"premise_id,omitempty"`
	Program        string `json:"program,omitempty"`
	Until          string `json:"until,omitempty"`
	Actor          string `json:"actor"`
	RequestedAt    string `json:"requested_at"`
	Reason         string `json:"reason"`
	Ticket         string `json:"ticket"`
	Cause          Source `json:"cause"`
}

// Overrides is the answer of GET /v1/overrides.
type Overrides struct {
	Overrides []Override `json:"overrides"`
}

func overrideView(a *records.OperatorAction, at override.Position) Override {
	until := ""
	if a.Until != nil {
		until = a.Until.Time().Format(time.DateOnly)
	}
	return Override{Until: until, ActionID: a.ActionID, Kind: a.Kind, Utility: a.Utility, ServicePointID: a.ServicePointID,
		AnomalyCode: a.AnomalyCode, AccountID: a.AccountID, CustomerID: a.CustomerID, PremiseID: a.PremiseID, Program: a.Program, Actor: a.Actor, RequestedAt: a.RequestedAt.UTC().Format(time.RFC3339Nano),
		Reason: a.Reason, Ticket: a.Ticket, Cause: Source{Topic: at.Topic, Partition: at.Partition, Offset: at.Offset}}
}

// maxOverrideBody bounds a POST body: an action is a few short fields.
const maxOverrideBody = 64 << 10

// actions holds the writer of operator actions, connected on the first
// POST (a read-only deployment never opens a producer).
type actions struct {
	mu sync.Mutex
	w  *override.Writer
}

func (a *actions) writer(ctx context.Context, s *Server) (*override.Writer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.w == nil {
		w, err := override.NewWriter(ctx, s.cfg.Kafka)
		if err != nil {
			return nil, err
		}
		a.w = w
	}
	return a.w, nil
}

func (a *actions) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.w != nil {
		a.w.Close()
		a.w = nil
	}
}

// postOverride writes an operator action. It needs the API token: an
// instance without one (whose reads rely on listening on loopback) accepts
// no overrides, and a request passed on by a peer (admitted by the peer
// token) is refused, as the peer token only reads.
func (s *Server) postOverride(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token == "" {
		writeError(w, http.StatusForbidden, "this instance has no API token: overrides are written only with one (set --api-token, USAGESTREAM_API_TOKEN), or with 'usagestream override'", nil)
		return
	}
	if r.Header.Get(forwardedHeader) != "" {
		writeError(w, http.StatusForbidden, "an override is never passed on between instances: send it to any instance with the API token", nil)
		return
	}
	var req OverrideRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOverrideBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the body is not an override (a JSON object: see docs/openapi.yaml, OverrideRequest): %v", err), nil)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "the body holds more than one JSON value: send one override per request", nil)
		return
	}
	a := &records.OperatorAction{ActionID: strings.TrimSpace(req.ActionID), Kind: req.Kind, Utility: req.Utility,
		ServicePointID: req.ServicePointID, AnomalyCode: req.AnomalyCode, AccountID: req.AccountID,
		CustomerID: req.CustomerID, PremiseID: req.PremiseID, Program: req.Program,
		Actor: req.Actor, Reason: req.Reason, Ticket: req.Ticket, RequestedAt: time.Now().UTC()}
	if req.Until != "" {
		d, err := time.Parse(time.DateOnly, req.Until)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("until %q is no date: give the hold's last day as YYYY-MM-DD", req.Until), nil)
			return
		}
		u := dates.FromTime(d)
		a.Until = &u
	}
	var idErr error
	if a.ForCustomer() {
		idErr = errors.Join(checkID("customer_id", a.CustomerID), checkID("premise_id", a.PremiseID))
		if idErr == nil && !rules.KnownProgram(a.Program) {
			idErr = fmt.Errorf("program %q is none of %s", a.Program, strings.Join(rules.Programs(), ", "))
		}
	} else {
		idErr = checkID("service_point_id", a.ServicePointID)
	}
	if idErr != nil {
		writeError(w, http.StatusBadRequest, idErr.Error(), nil)
		return
	}
	if a.ActionID == "" {
		a.ActionID = override.NewID()
	}
	if err := a.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	wr, err := s.actions.writer(r.Context(), s)
	if err != nil {
		s.log.Warn("cannot connect the operator-action writer", "err", err)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("cannot write overrides now: %v; retry", err), nil)
		return
	}
	pos, err := wr.Write(r.Context(), a)
	if err != nil {
		s.log.Warn("writing an operator action failed", "action_id", a.ActionID, "err", err)
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return
	}
	// Who did what is audited on the topic; the log names the action only.
	s.log.Info("operator action written", "action_id", a.ActionID, "kind", a.Kind, "partition", pos.Partition, "offset", pos.Offset)
	writeJSON(w, http.StatusCreated, overrideView(a, pos))
}

// listOverrides answers every operator action written so far, oldest
// request first; with ?in_force=true, those in force (override.InForce).
func (s *Server) listOverrides(w http.ResponseWriter, r *http.Request) {
	entries, err := override.List(r.Context(), s.cfg.Kafka)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("reading the operator actions: %v; retry", err), nil)
		return
	}
	if r.URL.Query().Get("in_force") == "true" {
		entries = override.InForce(entries, time.Now())
	}
	out := Overrides{Overrides: make([]Override, 0, len(entries))}
	for _, e := range entries {
		out.Overrides = append(out.Overrides, overrideView(&e.Action, e.Position))
	}
	writeJSON(w, http.StatusOK, out)
}
