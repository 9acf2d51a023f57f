package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// act applies an operator action to its service point as the stage does:
// state decoded, action applied, state encoded again when it changed, and
// the memberships run through the premise stage and stage 2.
func (h *harness) act(a records.OperatorAction) (Stage1Output, []EligibilityChanged) {
	h.t.Helper()
	var sp ServicePoint
	if b, ok := h.sps[a.ServicePointID]; ok {
		if err := sp.UnmarshalBinary(b); err != nil {
			h.t.Fatal(err)
		}
	}
	before, _ := sp.MarshalBinary()
	src := Source{Topic: "operator-actions.v1", Offset: 7}
	o1, changed := sp.ApplyAction(h.p, &a, src)
	after, err := sp.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	if changed {
		if err := sp.CheckInvariants(); err != nil {
			h.t.Fatal(err)
		}
		h.sps[a.ServicePointID] = after
	} else if string(before) != string(after) {
		h.t.Fatalf("ApplyAction reported no change but changed the state")
	}
	for _, x := range o1.Anomalies {
		if x.Source != src {
			h.t.Errorf("anomaly %s cites %+v, not the action at %+v", x.Code, x.Source, src)
		}
	}
	var o2 []EligibilityChanged
	for _, m := range o1.Memberships {
		if m.Source != src {
			h.t.Errorf("membership of %s cites %+v, not the action", m.CustomerID, m.Source)
		}
		o2 = append(o2, h.stage2(m)...)
	}
	return o1, o2
}

func clearAction(sp, code, acct string) records.OperatorAction {
	return records.OperatorAction{ActionID: "act-1", Kind: records.ActionClearAnomaly, Utility: "tst", ServicePointID: sp, AnomalyCode: code, AccountID: acct,
		Actor: "ops", RequestedAt: time.Date(2024, 6, 3, 10, 0, 0, 0, time.UTC), Reason: "confirmed with billing", Ticket: "OPS-42"}
}

func TestOV1ClearActiveDateChanged(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
	h.feed(full("SP1").acct("A1", "20240301").mon("2024-03", 1))
	if got := h.now("C1", "P1", ProgramCommunications); got == "eligible" {
		t.Fatalf("communications before the clear: %s, want blocked by A3", got)
	}

	o1, o2 := h.act(clearAction("SP1", AnomalyActiveDateChanged, ""))
	expect(t, "anomalies", anomStrings(o1.Anomalies), []string{"OV1 ACTIVE_DATE_CHANGED SP1 20240301 cleared"})
	if m := o1.Anomalies[0].Message; !strings.Contains(m, "act-1") || !strings.Contains(m, "OPS-42") {
		t.Errorf("the cleared anomaly's message %q names neither the action nor its ticket", m)
	}
	expect(t, "memberships", memberStrings(o1.Memberships), []string{"C1/P1/SP1 active 20240301-20240331 [eligible]"})
	// Stage 2 cites a membership's cause, the action (the harness gives
	// stage 2 positions of its own; the pipeline test checks the event).
	if len(o2) == 0 {
		t.Fatal("the clear changed no eligibility")
	}
	if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
		t.Errorf("communications after the clear: %s", got)
	}

	// The changed date is now the account's own: it opens nothing again.
	o1, _ = h.feed(full("SP1").acct("A1", "20240301").mon("2024-04", 1))
	if len(o1.Anomalies) != 0 {
		t.Errorf("a row with the accepted date: %v", anomStrings(o1.Anomalies))
	}
	if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
		t.Errorf("communications after the next row: %s", got)
	}
	// The same clear again has nothing to clear.
	o1, _ = h.act(clearAction("SP1", AnomalyActiveDateChanged, ""))
	expect(t, "second clear", anomStrings(o1.Anomalies), []string{"OV1 OVERRIDE_REFUSED SP1 20240603"})
}

