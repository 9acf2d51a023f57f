package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/usagestream/usagestream/internal/dates"
)

// stateVersion is the first byte of an encoded ServicePoint. A state written
// by a newer version is refused rather than misread; bump it when a field
// changes meaning, and teach UnmarshalBinary the old one. Version 2 is the
// binary encoding below; version 1 was JSON, still read (see legacyJSON).
// Version 3 adds Tenure.AsOfFile (A9: the last row of a file wins); version
// 2, without it, is still read (an empty AsOfFile: every older period is
// late history, as version 2 judged it). Version 4 adds Pending (OV1);
// version 3, without it, is still read (no clear pending).
const stateVersion = 4

// spV2 is the binary service point version before Tenure.AsOfFile; spV3
// the one before Pending.
const (
	spV2 = 2
	spV3 = 3
)

// customerStateVersion is 3 since the binary encoding (2: JSON, read still;
// 1: JSON without the premise's S1 reasons, refused). Version 4 adds
// Membership.Since; version 3, without it, is still read (Since 0 reads as
// the membership's ActiveDate, the date S2 and I5 took before). Version 5
// adds Premise.Holds (OV2); versions 3 and 4, without them, are still read
// (no hold). Version 6 adds Hold.Until and Hold.Utility; version 5,
// without them, is still read (holds until released).
const customerStateVersion = 6

// customerNoHolds is the binary customer version before Premise.Holds;
// customerNoHoldUntil the one before Hold.Until.
const (
	customerNoHolds     = 4
	customerNoHoldUntil = 5
)

// siteStateVersion versions the premise stage's state: 2 is binary, 1 JSON.
// Version 3 adds Membership.Since; version 2 is still read, as for the
// customer's.
const siteStateVersion = 3

// The binary versions of the customer and premise states before
// Membership.Since.
const (
	customerNoSince = 3
	siteNoSince     = 2
)

// The JSON versions a binary-era build still reads.
const (
	spJSONVersion       = 1
	customerJSONVersion = 2
	siteJSONVersion     = 1
)

func checkVersion(kind string, got, want int) error {
	if got != want {
		return fmt.Errorf("rules: %s state version %d, this build reads version %d; run the build that wrote it, or rebuild the state from the input topics", kind, got, want)
	}
	return nil
}

// The states are encoded by hand (the enc and dec of interval_state.go),
// field by field in declaration order, maps in key order so that equal
// states give equal bytes. They were JSON until encoding them was a tenth of
// the CPU of validating a large file and most of the bytes written to the
// temporary store and the changelog; binary is about a third of the size and
// several times faster both ways (BenchmarkStateCodec). TestStateCodecCovers
// fills every field by reflection, so a field added to a state type and
// forgotten here fails it.
//
// A state that starts with '{' is the JSON of the previous versions, read so
// that a changelog written by the previous build restores; it is written
// back in binary with the next change of its key.

func legacyJSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

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
	return sp.AppendBinary(make([]byte, 0, 128+32*len(sp.Periods)+96*len(sp.Tenures)))
}

// AppendBinary appends what MarshalBinary returns to b: a store that copies
// the bytes can reuse one buffer.
func (sp *ServicePoint) AppendBinary(b []byte) ([]byte, error) {
	e := enc{b: append(b, stateVersion)}
	e.servicePoint(sp)
	return e.b, nil
}

// UnmarshalBinary decodes a state written by MarshalBinary, replacing sp, and
// checks its invariants: a state that breaks them is refused, not repaired.
func (sp *ServicePoint) UnmarshalBinary(b []byte) error {
	*sp = ServicePoint{}
	if legacyJSON(b) {
		env := spEnvelope{ServicePoint: sp}
		if err := json.Unmarshal(b, &env); err != nil {
			return fmt.Errorf("rules: decoding service point state: %w", err)
		}
		if err := checkVersion("service point", env.V, spJSONVersion); err != nil {
			return err
		}
	} else {
		if len(b) == 0 {
			return errors.New("rules: empty service point state; rebuild the state from the input topics")
		}
		v := int(b[0])
		if v != spV2 && v != spV3 {
			if err := checkVersion("service point", v, stateVersion); err != nil {
				return err
			}
		}
		d := dec{b: b, i: 1, spV2: v == spV2, noPending: v <= spV3}
		d.servicePoint(sp)
		if err := d.end(); err != nil {
			return fmt.Errorf("rules: decoding service point state %q: %w", sp.ID, err)
		}
	}
	if err := sp.CheckInvariants(); err != nil {
		return fmt.Errorf("rules: decoded service point state: %w", err)
	}
	return nil
}

