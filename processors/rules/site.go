package rules

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/usagestream/usagestream/internal/dates"
)

// Site is the premise stage's state: one premise_id as a place, with every
// service point there and every customer who had an account on it. S1 is a
// fact of the place (docs/rules.md#S1: "the premise becomes ineligible"), so it is
// judged here, across customers: a new customer moving in on a replaced
// meter is blocked although none of the old service points were theirs.
//
// The site forwards each membership to stage 2 only when a part stage 2 uses
// changed (status, reasons, ids, dates of the account), not on every usage
// row, and sends each customer active here the S1 reasons of the place when
// they change.
//
// Invariants (CheckInvariants): Points[sp][customer] has that service point,
// customer and premise ID; Sent lists are sorted.
type Site struct {
	ID string `json:"id"`
	// Points holds the latest membership by service point, then customer.
	Points map[string]map[string]Membership `json:"points,omitempty"`
	// Sent is the S1 reasons last sent to each customer, pinned: a reason
	// keeps the source that first gave it its date (pin).
	// A customer whose last list was empty has no entry.
	Sent map[string][]Reason `json:"sent,omitempty"`
}

// CustomerInput is one stage 2 input: a membership of the customer at the
// premise, the premise's S1 reasons for the customer, or both.
type CustomerInput struct {
	CustomerID string `json:"customer_id"`
	PremiseID  string `json:"premise_id"`
	// Membership is set when the customer's membership changed in a way
	// stage 2 uses. Its usage facts (first and last dates, chain) are left
	// out: the site judges them.
	Membership *Membership `json:"membership,omitempty"`
	// Replacements is set (possibly to an empty list) when the S1 reasons
	// of the premise for this customer changed.
	Replacements *[]Reason `json:"replacements,omitempty"`
	// Cause is the billing row behind this input.
	Cause Source `json:"cause"`
	// Memberships, when not nil, make the input a snapshot: every
	// membership of the customer at the premise (Membership is then nil)
	// with the premise's S1 reasons for them (Replacements, always set).
	// The premise stage sends snapshots, so that of its inputs for one
	// customer in one transaction the last one alone says everything
	// (runtime coalescing keeps only it); inputs of one membership come
	// from earlier releases' repartition topics.
	Memberships []Membership `json:"memberships,omitempty"`
}

// SiteOutput is what one membership caused at the premise stage.
type SiteOutput struct {
	// Inputs are the stage 2 inputs, snapshots sorted by customer.
	Inputs []CustomerInput
	// Before and After are, per customer of Inputs, the fingerprint of
	// what stage 2 had from this premise before and after this membership
	// ("" before: nothing yet): the premise stage's coalescing keys.
	Before, After map[string]string
	// Anomalies are the premise's own findings (C4).
	Anomalies []Anomaly
}

// Apply takes one membership of this premise from stage 1 and returns what it
// causes: stage 2 inputs, and an anomaly when two customers start or stop
// being active at the premise at once (C4). A membership of another premise
// is a routing bug and panics.
func (s *Site) Apply(p Policy, m Membership) SiteOutput {
	if s.unchangedForStage2(m) {
		// A monthly bill at a premise of one service point, or of service
		// points of different fuels: the membership moves only its usage
		// facts, which stage 2 does not read and S1 needs two service
		// points of one fuel to judge. Nothing is sent and nobody starts or
		// stops being active: applyFull returns nothing then
		// (TestSiteFastPathMatchesFull).
		m.Reasons = slices.Clone(m.Reasons)
		s.Points[m.ServicePointID][m.CustomerID] = m
		return SiteOutput{}
	}
	return s.applyFull(p, m, true)
}

// unchangedForStage2 says that m replaces a membership with one that stage 2
// sees the same, at a premise with no S1 reasons sent whose service points
// cannot be two of one fuel (one service point, or fuelsApart).
func (s *Site) unchangedForStage2(m Membership) bool {
	if len(s.Sent) != 0 || m.PremiseID != s.ID {
		return false
	}
	prev, had := s.Points[m.ServicePointID][m.CustomerID]
	if !had || !sameForStage2(prev, m) {
		return false
	}
	return len(s.Points) == 1 || s.fuelsApart()
}

// fuelsApart says that no two of the site's service points can be of one
// fuel, as replacements sees them (points): each has memberships of one
// service type only, and no other point has that type (a deleted
// membership gives its point no fuel at all). A dual-fuel premise (an
// electric and a gas meter) is the common case. m's own membership may
// stand for the one it replaces here: sameForStage2 compares the service
// type.
func (s *Site) fuelsApart() bool {
	var seenBuf [4]string
	seen := seenBuf[:0]
	for _, byCust := range s.Points {
		fuel := ""
		for _, m := range byCust {
			if m.ServiceType == "" || (fuel != "" && m.ServiceType != fuel) {
				return false
			}
			fuel = m.ServiceType
		}
		if fuel == "" || slices.Contains(seen, fuel) {
			return false
		}
		seen = append(seen, fuel)
	}
	return true
}