func TestOV1ClearRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    records.OperatorAction
		want string
	}{
		{"nothing open", clearAction("SP1", AnomalyActiveDateChanged, ""), "no ACTIVE_DATE_CHANGED is open"},
		{"another account", clearAction("SP1", AnomalyActiveDateChanged, "A9"), "for account A9"},
		{"a gap is derived again", clearAction("SP1", AnomalyUsageGap, ""), "no condition an operator can clear"},
		{"an unknown service point", clearAction("SP2", AnomalyActiveDateChanged, ""), "service point SP2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultPolicy())
			h.feed(full("SP1").mon("2024-01", 1))
			o1, o2 := h.act(tc.a)
			if len(o1.Anomalies) != 1 || o1.Anomalies[0].Code != AnomalyOverrideRefused || !strings.Contains(o1.Anomalies[0].Message, tc.want) {
				t.Fatalf("anomalies %v, want one OVERRIDE_REFUSED saying %q", o1.Anomalies, tc.want)
			}
			if len(o1.Memberships)+len(o2) != 0 {
				t.Errorf("a refused action sent memberships %v and eligibility %v", o1.Memberships, o2)
			}
		})
	}
}

func TestOV1ClearReactivationRefused(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").inactive("20240229").mon("2024-02", 1))
	o1, _ := h.feed(full("SP1").acct("A1", "20240115").mon("2024-03", 1))
	if !slices.ContainsFunc(o1.Anomalies, func(a Anomaly) bool { return a.Code == AnomalyReactivationRefused }) {
		t.Fatalf("setup: anomalies %v, want REACTIVATION_REFUSED", anomStrings(o1.Anomalies))
	}
	o1, _ = h.act(clearAction("SP1", AnomalyReactivationRefused, "A1"))
	if len(o1.Anomalies) != 1 || !o1.Anomalies[0].Cleared || o1.Anomalies[0].Code != AnomalyReactivationRefused {
		t.Fatalf("anomalies %v, want REACTIVATION_REFUSED cleared", anomStrings(o1.Anomalies))
	}
	if i := h.sp("SP1").openIndex(AnomalyReactivationRefused, "A1"); i >= 0 {
		t.Errorf("still open after the clear")
	}
}

// hold applies a hold or release to its customer as the customer stage
// does, the state round-tripped through its encoding.
func (h *harness) hold(a records.OperatorAction) []EligibilityChanged {
	h.t.Helper()
	var c Customer
	if b, ok := h.custs[a.CustomerID]; ok {
		if err := c.UnmarshalBinary(b); err != nil {
			h.t.Fatal(err)
		}
	}
	src := Source{Topic: "operator-holds.v1", Offset: 3}
	out := c.ApplyAction(h.p, &a, src)
	if err := c.CheckInvariants(); err != nil {
		h.t.Fatal(err)
	}
	b, err := c.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	h.custs[a.CustomerID] = b
	h.elig = append(h.elig, out...)
	for _, e := range out {
		if e.Source != src {
			h.t.Errorf("eligibility of %s cites %+v, not the action", e.Program, e.Source)
		}
	}
	return out
}

func holdAction(kind, program string) records.OperatorAction {
	return records.OperatorAction{ActionID: "hold-1", Kind: kind, Utility: "tst", CustomerID: "C1", PremiseID: "P1", Program: program,
		Actor: "ops", RequestedAt: time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC), Reason: "customer asked", Ticket: "OPS-77"}
}

func TestOV2HoldIneligible(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
	if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
		t.Fatalf("setup: communications %s", got)
	}
	out := h.hold(holdAction(records.ActionHoldIneligible, ProgramCommunications))
	expect(t, "events", eligStrings(out), []string{"C1/P1 communications [OPERATOR_HOLD:OV2::20240310]"})
	// Held whatever the next bills say; the other programs follow the rules.
	h.feed(full("SP1").mon("2024-03", 1), full("SP1").mon("2024-04", 1))
	if got := h.now("C1", "P1", ProgramCommunications); got != "OPERATOR_HOLD:OV2::20240310" {
		t.Errorf("after more bills: %s", got)
	}
	if got := h.now("C1", "P1", ProgramWebAccess); got != "eligible" {
		t.Errorf("web_access, not held: %s", got)
	}
	out = h.hold(holdAction(records.ActionReleaseHold, ProgramCommunications))
	expect(t, "released", eligStrings(out), []string{"C1/P1 communications [eligible]"})
	if hs := h.customer("C1").Premises["P1"].Holds; hs != nil {
		t.Errorf("holds left after the release: %+v", hs)
	}
}

