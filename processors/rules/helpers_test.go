package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// D parses a yyyymmdd literal.
func D(s string) dates.Date { return dates.MustParse(s) }

// rb builds a billing row. Defaults: customer C1 at premise P1, account A1
// active from 2024-01-01, rate R1, electric.
type rb struct{ r records.BillingRow }

func newRow(l records.Layout, sp string) *rb {
	b := &rb{records.BillingRow{Layout: l, ServicePointID: sp}}
	if l != records.LayoutUsage {
		b.r.CustomerID, b.r.PremiseID, b.r.AccountID = "C1", "P1", "A1"
		b.r.ActiveDate, b.r.RateCode, b.r.ServiceType = D("20240101"), "R1", "E"
	}
	return b
}

func full(sp string) *rb  { return newRow(records.LayoutFull, sp) }
func cust(sp string) *rb  { return newRow(records.LayoutCustomer, sp) }
func usage(sp string) *rb { return newRow(records.LayoutUsage, sp) }

func (b *rb) acct(id, active string) *rb { b.r.AccountID, b.r.ActiveDate = id, D(active); return b }
func (b *rb) who(c, p string) *rb        { b.r.CustomerID, b.r.PremiseID = c, p; return b }
func (b *rb) sec(id string) *rb          { b.r.SecondaryID = id; return b }
func (b *rb) rate(c string) *rb          { b.r.RateCode = c; return b }
func (b *rb) fuel(t string) *rb          { b.r.ServiceType = t; return b }
func (b *rb) del() *rb                   { b.r.IsAccountDeletion = true; return b }
func (b *rb) inactive(d string) *rb {
	b.r.InactiveDate = records.NullDate{Date: D(d), Valid: true}
	return b
}

// per sets the usage: the period ending dateTo, dur days long.
func (b *rb) per(dateTo string, dur int, v float64) *rb {
	b.r.DateTo, b.r.Duration, b.r.UsageValue = D(dateTo), int32(dur), v
	return b
}

// mon sets the usage to the calendar month ym ("2024-02").
func (b *rb) mon(ym string, v float64) *rb {
	s := D(strings.ReplaceAll(ym, "-", "") + "01")
	e := s.AddMonths(1) - 1
	b.r.DateTo, b.r.Duration, b.r.UsageValue = e, int32(e-s+1), v
	return b
}

func (b *rb) charge(c float64) *rb {
	b.r.UsageCharge = records.NullFloat{Value: c, Valid: true}
	return b
}

// months returns full rows for n consecutive calendar months from ym.
func months(base *rb, ym string, n int) []*rb {
	s := D(strings.ReplaceAll(ym, "-", "") + "01")
	out := make([]*rb, n)
	for i := range n {
		b := *base
		ms := s.AddMonths(i)
		e := ms.AddMonths(1) - 1
		b.r.DateTo, b.r.Duration, b.r.UsageValue = e, int32(e-ms+1), float64(100+i)
		out[i] = &b
	}
	return out
}

// harness runs stage 1 and stage 2 the way the runtime does: state kept
// encoded between inputs (so every Apply also proves the encoding), stage 1
// keyed by service point, its memberships fed to stage 2 keyed by customer.
type harness struct {
	t     testing.TB
	p     Policy
	sps   map[string][]byte
	sites map[string][]byte
	custs map[string][]byte
	line  int64
	n2    int64
	file  string // the file of the next rows; "" is test.tsv
	// ingested is the record timestamp of the next rows (zero: unknown).
	ingested time.Time
	// Everything emitted so far.
	all1 Stage1Output
	elig []EligibilityChanged
}

func newHarness(t testing.TB, p Policy) *harness {
	return &harness{t: t, p: p, sps: map[string][]byte{}, sites: map[string][]byte{}, custs: map[string][]byte{}}
}

func (h *harness) src() Source {
	f := h.file
	if f == "" {
		f = "test.tsv"
	}
	return Source{Topic: "billing.v1", Offset: h.line - 1, File: f, Line: h.line}
}

// feed applies rows in order; it returns what the last row caused.
func (h *harness) feed(rows ...*rb) (Stage1Output, []EligibilityChanged) {
	h.t.Helper()
	var o1 Stage1Output
	var o2 []EligibilityChanged
	for _, b := range rows {
		h.line++
		row := b.r
		o1, o2 = h.apply(&row, h.src())
	}
	return o1, o2
}

func (h *harness) apply(row *records.BillingRow, src Source) (Stage1Output, []EligibilityChanged) {
	h.t.Helper()
	var sp ServicePoint
	if b, ok := h.sps[row.ServicePointID]; ok {
		if err := sp.UnmarshalBinary(b); err != nil {
			h.t.Fatal(err)
		}
	}
	o1 := sp.ApplyRow(h.p, row, src, h.ingested)
	if err := sp.CheckInvariants(); err != nil {
		h.t.Fatalf("after line %d: %v", src.Line, err)
	}
	b, err := sp.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	h.sps[row.ServicePointID] = b
	h.all1.Corrections = append(h.all1.Corrections, o1.Corrections...)
	h.all1.Anomalies = append(h.all1.Anomalies, o1.Anomalies...)
	h.all1.AccountEvents = append(h.all1.AccountEvents, o1.AccountEvents...)
	h.all1.Memberships = append(h.all1.Memberships, o1.Memberships...)
	var o2 []EligibilityChanged
	for _, m := range o1.Memberships {
		o2 = append(o2, h.stage2(m)...)
	}
	return o1, o2
}

