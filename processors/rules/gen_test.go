package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/records"
)

// The generator's labels are the ground truth: every injected anomaly must be
// reported, with its rule, at its service point and by the row that carries
// the label, and clean service points must cause nothing.

var genNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// ruleKinds is every Kind the rules see: all but the malformed rows (rule
// DC-*), which the reader rejects. U9 stays in: the reader rejects it too
// (no net metering), and the test checks that.
func ruleKinds() map[gen.Kind]int {
	m := map[gen.Kind]int{}
	for _, k := range gen.Kinds() {
		if !strings.HasPrefix(k.Rule(), "DC-") {
			m[k] = 1
		}
	}
	return m
}

// run is everything the rules said about a set of files, fed in file order.
type run struct {
	t     testing.TB
	p     Policy
	chain *Chain
	sps   map[string]*ServicePoint // the chain's stores

	custs    map[string]*Customer
	out      Stage1Output
	elig     []EligibilityChanged
	rejected map[string][]string // "file:line" -> reject codes
	spsAt    map[string]map[string]bool
	offset   int64
}

func newRun(t testing.TB, p Policy) *run {
	sps, custs := NewMemoryStore[ServicePoint](), NewMemoryStore[Customer]()
	return &run{t: t, p: p, chain: &Chain{Policy: p, ServicePoints: sps, Sites: NewMemoryStore[Site](), Customers: custs},
		sps: sps.m, custs: custs.m, rejected: map[string][]string{}, spsAt: map[string]map[string]bool{}}
}

func (r *run) file(name string, rd io.Reader) {
	r.t.Helper()
	br, err := billing.NewReader(name, rd, billing.Options{NetMetering: r.p.NetMetering})
	if err != nil {
		r.t.Fatal(err)
	}
	defer br.Close()
	for {
		rec, err := br.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			r.t.Fatal(err)
		}
		r.offset++
		if rec.Rejected != nil {
			for _, rs := range rec.Rejected.Reasons {
				k := fmt.Sprintf("%s:%d", name, rec.Rejected.Line)
				r.rejected[k] = append(r.rejected[k], rs.Code)
			}
			continue
		}
		r.row(rec.Row, Source{Topic: "billing.v1", Offset: r.offset - 1, File: name, Line: rec.Row.Line})
	}
}

func (r *run) row(row *records.BillingRow, src Source) {
	o, err := r.chain.Apply(row, src)
	if err != nil {
		r.t.Fatal(err)
	}
	r.out.Corrections = append(r.out.Corrections, o.Corrections...)
	r.out.Anomalies = append(r.out.Anomalies, o.Anomalies...)
	r.out.AccountEvents = append(r.out.AccountEvents, o.AccountEvents...)
	r.out.Memberships = append(r.out.Memberships, o.Memberships...)
	r.elig = append(r.elig, o.Eligibility...)
	for _, m := range o.Memberships {
		if r.spsAt[m.PremiseID] == nil {
			r.spsAt[m.PremiseID] = map[string]bool{}
		}
		r.spsAt[m.PremiseID][m.ServicePointID] = true
	}
}

// final is the eligibility the events leave each (customer, premise, program) in.
func (r *run) final() map[string]EligibilityChanged {
	m := map[string]EligibilityChanged{}
	for _, e := range r.elig {
		m[e.CustomerID+"/"+e.PremiseID+"/"+e.Program] = e
	}
	return m
}

func TestGeneratorLabels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		seed  int64
		split bool
	}{{"full", 7, false}, {"full-other-seed", 99, false}, {"split", 11, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := gen.Config{ServicePoints: 400, Months: 14, Seed: tc.seed, Now: genNow, Compression: "none",
				Split: tc.split, Anomalies: ruleKinds()}
			r := newRun(t, DefaultPolicy())
			var labels []gen.Label
			if tc.split {
				res, err := gen.Generate(t.TempDir(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				for _, path := range res.Files {
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					r.file(filepath.Base(path), bytes.NewReader(b))
				}
				labels = res.Labels
			} else {
				var buf bytes.Buffer
				_, ls, err := gen.WriteFull(&buf, cfg)
				if err != nil {
					t.Fatal(err)
				}
				r.file(gen.FileName(cfg.WithDefaults(), records.LayoutFull), &buf)
				labels = ls
			}
			if len(labels) != len(ruleKinds()) {
				t.Fatalf("%d labels for %d kinds", len(labels), len(ruleKinds()))
			}
			checkLabels(t, r, labels, tc.split)
			checkClean(t, r, labels)
			checkStates(t, r)
		})
	}
}