// applyFull is Apply without its fast path; without shortcuts it also
// looks at who is active where before and after every membership, as the
// reference the tests hold the shortcuts to.
func (s *Site) applyFull(p Policy, m Membership, shortcuts bool) SiteOutput {
	// Who is active where (C4) reads only the Active flags, which a
	// membership stage 2 sees unchanged keeps: a monthly bill at a premise
	// of several service points needs no look at it.
	prev, had := s.Points[m.ServicePointID][m.CustomerID]
	sameActive := shortcuts && had && sameForStage2(prev, m)
	var before []string
	if !sameActive {
		before = s.activeElsewhere()
	}
	// Most memberships change nothing stage 2 sees (a monthly bill moves
	// only the usage facts), and then no fingerprint is needed: the ones
	// before are computed only when apply sent something, on the site as
	// it was (undo). Most premises have one service point and one
	// customer, so the lists live on the stack (validate runs this for
	// every row).
	var spBuf, wasBuf [4]string
	sps := s.pointIDs(spBuf[:0])
	u := s.undoFor(m)
	ins := s.apply(p, m)
	var out SiteOutput
	if len(ins) > 0 {
		out.Before, out.After = map[string]string{}, map[string]string{}
		u.toBefore(s)
		for i := range ins {
			out.Before[ins[i].CustomerID] = s.fingerprintBefore(sps, ins[i].CustomerID)
		}
		u.toAfter(s)
		sps = s.pointIDs(wasBuf[:0]) // apply may have added one
	}
	for i := range ins {
		c := ins[i].CustomerID
		ins[i] = s.snapshotAt(sps, c, ins[i].Cause)
		out.After[c] = s.fingerprintAt(sps, c)
	}
	out.Inputs = ins
	if sameActive {
		return out
	}
	if after := s.activeElsewhere(); (len(before) > 0) != (len(after) > 0) {
		out.Anomalies = append(out.Anomalies, s.twoCustomers(m, before, after))
	}
	return out
}

// fingerprintBefore is fingerprintAt of a customer with a membership here,
// and "" for one without: stage 2 had nothing from this premise yet.
func (s *Site) fingerprintBefore(sps []string, c string) string {
	for _, sp := range sps {
		if _, ok := s.Points[sp][c]; ok {
			return s.fingerprintAt(sps, c)
		}
	}
	return ""
}

// siteUndo holds what apply of one membership changes in a site (the
// membership's slot and the S1 reasons sent), so that the site can be seen
// as it was and then as it is again. A service point that apply added keeps
// an empty map while the site shows the past: the service points of then
// (pointIDs before apply) never include it.
type siteUndo struct {
	sp, c string
	prev  Membership
	had   bool       // c had a membership on sp
	now   Membership // the slot after apply, while the site shows the past
	sent  map[string][]Reason
}

func (s *Site) undoFor(m Membership) siteUndo {
	u := siteUndo{sp: m.ServicePointID, c: m.CustomerID}
	u.prev, u.had = s.Points[u.sp][u.c]
	// apply replaces or deletes the entries of Sent and never changes a
	// slice in place: a shallow copy keeps what they were.
	u.sent = maps.Clone(s.Sent)
	return u
}

func (u *siteUndo) toBefore(s *Site) {
	byCust := s.Points[u.sp]
	u.now = byCust[u.c]
	if u.had {
		byCust[u.c] = u.prev
	} else {
		delete(byCust, u.c)
	}
	s.Sent, u.sent = u.sent, s.Sent
}

func (u *siteUndo) toAfter(s *Site) {
	s.Points[u.sp][u.c] = u.now
	s.Sent, u.sent = u.sent, s.Sent
}

// activeElsewhere lists, sorted, the customers active at the premise when
// another customer is active on another of its service points (C4); nil
// when there are none. Two customers on one service point are a supersede
// in transit (A1 allows one account at a time), not two households.
func (s *Site) activeElsewhere() []string {
	if len(s.Points) < 2 {
		return nil // one service point: nobody is elsewhere
	}
	type act struct{ sp, cust string }
	var buf [8]act // on the stack: validate runs this twice per row
	acts := buf[:0]
	for sp, byCust := range s.Points {
		for c, m := range byCust {
			if m.Active {
				acts = append(acts, act{sp, c})
			}
		}
	}
	var out []string
	for _, a := range acts {
		for _, b := range acts {
			if a.sp != b.sp && a.cust != b.cust && !slices.Contains(out, a.cust) {
				out = append(out, a.cust)
			}
		}
	}
	slices.Sort(out)
	return out
}

