package rules

import (
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"slices"
)

// stateVersion is written into every encoded state. A state written by a
// newer version is refused rather than misread; bump it when a field changes
// meaning, and teach UnmarshalBinary the old one.
const stateVersion = 1

// customerStateVersion is 2 since S1 moved to the premise stage: a version 1
// customer state lacks the premise's S1 reasons.
const customerStateVersion = 2

// siteStateVersion versions the premise stage's state.
const siteStateVersion = 1

func checkVersion(kind string, got, want int) error {
	if got != want {
		return fmt.Errorf("rules: %s state version %d, this build reads version %d; run the build that wrote it, or rebuild the state from the input topics", kind, got, want)
	}
	return nil
}

// The state encodings are JSON (encoding/json): self-describing, readable in
// a changelog dump, and fast enough (see BenchmarkStage1 in the README).

type spEnvelope struct {
	V int `json:"v"`
	*ServicePoint
}

type siteEnvelope struct {
	V int `json:"v"`
	*Site
}

type customerEnvelope struct {
	V int `json:"v"`
	*Customer
}

// MarshalBinary encodes the state for Pebble and the changelog.
func (sp *ServicePoint) MarshalBinary() ([]byte, error) {
	b, err := json.Marshal(spEnvelope{stateVersion, sp})
	if err != nil {
		return nil, fmt.Errorf("rules: encoding service point %s: %w", sp.ID, err)
	}
	return b, nil
}

// UnmarshalBinary decodes a state written by MarshalBinary, replacing sp, and
// checks its invariants: a state that breaks them is refused, not repaired.
func (sp *ServicePoint) UnmarshalBinary(b []byte) error {
	*sp = ServicePoint{}
	env := spEnvelope{ServicePoint: sp}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("rules: decoding service point state: %w", err)
	}
	if err := checkVersion("service point", env.V, stateVersion); err != nil {
		return err
	}
	if err := sp.CheckInvariants(); err != nil {
		return fmt.Errorf("rules: decoded service point state: %w", err)
	}
	return nil
}

// MarshalBinary encodes the state for Pebble and the changelog.
func (c *Customer) MarshalBinary() ([]byte, error) {
	b, err := json.Marshal(customerEnvelope{customerStateVersion, c})
	if err != nil {
		return nil, fmt.Errorf("rules: encoding customer %s: %w", c.ID, err)
	}
	return b, nil
}

// UnmarshalBinary decodes a state written by MarshalBinary, replacing c.
func (c *Customer) UnmarshalBinary(b []byte) error {
	*c = Customer{}
	env := customerEnvelope{Customer: c}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("rules: decoding customer state: %w", err)
	}
	if err := checkVersion("customer", env.V, customerStateVersion); err != nil {
		return err
	}
	if err := c.CheckInvariants(); err != nil {
		return fmt.Errorf("rules: decoded customer state: %w", err)
	}
	return nil
}

// CheckInvariants reports the first broken invariant of the state (see
// ServicePoint and Tenure).
func (sp *ServicePoint) CheckInvariants() error {
	for i, p := range sp.Periods {
		if p.Start > p.DateTo {
			return fmt.Errorf("period %d starts %s after it ends %s", i, p.Start, p.DateTo)
		}
		if i > 0 && comparePeriods(sp.Periods[i-1], p) >= 0 {
			return fmt.Errorf("periods %d and %d out of order or equal (%s-%s, %s-%s)", i-1, i,
				sp.Periods[i-1].Start, sp.Periods[i-1].DateTo, p.Start, p.DateTo)
		}
	}
	seqs := map[int]bool{}
	prevLive := -1
	for i, t := range sp.Tenures {
		if t.Seq < 1 || t.Seq > sp.NextSeq || seqs[t.Seq] {
			return fmt.Errorf("tenure %d: seq %d duplicate or outside 1..%d", i, t.Seq, sp.NextSeq)
		}
		seqs[t.Seq] = true
		if i > 0 && compareTenures(sp.Tenures[i-1], t) >= 0 {
			return fmt.Errorf("tenures %d and %d out of order", i-1, i)
		}
		if t.Deleted {
			continue
		}
		if prevLive >= 0 && sp.Tenures[prevLive].ActiveDate >= t.ActiveDate {
			return fmt.Errorf("live tenures %d and %d share active date %s or are out of order", prevLive, i, t.ActiveDate)
		}
		prevLive = i
		if _, ok := sp.FirstActive[t.AccountID]; !ok {
			return fmt.Errorf("tenure %d: account %s has no first active_date", i, t.AccountID)
		}
	}
	for k, o := range sp.Open {
		if o.rule() == "" {
			return fmt.Errorf("open anomaly %d: %q is not a condition", k, o.Code)
		}
		if k > 0 && compareOpen(sp.Open[k-1], o) >= 0 {
			return fmt.Errorf("open anomalies %d and %d out of order or duplicate", k-1, k)
		}
	}
	for k, s := range sp.Sent {
		if k > 0 {
			q := sp.Sent[k-1]
			if q.CustomerID > s.CustomerID || (q.CustomerID == s.CustomerID && q.PremiseID >= s.PremiseID) {
				return fmt.Errorf("sent memberships %d and %d out of order or duplicate", k-1, k)
			}
		}
	}
	return nil
}