func TestOV2HoldEligibleAndRelease(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").rate("MED1").mon("2024-02", 1))
	blocked := h.now("C1", "P1", ProgramCommunications)
	if blocked == "eligible" {
		t.Fatal("setup: communications eligible on a rate left off")
	}
	out := h.hold(holdAction(records.ActionHoldEligible, ProgramCommunications))
	expect(t, "held", eligStrings(out), []string{"C1/P1 communications [eligible]"})
	// Rows that change the rules' reasons change nothing while held.
	out = nil
	_, o2 := h.feed(full("SP1").rate("MED1").mon("2024-03", 1))
	for _, e := range o2 {
		if e.Program == ProgramCommunications {
			out = append(out, e)
		}
	}
	if len(out) != 0 {
		t.Errorf("communications changed while held: %v", eligStrings(out))
	}
	// The same hold again emits nothing; the release gives the rules' answer.
	if out := h.hold(holdAction(records.ActionHoldEligible, ProgramCommunications)); len(out) != 0 {
		t.Errorf("the same hold again: %v", eligStrings(out))
	}
	rel := holdAction(records.ActionReleaseHold, ProgramCommunications)
	out = h.hold(rel)
	if len(out) != 1 || out[0].Eligible || reasonList(out[0].Reasons) != blocked {
		t.Errorf("release: %v, want communications blocked again by %s", eligStrings(out), blocked)
	}
	if out := h.hold(rel); len(out) != 0 {
		t.Errorf("a release of nothing: %v", eligStrings(out))
	}
}

func TestOV2HoldWaitsForTheSubject(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	if out := h.hold(holdAction(records.ActionHoldIneligible, ProgramWebAccess)); len(out) != 0 {
		t.Fatalf("a hold before any data emitted %v", eligStrings(out))
	}
	h.feed(full("SP1").mon("2024-01", 1))
	if got := h.now("C1", "P1", ProgramWebAccess); got != "OPERATOR_HOLD:OV2::20240310" {
		t.Errorf("web_access once data came: %s", got)
	}
	if got := h.now("C1", "P1", ProgramCommunications); got != "eligible" {
		t.Errorf("communications, not held: %s", got)
	}
}

func TestKnownProgram(t *testing.T) {
	if !KnownProgram(ProgramDisaggregation) || KnownProgram("newsletter") {
		t.Error("KnownProgram does not follow the program table")
	}
}

// TestOV1ClearWaitsForItsCondition: a replay reads billing.v1 and the
// actions' topic in no fixed order, so a clear may come before the row
// that opened its condition. The refused clear waits: a row ingested
// before the action was requested that opens the condition has it cleared
// at once, and the refusal withdrawn, so the replay ends as the live run
// did. A row ingested after the action opens a condition the operator
// never saw: it stays open.
func TestOV1ClearWaitsForItsCondition(t *testing.T) {
	a := clearAction("SP1", AnomalyActiveDateChanged, "")
	for _, tc := range []struct {
		name     string
		ingested time.Time
		want     []string
		comms    string
	}{
		{"row ingested before the action", a.RequestedAt.Add(-time.Hour),
			[]string{"A3 ACTIVE_DATE_CHANGED SP1 20240301", "OV1 ACTIVE_DATE_CHANGED SP1 20240301 cleared", "OV1 OVERRIDE_REFUSED SP1 20240603 cleared"}, "eligible"},
		{"row ingested after the action", a.RequestedAt.Add(time.Hour),
			[]string{"A3 ACTIVE_DATE_CHANGED SP1 20240301"}, "blocked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultPolicy())
			h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
			o1, _ := h.act(a)
			if len(o1.Anomalies) != 1 || o1.Anomalies[0].Code != AnomalyOverrideRefused || !strings.Contains(o1.Anomalies[0].Message, "waits") {
				t.Fatalf("the early clear gave %v, want one OVERRIDE_REFUSED saying it waits", o1.Anomalies)
			}
			h.ingested = tc.ingested
			o1, _ = h.feed(full("SP1").acct("A1", "20240301").mon("2024-03", 1))
			expect(t, "anomalies", anomStrings(o1.Anomalies), tc.want)
			for _, x := range o1.Anomalies {
				if x.Rule == "OV1" && x.Source.Topic != "operator-actions.v1" {
					t.Errorf("%s %s cites %+v, not the action", x.Rule, x.Code, x.Source)
				}
			}
			got := h.now("C1", "P1", ProgramCommunications)
			if (tc.comms == "eligible") != (got == "eligible") {
				t.Errorf("communications: %s, want %s", got, tc.comms)
			}
		})
	}
}