// twoCustomers is the C4 anomaly: raised when two customers became active at
// the premise at once, cleared when that ended. It is keyed by the service
// point whose membership changed it.
func (s *Site) twoCustomers(m Membership, before, after []string) Anomaly {
	a := Anomaly{ServicePointID: m.ServicePointID, Code: AnomalyTwoCustomersActive, Rule: "C4",
		EffectiveDate: m.ActiveDate, Source: m.Source,
		AccountID: m.AccountID, CustomerID: m.CustomerID, PremiseID: s.ID, SecondaryID: m.SecondaryID}
	if len(after) > 0 {
		a.Message = fmt.Sprintf("customers %s have active accounts at premise %s at the same time, on different service points (C4)",
			strings.Join(after, ", "), s.ID)
		return a
	}
	a.Cleared = true
	for _, r := range m.Reasons { // the end of the account that ended it
		if r.Code == ReasonInactive || r.Code == ReasonSuperseded {
			a.EffectiveDate = r.EffectiveDate
		}
	}
	a.Message = fmt.Sprintf("customers %s no longer have active accounts at premise %s at the same time (C4)",
		strings.Join(before, ", "), s.ID)
	return a
}

func (s *Site) apply(p Policy, m Membership) []CustomerInput {
	switch {
	case s.ID == "":
		s.ID = m.PremiseID
	case m.PremiseID != s.ID:
		panic(fmt.Sprintf("rules: membership of premise %q applied to %q: the runtime must key site inputs by premise_id", m.PremiseID, s.ID))
	}
	if s.Points == nil {
		s.Points = map[string]map[string]Membership{}
	}
	byCust := s.Points[m.ServicePointID]
	if byCust == nil {
		byCust = map[string]Membership{}
		s.Points[m.ServicePointID] = byCust
	}
	prev, had := byCust[m.CustomerID]
	m.Reasons = slices.Clone(m.Reasons)
	byCust[m.CustomerID] = m

	var out []CustomerInput
	// sameForStage2 reads only what forStage2 keeps, and the copy sent is
	// made only when sent: validate runs this for every row.
	if !had || !sameForStage2(prev, m) {
		fwd := forStage2(m)
		out = append(out, CustomerInput{CustomerID: m.CustomerID, PremiseID: s.ID, Membership: &fwd, Cause: m.Source})
	}
	// S1 needs two service points; a premise with one (most of them) and
	// nothing sent before has nothing to judge.
	var repl []Reason
	if len(s.Points) > 1 {
		repl = s.replacements(p)
	}
	if len(repl) == 0 && len(s.Sent) == 0 {
		return out
	}
	if s.Sent == nil {
		s.Sent = map[string][]Reason{}
	}
	for _, cust := range s.customers() {
		var rs []Reason
		if s.activeFor(cust) {
			rs = pin(s.Sent[cust], repl)
		}
		if sameReasons(s.Sent[cust], rs) {
			continue
		}
		if len(rs) == 0 {
			delete(s.Sent, cust)
		} else {
			s.Sent[cust] = rs
		}
		k := slices.IndexFunc(out, func(in CustomerInput) bool { return in.CustomerID == cust })
		if k < 0 {
			out = append(out, CustomerInput{CustomerID: cust, PremiseID: s.ID, Cause: m.Source})
			k = len(out) - 1
		}
		cp := slices.Clone(rs)
		out[k].Replacements = &cp
	}
	slices.SortFunc(out, func(a, b CustomerInput) int { return cmp.Compare(a.CustomerID, b.CustomerID) })
	return out
}

// snapshotAt is the stage 2 input that says all the premise tells stage 2 of
// customer c: each of c's memberships here, and the S1 reasons for c.
// The site's service points, sorted, are given (pointIDs).
func (s *Site) snapshotAt(sps []string, c string, cause Source) CustomerInput {
	in := CustomerInput{CustomerID: c, PremiseID: s.ID, Cause: cause, Memberships: []Membership{}}
	for _, sp := range sps {
		if m, ok := s.Points[sp][c]; ok {
			in.Memberships = append(in.Memberships, forStage2(m))
		}
	}
	rs := slices.Clone(s.Sent[c])
	if rs == nil {
		rs = []Reason{}
	}
	in.Replacements = &rs
	return in
}

// fingerprintAt identifies what a snapshot of customer c says, sources left
// out (a change of source alone is no change); never "".
// The site's service points, sorted, are given (pointIDs).
func (s *Site) fingerprintAt(sps []string, c string) string {
	var buf [256]byte
	b := buf[:0]
	for _, sp := range sps {
		if m, ok := s.Points[sp][c]; ok {
			f := forStage2(m)
			b = hashNum(b, int64(f.hash()))
		}
	}
	for i := range s.Sent[c] {
		b = hashReason(b, &s.Sent[c][i])
	}
	return "=" + strconv.FormatUint(xxhash.Sum64(b), 16)
}