// MarshalBinary encodes the state for Pebble and the changelog.
func (s *Site) MarshalBinary() ([]byte, error) {
	b, err := json.Marshal(siteEnvelope{siteStateVersion, s})
	if err != nil {
		return nil, fmt.Errorf("rules: encoding premise %s: %w", s.ID, err)
	}
	return b, nil
}

// UnmarshalBinary decodes a state written by MarshalBinary, replacing s.
func (s *Site) UnmarshalBinary(b []byte) error {
	*s = Site{}
	env := siteEnvelope{Site: s}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("rules: decoding premise state: %w", err)
	}
	if err := checkVersion("premise", env.V, siteStateVersion); err != nil {
		return err
	}
	if err := s.CheckInvariants(); err != nil {
		return fmt.Errorf("rules: decoded premise state: %w", err)
	}
	return nil
}

// CheckInvariants reports the first broken invariant of the state (see Site).
func (s *Site) CheckInvariants() error {
	for sp, byCust := range s.Points {
		for c, m := range byCust {
			if m.ServicePointID != sp || m.CustomerID != c || m.PremiseID != s.ID {
				return fmt.Errorf("point %s customer %s holds the membership of (%s, %s, %s)", sp, c, m.CustomerID, m.PremiseID, m.ServicePointID)
			}
		}
	}
	for c, rs := range s.Sent {
		if !slices.IsSortedFunc(rs, compareReasons) {
			return fmt.Errorf("reasons sent to customer %s not sorted", c)
		}
	}
	return nil
}

// CheckInvariants reports the first broken invariant of the state (see Customer).
func (c *Customer) CheckInvariants() error {
	active := 0
	for id, pr := range c.Premises {
		if pr == nil {
			return fmt.Errorf("premise %s: nil", id)
		}
		for sp, m := range pr.Points {
			if m.ServicePointID != sp || m.PremiseID != id || m.CustomerID != c.ID {
				return fmt.Errorf("premise %s point %s holds the membership of (%s, %s, %s)", id, sp, m.CustomerID, m.PremiseID, m.ServicePointID)
			}
		}
		if pr.active() {
			active++
		}
		for k := 1; k < len(pr.Pinned); k++ {
			a, b := pr.Pinned[k-1], pr.Pinned[k]
			if compareReasons(a, b) > 0 || (a.Code == b.Code && a.Rule == b.Rule && a.ServicePointID == b.ServicePointID) {
				return fmt.Errorf("premise %s: pinned reasons %d and %d out of order or duplicate", id, k-1, k)
			}
		}
		for prog, rs := range pr.Sent {
			if !slices.IsSortedFunc(rs, compareReasons) {
				return fmt.Errorf("premise %s: reasons sent for %s not sorted", id, prog)
			}
		}
	}
	if active != c.ActivePremises {
		return fmt.Errorf("active premises %d, counter says %d", active, c.ActivePremises)
	}
	if c.PropertyManager != nil && c.PropertyManager.Code != ReasonPropertyManager {
		return errors.New("property manager reason with another code")
	}
	return nil
}