func checkLabels(t *testing.T, r *run, labels []gen.Label, split bool) {
	at := func(s Source, l gen.Label) bool { return s.File == l.File && s.Line == l.Line }
	anomaly := func(l gen.Label, code, rule string) bool {
		return slices.ContainsFunc(r.out.Anomalies, func(a Anomaly) bool {
			return a.ServicePointID == l.ServicePointID && a.Code == code && a.Rule == rule && !a.Cleared && at(a.Source, l)
		})
	}
	event := func(l gen.Label, typ, rule string) bool {
		return slices.ContainsFunc(r.out.AccountEvents, func(e AccountEvent) bool {
			return e.ServicePointID == l.ServicePointID && e.Type == typ && e.Rule == rule && at(e.Source, l)
		})
	}
	correction := func(l gen.Label, kind, rule string) bool {
		return slices.ContainsFunc(r.out.Corrections, func(c Correction) bool {
			return c.ServicePointID == l.ServicePointID && c.Kind == kind && c.Rule == rule && at(c.Source, l)
		})
	}
	reason := func(l gen.Label, prog, code, rule, sp string, lineMatters bool) bool {
		return slices.ContainsFunc(r.elig, func(e EligibilityChanged) bool {
			return e.CustomerID == l.CustomerID && e.PremiseID == l.PremiseID && e.Program == prog &&
				slices.ContainsFunc(e.Reasons, func(x Reason) bool {
					return x.Code == code && x.Rule == rule && x.ServicePointID == sp && (!lineMatters || at(x.Source, l))
				})
		})
	}
	for _, l := range labels {
		var ok bool
		switch l.Kind {
		case gen.U2Gap:
			ok = anomaly(l, AnomalyUsageGap, "U2") && reason(l, ProgramCommunications, ReasonUsageGap, "U2", l.ServicePointID, true)
		case gen.U3Overlap:
			ok = anomaly(l, AnomalyUsageOverlap, "U3") && reason(l, ProgramCommunications, ReasonUsageOverlap, "U3", l.ServicePointID, true)
		case gen.U4ExactOverwrite:
			ok = correction(l, CorrectionExact, "U4")
		case gen.U5OverlappingOverwrite:
			ok = correction(l, CorrectionOverlapping, "U5")
		case gen.U7ZeroLapse:
			ok = quiet(r, l.ServicePointID) == ""
		case gen.U9NegativeUsage:
			ok = slices.Contains(r.rejected[fmt.Sprintf("%s:%d", l.File, l.Line)], records.CodeNegativeUsage)
		case gen.A2Supersede:
			ok = event(l, EventSuperseded, "A2") && event(l, EventActivated, "A2")
		case gen.A3ActiveDateChanged:
			ok = anomaly(l, AnomalyActiveDateChanged, "A3") && event(l, EventActiveDateChanged, "A3") &&
				reason(l, ProgramCommunications, ReasonActiveDateChanged, "A3", l.ServicePointID, true)
		case gen.A4Termination:
			ok = event(l, EventTerminated, "A4") && reason(l, ProgramWebAccess, ReasonInactive, "A4", l.ServicePointID, true)
		case gen.A5Reactivation:
			ok = event(l, EventReactivated, "A5")
		case gen.A5InvalidReactivation:
			ok = event(l, EventReactivationRefused, "A5") && anomaly(l, AnomalyReactivationRefused, "A5") &&
				anomaly(l, AnomalyActiveDateChanged, "A3")
		case gen.A7RateNotAllowed:
			ok = event(l, EventRateChanged, "A7") && reason(l, ProgramCommunications, ReasonRateNotAllowed, "A7", l.ServicePointID, true)
		case gen.A8Deletion:
			ok = event(l, EventDeleted, "A8") && reason(l, ProgramWebAccess, ReasonInactive, "A8", l.ServicePointID, true)
		case gen.A8InvalidDeletion:
			ok = event(l, EventDeletionRefused, "A8") && anomaly(l, AnomalyDeletionRefused, "A8")
		case gen.C2PropertyManager:
			ok = reason(l, ProgramNeighborComparison, ReasonPropertyManager, "C2", "", true)
		case gen.S1ServicePointReplace:
			// In the split layout the label sits on the new service point's
			// customer row; the replacement shows once its usage arrives.
			ok = reason(l, ProgramCommunications, ReasonServicePointChanged, "S1", l.ServicePointID, !split)
		case gen.S2DualFuel:
			ok = slices.ContainsFunc(r.elig, func(e EligibilityChanged) bool {
				return e.CustomerID == l.CustomerID && e.PremiseID == l.PremiseID && e.Program == ProgramDualFuelInsights &&
					e.Eligible && at(e.Source, l)
			})
		default:
			t.Errorf("label kind %s not checked", l.Kind)
			continue
		}
		if !ok {
			t.Errorf("%s (%s) at %s:%d on %s not reported as expected; note: %s\n%s", l.Kind, l.Rule, l.File, l.Line,
				l.ServicePointID, l.Note, describeSP(r, l.ServicePointID, l.CustomerID, l.PremiseID))
		}
	}
}