// TestOV2HoldUntilADate: a hold with an until date lasts through that day;
// the customer stage's timer at NextHoldEnd (midnight UTC after it) ends
// it, and the program gets the rules' own answer back, citing the hold.
func TestOV2HoldUntilADate(t *testing.T) {
	h := newHarness(t, DefaultPolicy())
	h.feed(full("SP1").mon("2024-01", 1), full("SP1").mon("2024-02", 1))
	a := holdAction(records.ActionHoldIneligible, ProgramCommunications)
	until := dates.MustParse("20240315")
	a.Until = &until
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	out := h.hold(a)
	if len(out) != 1 || out[0].Eligible || out[0].Reasons[0].Code != ReasonOperatorHold || out[0].Reasons[0].Until != until {
		t.Fatalf("held: %v, want OPERATOR_HOLD until 2024-03-15", eligStrings(out))
	}
	c := h.customer("C1")
	end, ok := c.NextHoldEnd()
	if want := time.Date(2024, 3, 16, 0, 0, 0, 0, time.UTC); !ok || !end.Equal(want) {
		t.Fatalf("NextHoldEnd %v %v, want %v", end, ok, want)
	}
	if ev, _ := c.EndHolds(h.p, end.Add(-time.Millisecond)); len(ev) != 0 {
		t.Fatalf("ended on its last day: %v", eligStrings(ev))
	}
	ev, utility := c.EndHolds(h.p, end)
	if len(ev) != 1 || !ev[0].Eligible || ev[0].Program != ProgramCommunications || ev[0].Source.Topic != "operator-holds.v1" || utility != "tst" {
		t.Fatalf("at its end: %v (utility %q), want communications eligible again, citing the hold", eligStrings(ev), utility)
	}
	if _, ok := c.NextHoldEnd(); ok || c.Premises["P1"].Holds != nil {
		t.Errorf("a hold is left after its end: %+v", c.Premises["P1"].Holds)
	}
	// The state keeps the until date across its encoding.
	h.hold(a)
	if got := h.customer("C1").Premises["P1"].Holds; len(got) != 1 || got[0].Until != until || got[0].Utility != "tst" {
		t.Errorf("decoded holds %+v", got)
	}
}

func TestOV2UntilIsForAHoldAndNotPast(t *testing.T) {
	past, later := dates.MustParse("20240309"), dates.MustParse("20240310")
	for _, c := range []struct {
		kind  string
		until dates.Date
		ok    bool
	}{
		{records.ActionHoldIneligible, later, true},
		{records.ActionHoldEligible, past, false},
		{records.ActionReleaseHold, later, false},
	} {
		a := holdAction(c.kind, ProgramCommunications)
		a.Until = &c.until
		if err := a.Validate(); (err == nil) != c.ok {
			t.Errorf("%s until %s: %v, want ok=%v", c.kind, c.until, err, c.ok)
		}
	}
	cl := clearAction("SP1", AnomalyActiveDateChanged, "")
	cl.Until = &later
	if err := cl.Validate(); err == nil {
		t.Error("a clear with an until date validated")
	}
}