// forStage2 is the membership without the usage facts only the site uses.
func forStage2(m Membership) Membership {
	m.FirstPeriodStart, m.LastDateTo, m.ChainStart, m.ChainedMonths = 0, 0, 0, 0
	return m
}

func sameForStage2(a, b Membership) bool {
	return a.CustomerID == b.CustomerID && a.PremiseID == b.PremiseID && a.SecondaryID == b.SecondaryID &&
		a.ServicePointID == b.ServicePointID && a.ServiceType == b.ServiceType && a.AccountID == b.AccountID &&
		a.ActiveDate == b.ActiveDate && a.Since == b.Since && a.Active == b.Active && a.Deleted == b.Deleted && sameReasons(a.Reasons, b.Reasons)
}

// customers lists every customer with a membership here, sorted.
// pointIDs appends the site's service points, sorted, to buf[:0].
func (s *Site) pointIDs(buf []string) []string {
	buf = buf[:0]
	for sp := range s.Points {
		buf = append(buf, sp)
	}
	if len(buf) > 1 {
		slices.Sort(buf)
	}
	return buf
}

func (s *Site) customers() []string {
	set := map[string]bool{}
	for _, byCust := range s.Points {
		for c := range byCust {
			set[c] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func (s *Site) activeFor(cust string) bool {
	for _, byCust := range s.Points {
		if m, ok := byCust[cust]; ok && m.Active {
			return true
		}
	}
	return false
}

// point is what S1 needs of one service point, over every customer's account
// on it: its usage as the accounts that are not deleted saw it.
type point struct {
	id, fuel      string
	active        bool
	first, last   dates.Date
	chainStart    dates.Date
	chainedMonths int
	source        Source
}

// points lists what S1 needs of every service point of the premise. They
// come in no particular order (replacements does not depend on
// it); a point's customers are taken in order, since the last one sets the
// fuel and the first of equal active dates leads. Sorting only when there
// are several keeps the common premise free of allocations.
func (s *Site) points() []point {
	out := make([]point, 0, len(s.Points))
	var one [1]string
	for sp, byCust := range s.Points {
		pt := point{id: sp}
		var lead dates.Date // active_date of the active account the chain is taken from
		custs := one[:0]
		if len(byCust) == 1 {
			for c := range byCust {
				custs = append(custs, c)
			}
		} else {
			custs = slices.Sorted(maps.Keys(byCust))
		}
		for _, c := range custs {
			m := byCust[c]
			if m.Deleted {
				continue
			}
			pt.fuel = m.ServiceType
			if m.FirstPeriodStart != 0 && (pt.first == 0 || m.FirstPeriodStart < pt.first) {
				pt.first = m.FirstPeriodStart
			}
			pt.last = max(pt.last, m.LastDateTo)
			if m.Active && (!pt.active || m.ActiveDate > lead) {
				pt.active, lead = true, m.ActiveDate
				pt.chainStart, pt.chainedMonths, pt.source = m.ChainStart, m.ChainedMonths, m.Source
			}
		}
		out = append(out, pt)
	}
	return out
}

// replacements finds S1 at this premise: a new active service point N of a
// fuel while an older one O of the same fuel has no period ending after N's
// first period start, or (a meter exchanged mid-cycle: the old meter's last
// bill still runs to its cycle end) none ending more than
// ReplacementOverlapDays after it nor as late as N's newest. It holds
// until N has ReplacementHistoryMonths of chained usage.
func (s *Site) replacements(p Policy) []Reason {
	pts := s.points()
	var out []Reason
	for _, n := range pts {
		if !n.active || n.first == 0 || n.chainedMonths >= p.ReplacementHistoryMonths {
			continue
		}
		for _, o := range pts {
			if o.id == n.id || o.fuel != n.fuel || o.last == 0 || o.first >= n.first {
				continue
			}
			// The old one stopped before the new one started, or (mid-cycle)
			// its last bill ran on at most ReplacementOverlapDays and ended
			// before the new one's newest: two meters billing side by side
			// are no replacement.
			if o.last > n.first && (o.last > n.first.AddDays(p.ReplacementOverlapDays) || o.last >= n.last) {
				continue
			}
			out = append(out, Reason{Code: ReasonServicePointChanged, Rule: "S1", ServicePointID: n.id,
				EffectiveDate: n.first, Until: n.chainStart.AddMonths(p.ReplacementHistoryMonths) - 1,
				Source: n.source})
			break
		}
	}
	sortReasons(out)
	return out
}