// MarshalBinary encodes the state for Pebble and the changelog.
func (c *Customer) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, 64+512*len(c.Premises)))
}

// AppendBinary appends what MarshalBinary returns to b.
func (c *Customer) AppendBinary(b []byte) ([]byte, error) {
	e := enc{b: append(b, customerStateVersion)}
	e.customer(c)
	return e.b, nil
}

// UnmarshalBinary decodes a state written by MarshalBinary, replacing c.
func (c *Customer) UnmarshalBinary(b []byte) error {
	*c = Customer{}
	if legacyJSON(b) {
		env := customerEnvelope{Customer: c}
		if err := json.Unmarshal(b, &env); err != nil {
			return fmt.Errorf("rules: decoding customer state: %w", err)
		}
		if err := checkVersion("customer", env.V, customerJSONVersion); err != nil {
			return err
		}
	} else {
		if len(b) == 0 {
			return errors.New("rules: empty customer state; rebuild the state from the input topics")
		}
		v := int(b[0])
		if v != customerNoSince && v != customerNoHolds && v != customerNoHoldUntil {
			if err := checkVersion("customer", v, customerStateVersion); err != nil {
				return err
			}
		}
		d := dec{b: b, i: 1, noSince: v == customerNoSince, noHolds: v <= customerNoHolds, noHoldUntil: v <= customerNoHoldUntil}
		d.customer(c)
		if err := d.end(); err != nil {
			return fmt.Errorf("rules: decoding customer state %q: %w", c.ID, err)
		}
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
		if o.Rule() == "" {
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
	return s.AppendBinary(make([]byte, 0, 64+256*len(s.Points)))
}

// AppendBinary appends what MarshalBinary returns to b.
func (s *Site) AppendBinary(b []byte) ([]byte, error) {
	e := enc{b: append(b, siteStateVersion)}
	e.site(s)
	return e.b, nil
}

// UnmarshalBinary decodes a state written by MarshalBinary, replacing s.
func (s *Site) UnmarshalBinary(b []byte) error {
	*s = Site{}
	if legacyJSON(b) {
		env := siteEnvelope{Site: s}
		if err := json.Unmarshal(b, &env); err != nil {
			return fmt.Errorf("rules: decoding premise state: %w", err)
		}
		if err := checkVersion("premise", env.V, siteJSONVersion); err != nil {
			return err
		}
	} else {
		if len(b) == 0 {
			return errors.New("rules: empty premise state; rebuild the state from the input topics")
		}
		v := int(b[0])
		if v != siteNoSince {
			if err := checkVersion("premise", v, siteStateVersion); err != nil {
				return err
			}
		}
		d := dec{b: b, i: 1, noSince: v == siteNoSince}
		d.site(s)
		if err := d.end(); err != nil {
			return fmt.Errorf("rules: decoding premise state %q: %w", s.ID, err)
		}
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
		for k := 1; k < len(pr.Holds); k++ {
			if pr.Holds[k-1].Program >= pr.Holds[k].Program {
				return fmt.Errorf("premise %s: holds %d and %d out of order or for the same program", id, k-1, k)
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

// Encoders and decoders of the state types, field by field in declaration
// order. A decoder stops at the first error (dec.err) and leaves zero values.

func (e *enc) flag(b bool) {
	if b {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) date(d dates.Date) { e.int(int64(d)) }

func (e *enc) servicePoint(sp *ServicePoint) {
	e.str(sp.ID)
	e.str(sp.ServiceType)
	e.uint(uint64(len(sp.Periods)))
	for _, p := range sp.Periods {
		e.date(p.Start)
		e.date(p.DateTo)
		e.value(p.Value)
		e.value(p.Charge)
		e.flag(p.HasCharge)
	}
	e.uint(uint64(len(sp.Tenures)))
	for i := range sp.Tenures {
		t := &sp.Tenures[i]
		e.int(int64(t.Seq))
		e.str(t.AccountID)
		e.str(t.CustomerID)
		e.str(t.PremiseID)
		e.str(t.SecondaryID)
		e.date(t.ActiveDate)
		e.date(t.InactiveDate)
		e.flag(t.Deleted)
		e.date(t.DeletedOn)
		e.str(t.RateCode)
		e.date(t.RateSince)
		e.source(t.RateSource)
		e.date(t.AsOf)
		e.str(t.AsOfFile)
		e.source(t.Source)
		e.source(t.EndSource)
	}
	e.int(int64(sp.NextSeq))
	e.uint(uint64(len(sp.FirstActive)))
	var keys [8]string
	for _, k := range sortedMapKeys(sp.FirstActive, keys[:0]) {
		e.str(k)
		e.date(sp.FirstActive[k])
	}
	e.uint(uint64(len(sp.Open)))
	for i := range sp.Open {
		o := &sp.Open[i]
		e.str(o.Code)
		e.str(o.AccountID)
		e.date(o.KeyStart)
		e.date(o.KeyEnd)
		e.date(o.From)
		e.date(o.To)
		e.date(o.EffectiveDate)
		e.date(o.Until)
		e.source(o.Source)
	}
	e.uint(uint64(len(sp.Sent)))
	for _, m := range sp.Sent {
		e.str(m.CustomerID)
		e.str(m.PremiseID)
		e.uint(m.Hash)
	}
	e.uint(uint64(len(sp.Pending)))
	for _, pc := range sp.Pending {
		e.str(pc.ActionID)
		e.str(pc.Ticket)
		e.str(pc.Code)
		e.str(pc.AccountID)
		e.int(pc.RequestedAt)
		e.date(pc.Refused)
		e.source(pc.Source)
	}
}

func (e *enc) reason(r *Reason) {
	e.str(r.Code)
	e.str(r.Rule)
	e.str(r.ServicePointID)
	e.date(r.EffectiveDate)
	e.date(r.Until)
	e.source(r.Source)
}

func (e *enc) reasons(rs []Reason) {
	e.uint(uint64(len(rs)))
	for i := range rs {
		e.reason(&rs[i])
	}
}

func (e *enc) reasonsByKey(m map[string][]Reason) {
	e.uint(uint64(len(m)))
	var keys [8]string
	for _, k := range sortedMapKeys(m, keys[:0]) {
		e.str(k)
		e.reasons(m[k])
	}
}

func (e *enc) membership(m *Membership) {
	e.str(m.CustomerID)
	e.str(m.PremiseID)
	e.str(m.SecondaryID)
	e.str(m.ServicePointID)
	e.str(m.ServiceType)
	e.str(m.AccountID)
	e.date(m.ActiveDate)
	e.date(m.Since)
	e.flag(m.Active)
	e.flag(m.Deleted)
	e.reasons(m.Reasons)
	e.date(m.FirstPeriodStart)
	e.date(m.LastDateTo)
	e.date(m.ChainStart)
	e.int(int64(m.ChainedMonths))
	e.source(m.Source)
}

func (e *enc) memberships(ms map[string]Membership) {
	e.uint(uint64(len(ms)))
	var keys [8]string
	for _, k := range sortedMapKeys(ms, keys[:0]) {
		m := ms[k]
		e.str(k)
		e.membership(&m)
	}
}

func (e *enc) site(s *Site) {
	e.str(s.ID)
	e.uint(uint64(len(s.Points)))
	var keys [8]string
	for _, sp := range sortedMapKeys(s.Points, keys[:0]) {
		e.str(sp)
		e.memberships(s.Points[sp])
	}
	e.reasonsByKey(s.Sent)
}

func (e *enc) customer(c *Customer) {
	e.str(c.ID)
	e.uint(uint64(len(c.Premises)))
	var keys [8]string
	for _, id := range sortedMapKeys(c.Premises, keys[:0]) {
		pr := c.Premises[id]
		e.str(id)
		e.flag(pr != nil)
		if pr == nil {
			continue // refused by CheckInvariants; kept so the bytes say what the state held
		}
		e.str(pr.SecondaryID)
		e.memberships(pr.Points)
		e.uint(uint64(len(pr.IntervalMonths)))
		var spKeys [8]string
		for _, sp := range sortedMapKeys(pr.IntervalMonths, spKeys[:0]) {
			e.str(sp)
			e.int(int64(pr.IntervalMonths[sp]))
		}
		e.reasons(pr.Replacements)
		e.reasons(pr.Pinned)
		e.flag(pr.Evaluated)
		e.reasonsByKey(pr.Sent)
		e.uint(uint64(len(pr.Holds)))
		for _, h := range pr.Holds {
			e.str(h.Program)
			e.flag(h.Eligible)
			e.int(int64(h.Since))
			e.str(h.ActionID)
			e.source(h.Source)
			e.int(int64(h.Until))
			e.str(h.Utility)
		}
	}
	e.int(int64(c.ActivePremises))
	e.flag(c.PropertyManager != nil)
	if c.PropertyManager != nil {
		e.reason(c.PropertyManager)
	}
}

// sortedMapKeys appends the keys of a small map to ks, in order: callers pass
// a buffer on their stack, so that encoding a state does not allocate one
// slice of keys per map.
func sortedMapKeys[V any](m map[string]V, ks []string) []string {
	for k := range m {
		ks = append(ks, k)
	}
	if len(ks) > 1 {
		slices.Sort(ks)
	}
	return ks
}

func (d *dec) flag() bool {
	if d.err != nil || d.i >= len(d.b) || d.b[d.i] > 1 {
		d.fail("flag")
		return false
	}
	d.i++
	return d.b[d.i-1] == 1
}

func (d *dec) date() dates.Date {
	v := d.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("date")
		return 0
	}
	return dates.Date(v)
}

// end reports the first error, or bytes left over.
func (d *dec) end() error {
	if d.err == nil && d.i != len(d.b) {
		d.fail("trailing bytes")
	}
	return d.err
}

func (d *dec) servicePoint(sp *ServicePoint) {
	sp.ID = d.str()
	sp.ServiceType = d.str()
	if n := d.count(); n > 0 {
		sp.Periods = make([]Period, n)
		for i := range sp.Periods {
			p := &sp.Periods[i]
			p.Start, p.DateTo = d.date(), d.date()
			p.Value, p.Charge = d.value(), d.value()
			p.HasCharge = d.flag()
		}
	}
	if n := d.count(); n > 0 {
		sp.Tenures = make([]Tenure, n)
		for i := range sp.Tenures {
			t := &sp.Tenures[i]
			t.Seq = int(d.int())
			t.AccountID, t.CustomerID, t.PremiseID, t.SecondaryID = d.str(), d.str(), d.str(), d.str()
			t.ActiveDate, t.InactiveDate = d.date(), d.date()
			t.Deleted = d.flag()
			t.DeletedOn = d.date()
			t.RateCode = d.str()
			t.RateSince = d.date()
			t.RateSource = d.source()
			t.AsOf = d.date()
			if !d.spV2 {
				t.AsOfFile = d.str()
			}
			t.Source, t.EndSource = d.source(), d.source()
		}
	}
	sp.NextSeq = int(d.int())
	if n := d.count(); n > 0 {
		sp.FirstActive = make(map[string]dates.Date, n)
		for ; n > 0 && d.err == nil; n-- {
			k := d.str()
			sp.FirstActive[k] = d.date()
		}
	}
	if n := d.count(); n > 0 {
		sp.Open = make([]OpenAnomaly, n)
		for i := range sp.Open {
			o := &sp.Open[i]
			o.Code, o.AccountID = d.str(), d.str()
			o.KeyStart, o.KeyEnd, o.From, o.To = d.date(), d.date(), d.date(), d.date()
			o.EffectiveDate, o.Until = d.date(), d.date()
			o.Source = d.source()
		}
	}
	if n := d.count(); n > 0 {
		sp.Sent = make([]SentMembership, n)
		for i := range sp.Sent {
			sp.Sent[i] = SentMembership{CustomerID: d.str(), PremiseID: d.str(), Hash: d.uint()}
		}
	}
	if d.noPending {
		return
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		pc := PendingClear{ActionID: d.str(), Ticket: d.str(), Code: d.str(), AccountID: d.str(), RequestedAt: d.int()}
		pc.Refused = d.date()
		pc.Source = d.source()
		sp.Pending = append(sp.Pending, pc)
	}
}

func (d *dec) reason(r *Reason) {
	r.Code, r.Rule, r.ServicePointID = d.str(), d.str(), d.str()
	r.EffectiveDate, r.Until = d.date(), d.date()
	r.Source = d.source()
}

func (d *dec) reasons() []Reason {
	n := d.count()
	if n == 0 {
		return nil
	}
	rs := make([]Reason, n)
	for i := range rs {
		d.reason(&rs[i])
	}
	return rs
}

func (d *dec) reasonsByKey() map[string][]Reason {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string][]Reason, n)
	for ; n > 0 && d.err == nil; n-- {
		k := d.str()
		m[k] = d.reasons()
	}
	return m
}

func (d *dec) membership(m *Membership) {
	m.CustomerID, m.PremiseID, m.SecondaryID = d.str(), d.str(), d.str()
	m.ServicePointID, m.ServiceType, m.AccountID = d.str(), d.str(), d.str()
	m.ActiveDate = d.date()
	if !d.noSince {
		m.Since = d.date()
	}
	m.Active, m.Deleted = d.flag(), d.flag()
	m.Reasons = d.reasons()
	m.FirstPeriodStart, m.LastDateTo, m.ChainStart = d.date(), d.date(), d.date()
	m.ChainedMonths = int(d.int())
	m.Source = d.source()
}

func (d *dec) memberships() map[string]Membership {
	n := d.count()
	if n == 0 {
		return nil
	}
	ms := make(map[string]Membership, n)
	for ; n > 0 && d.err == nil; n-- {
		k := d.str()
		var m Membership
		d.membership(&m)
		ms[k] = m
	}
	return ms
}

func (d *dec) site(s *Site) {
	s.ID = d.str()
	if n := d.count(); n > 0 {
		s.Points = make(map[string]map[string]Membership, n)
		for ; n > 0 && d.err == nil; n-- {
			k := d.str()
			s.Points[k] = d.memberships()
		}
	}
	s.Sent = d.reasonsByKey()
}

func (d *dec) customer(c *Customer) {
	c.ID = d.str()
	if n := d.count(); n > 0 {
		c.Premises = make(map[string]*Premise, n)
		for ; n > 0 && d.err == nil; n-- {
			id := d.str()
			if !d.flag() {
				c.Premises[id] = nil
				continue
			}
			pr := &Premise{SecondaryID: d.str(), Points: d.memberships()}
			if k := d.count(); k > 0 {
				pr.IntervalMonths = make(map[string]int, k)
				for ; k > 0 && d.err == nil; k-- {
					sp := d.str()
					pr.IntervalMonths[sp] = int(d.int())
				}
			}
			pr.Replacements, pr.Pinned = d.reasons(), d.reasons()
			pr.Evaluated = d.flag()
			pr.Sent = d.reasonsByKey()
			if !d.noHolds {
				if k := d.count(); k > 0 {
					pr.Holds = make([]Hold, 0, k)
					for ; k > 0 && d.err == nil; k-- {
						h := Hold{Program: d.str(), Eligible: d.flag(), Since: dates.Date(d.int()), ActionID: d.str(), Source: d.source()}
						if !d.noHoldUntil {
							h.Until, h.Utility = dates.Date(d.int()), d.str()
						}
						pr.Holds = append(pr.Holds, h)
					}
				}
			}
			c.Premises[id] = pr
		}
	}
	c.ActivePremises = int(d.int())
	if d.flag() {
		c.PropertyManager = new(Reason)
		d.reason(c.PropertyManager)
	}
}