// stage2 runs one membership through the premise stage and what that
// forwards through stage 2, each state round-tripped through its encoding.
func (h *harness) stage2(m Membership) []EligibilityChanged {
	h.t.Helper()
	var site Site
	if b, ok := h.sites[m.PremiseID]; ok {
		if err := site.UnmarshalBinary(b); err != nil {
			h.t.Fatal(err)
		}
	}
	so := site.Apply(h.p, m)
	h.all1.Anomalies = append(h.all1.Anomalies, so.Anomalies...)
	ins := so.Inputs
	b, err := site.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	h.sites[m.PremiseID] = b
	var out []EligibilityChanged
	for _, in := range ins {
		out = append(out, h.customerInput(in)...)
	}
	return out
}

func (h *harness) customerInput(in CustomerInput) []EligibilityChanged {
	h.t.Helper()
	h.n2++
	var c Customer
	if b, ok := h.custs[in.CustomerID]; ok {
		if err := c.UnmarshalBinary(b); err != nil {
			h.t.Fatal(err)
		}
	}
	out := c.Receive(h.p, in, Source{Topic: "memberships.v1", Offset: h.n2 - 1})
	if err := c.CheckInvariants(); err != nil {
		h.t.Fatalf("customer %s: %v", in.CustomerID, err)
	}
	if (c.PropertyManager != nil) != (c.ActivePremises > h.p.PropertyManagerPremises) {
		h.t.Fatalf("customer %s: property manager %v with %d active premises", in.CustomerID, c.PropertyManager != nil, c.ActivePremises)
	}
	b, err := c.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	h.custs[in.CustomerID] = b
	h.elig = append(h.elig, out...)
	return out
}

// receive gives stage 2 one membership directly, as the premise stage would
// forward it, with no S1 reasons.
func receive(c *Customer, p Policy, m Membership, src Source) []EligibilityChanged {
	return c.Receive(p, CustomerInput{CustomerID: m.CustomerID, PremiseID: m.PremiseID, Membership: &m, Cause: m.Source}, src)
}

func (h *harness) sp(id string) *ServicePoint {
	var sp ServicePoint
	if err := sp.UnmarshalBinary(h.sps[id]); err != nil {
		h.t.Fatal(err)
	}
	return &sp
}

func (h *harness) site(id string) *Site {
	var s Site
	if err := s.UnmarshalBinary(h.sites[id]); err != nil {
		h.t.Fatal(err)
	}
	return &s
}

func (h *harness) customer(id string) *Customer {
	var c Customer
	if err := c.UnmarshalBinary(h.custs[id]); err != nil {
		h.t.Fatal(err)
	}
	return &c
}

// state is the current eligibility of every (customer, premise, program) as
// the emitted events say.
func (h *harness) state() map[string]EligibilityChanged {
	m := map[string]EligibilityChanged{}
	for _, e := range h.elig {
		m[e.CustomerID+"/"+e.PremiseID+"/"+e.Program] = e
	}
	return m
}

// now is the current eligibility of one subject and program, as a string.
func (h *harness) now(cust, prem, prog string) string {
	h.t.Helper()
	e, ok := h.state()[cust+"/"+prem+"/"+prog]
	if !ok {
		h.t.Fatalf("no event ever for %s/%s/%s", cust, prem, prog)
	}
	return reasonList(e.Reasons)
}

// Compact renderings, so that tests state exact events in one line each.

func reasonList(rs []Reason) string {
	if len(rs) == 0 {
		return "eligible"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%s:%s:%s:%s", r.Code, r.Rule, r.ServicePointID, r.EffectiveDate)
		if r.Until != 0 {
			s[i] += ".." + r.Until.String()
		}
	}
	return strings.Join(s, " ")
}

func corrStrings(cs []Correction) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s %s %s/%d %v->%v => %s/%d", c.Rule, c.Kind, c.ServicePointID, c.DateTo, c.Duration,
			c.OldValue, c.NewValue, c.NewDateTo, c.NewDuration))
	}
	return out
}

func anomStrings(as []Anomaly) []string {
	out := []string{}
	for _, a := range as {
		s := fmt.Sprintf("%s %s %s %s", a.Rule, a.Code, a.ServicePointID, a.EffectiveDate)
		if a.Until != 0 {
			s += ".." + a.Until.String()
		}
		if a.Cleared {
			s += " cleared"
		}
		out = append(out, s)
	}
	return out
}

func eventStrings(es []AccountEvent) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s %s %s/%s/%s %s", e.Rule, e.Type, e.ServicePointID, e.AccountID, e.CustomerID, e.Date))
	}
	return out
}

func memberStrings(ms []Membership) []string {
	out := []string{}
	for _, m := range ms {
		st := "inactive"
		if m.Active {
			st = "active"
		}
		if m.Deleted {
			st = "deleted"
		}
		use := "-"
		if m.FirstPeriodStart != 0 {
			use = m.FirstPeriodStart.String() + "-" + m.LastDateTo.String()
		}
		out = append(out, fmt.Sprintf("%s/%s/%s %s %s [%s]", m.CustomerID, m.PremiseID, m.ServicePointID, st, use, reasonList(m.Reasons)))
	}
	return out
}

func eligStrings(es []EligibilityChanged) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s/%s %s [%s]", e.CustomerID, e.PremiseID, e.Program, reasonList(e.Reasons)))
	}
	return out
}

func expect(t testing.TB, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, fmtList(got), fmtList(want))
	}
}

func fmtList(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return "\n    " + strings.Join(s, "\n    ")
}

// sortedKeys is for deterministic iteration in tests.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