// quiet says what, if anything, a service point caused beyond its first
// account's activation.
func quiet(r *run, sp string) string {
	var s []string
	for _, a := range r.out.Anomalies {
		if a.ServicePointID == sp {
			s = append(s, "anomaly "+strings.Join(anomStrings([]Anomaly{a}), ""))
		}
	}
	for _, c := range r.out.Corrections {
		if c.ServicePointID == sp {
			s = append(s, "correction "+strings.Join(corrStrings([]Correction{c}), ""))
		}
	}
	for _, e := range r.out.AccountEvents {
		if e.ServicePointID == sp && !(e.Type == EventActivated && e.Rule == "A1") {
			s = append(s, "event "+strings.Join(eventStrings([]AccountEvent{e}), ""))
		}
	}
	return strings.Join(s, "; ")
}

func checkClean(t *testing.T, r *run, labels []gen.Label) {
	labelledSP := map[string]bool{}
	labelledPremise := map[string]bool{} // every customer there: a label names the moving-in one, the one moving out changes too
	pmCustomers := map[string]bool{}
	for _, l := range labels {
		labelledSP[l.ServicePointID] = true
		labelledPremise[l.PremiseID] = true
		if l.Kind == gen.C2PropertyManager {
			pmCustomers[l.CustomerID] = true
		}
	}
	for _, id := range sortedKeys(r.sps) {
		if labelledSP[id] {
			continue
		}
		if q := quiet(r, id); q != "" {
			t.Errorf("clean service point %s: %s", id, q)
		}
	}
	allowed := []string{ReasonInsufficientHistory, ReasonNoDualFuel}
	for _, e := range r.elig {
		if labelledPremise[e.PremiseID] || pmCustomers[e.CustomerID] {
			continue
		}
		for _, x := range e.Reasons {
			if !slices.Contains(allowed, x.Code) {
				t.Errorf("clean subject %s/%s %s: %s", e.CustomerID, e.PremiseID, e.Program, reasonList(e.Reasons))
			}
		}
	}
	// In the end, clean dual-fuel premises are eligible for dual fuel and
	// single-fuel ones are not, for NO_DUAL_FUEL only.
	for k, e := range r.final() {
		if labelledPremise[e.PremiseID] || pmCustomers[e.CustomerID] || e.Program != ProgramDualFuelInsights {
			continue
		}
		dual := false
		for sp := range r.spsAt[e.PremiseID] {
			dual = dual || strings.HasPrefix(sp, "SP-G-")
		}
		if e.Eligible != dual {
			t.Errorf("%s: eligible %v, premise has gas %v: %s", k, e.Eligible, dual, reasonList(e.Reasons))
		}
	}
}

// checkStates round-trips every state and checks its invariants.
func checkStates(t *testing.T, r *run) {
	for _, id := range sortedKeys(r.sps) {
		sp := r.sps[id]
		if err := sp.CheckInvariants(); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		b1, err := sp.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back ServicePoint
		if err := back.UnmarshalBinary(b1); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if b2, _ := back.MarshalBinary(); !bytes.Equal(b1, b2) {
			t.Errorf("%s: state differs after a round trip", id)
		}
	}
	for _, id := range sortedKeys(r.custs) {
		c := r.custs[id]
		b1, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Customer
		if err := back.UnmarshalBinary(b1); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if b2, _ := back.MarshalBinary(); !bytes.Equal(b1, b2) {
			t.Errorf("%s: state differs after a round trip", id)
		}
	}
}

// describeSP prints what happened at a service point and its subject, for
// a failing label.
func describeSP(r *run, sp, cust, prem string) string {
	var b strings.Builder
	for _, a := range r.out.Anomalies {
		if a.ServicePointID == sp {
			fmt.Fprintf(&b, "  anomaly %s line %d: %s\n", anomStrings([]Anomaly{a})[0], a.Source.Line, a.Message)
		}
	}
	for _, c := range r.out.Corrections {
		if c.ServicePointID == sp {
			fmt.Fprintf(&b, "  correction %s line %d\n", corrStrings([]Correction{c})[0], c.Source.Line)
		}
	}
	for _, e := range r.out.AccountEvents {
		if e.ServicePointID == sp {
			fmt.Fprintf(&b, "  event %s line %d %s\n", eventStrings([]AccountEvent{e})[0], e.Source.Line, e.Detail)
		}
	}
	for _, e := range r.elig {
		if e.CustomerID == cust && e.PremiseID == prem {
			fmt.Fprintf(&b, "  eligibility %s line %d\n", eligStrings([]EligibilityChanged{e})[0], e.Source.Line)
		}
	}
	return b.String()
}
