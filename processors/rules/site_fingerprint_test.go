package rules

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/records"
)

// TestSiteFingerprintsFollowEachOther: the premise stage's coalescing keys
// say what stage 2 had from the premise before and after each membership.
// Site.Apply computes the ones before only when it sends something, on the
// site seen as it was (siteUndo); over every membership a generated file
// with every anomaly causes, each customer's Before is the After of the
// premise's last input for that customer ("" before the first), and the
// site ends as a twin that applied the same memberships without
// fingerprints, byte for byte.
func TestSiteFingerprintsFollowEachOther(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	sites, twins := map[string]*Site{}, map[string]*Site{}
	last := map[string]map[string]string{} // premise -> customer -> After
	var sent, multi int
	for _, m := range generatedMemberships(t, 5) {
		s, tw := sites[m.PremiseID], twins[m.PremiseID]
		if s == nil {
			s, tw = &Site{}, &Site{}
			sites[m.PremiseID], twins[m.PremiseID], last[m.PremiseID] = s, tw, map[string]string{}
		}
		out := s.Apply(p, m)
		tw.apply(p, m)
		for _, in := range out.Inputs {
			c := in.CustomerID
			if got, want := out.Before[c], last[m.PremiseID][c]; got != want {
				t.Fatalf("premise %s, customer %s, membership of %s: Before %q, want the last After %q", m.PremiseID, c, m.ServicePointID, got, want)
			}
			if out.After[c] == "" {
				t.Fatalf("premise %s, customer %s: no After", m.PremiseID, c)
			}
			last[m.PremiseID][c] = out.After[c]
			sent++
		}
		if len(s.Points) > 1 {
			multi++
		}
	}
	if sent == 0 || multi == 0 {
		t.Fatalf("%d inputs sent, %d memberships at premises of several service points: the file tests nothing", sent, multi)
	}
	for id, s := range sites {
		if !sameSite(t, s, twins[id]) {
			t.Fatalf("premise %s: the site differs from its twin's after the fingerprints", id)
		}
	}
}

// TestSiteFastPathMatchesFull: Apply's shortcuts (the fast path for a
// membership stage 2 sees unchanged at a premise of one service point; no
// look at who is active where for one stage 2 sees unchanged) return what
// the full path without them returns and leave the site as it leaves it,
// byte for byte, over every membership a generated file with every anomaly
// causes; and the fast path is taken.
func TestSiteFastPathMatchesFull(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	// And by hand, a replaced meter: SP1 stopped, SP2 took over at the
	// same premise, and SP2's monthly bills alone end S1 once it has
	// ReplacementHistoryMonths of history (a fast path taken at a premise
	// of two service points would miss that).
	ms := generatedMemberships(t, 7)
	ms = append(ms, Membership{CustomerID: "C1", PremiseID: "PX", ServicePointID: "SP1", ServiceType: "E", AccountID: "A1",
		FirstPeriodStart: D("20230101"), LastDateTo: D("20231231"), ChainStart: D("20230101"), ChainedMonths: 12})
	for n := 1; n <= p.ReplacementHistoryMonths+1; n++ {
		ms = append(ms, Membership{CustomerID: "C1", PremiseID: "PX", ServicePointID: "SP2", ServiceType: "E", AccountID: "A2", Active: true,
			FirstPeriodStart: D("20240101"), LastDateTo: D("20240101").AddMonths(n) - 1, ChainStart: D("20240101"), ChainedMonths: n})
	}
	// Two customers active at once on two service points of a premise
	// (C4), their monthly bills, and the first one leaving.
	c4 := func(c, sp string, active bool, last string) Membership {
		return Membership{CustomerID: c, PremiseID: "PY", ServicePointID: sp, ServiceType: "E", AccountID: "A" + c, Active: active,
			FirstPeriodStart: D("20240101"), LastDateTo: D(last), ChainStart: D("20240101"), ChainedMonths: 1}
	}
	ms = append(ms, c4("C1", "SP1", true, "20240131"), c4("C2", "SP2", true, "20240131"), c4("C2", "SP2", true, "20240229"),
		c4("C1", "SP1", true, "20240229"), c4("C1", "SP1", false, "20240229"))
	// A dual-fuel premise (the fast path at two service points): an
	// electric and a gas meter of one customer and their monthly bills, a
	// second customer active on the gas meter at once (C4) and leaving, a
	// second electric meter (S1 can be judged again: no fast path), and its
	// first account deleted.
	fuel := func(c, sp, typ string, active bool, last string) Membership {
		return Membership{CustomerID: c, PremiseID: "PZ", ServicePointID: sp, ServiceType: typ, AccountID: "A" + c + sp, Active: active,
			FirstPeriodStart: D("20240101"), LastDateTo: D(last), ChainStart: D("20240101"), ChainedMonths: 1}
	}
	ms = append(ms, fuel("C1", "SP1", "E", true, "20240131"), fuel("C1", "SP2", "G", true, "20240131"),
		fuel("C1", "SP1", "E", true, "20240229"), fuel("C1", "SP2", "G", true, "20240229"),
		fuel("C2", "SP2", "G", true, "20240229"), fuel("C1", "SP1", "E", true, "20240331"), fuel("C2", "SP2", "G", true, "20240331"),
		fuel("C2", "SP2", "G", false, "20240331"), fuel("C1", "SP2", "G", true, "20240430"),
		fuel("C1", "SP3", "E", true, "20240531"), fuel("C1", "SP3", "E", true, "20240630"), fuel("C1", "SP1", "E", true, "20240430"))
	// A meter exchanged mid-cycle at a premise with a gas meter: the old
	// electric meter's last bill runs past the new one's start, and the new
	// one's second monthly bill, which moves only its usage facts, starts
	// S1 (a fast path taken for two meters of one fuel misses it).
	xch := func(sp string, active bool, first, last string) Membership {
		return Membership{CustomerID: "C1", PremiseID: "PW", ServicePointID: sp, ServiceType: "E", AccountID: "A" + sp, Active: active,
			FirstPeriodStart: D(first), LastDateTo: D(last), ChainStart: D(first), ChainedMonths: 1}
	}
	gas := Membership{CustomerID: "C1", PremiseID: "PW", ServicePointID: "SPG", ServiceType: "G", AccountID: "AG", Active: true,
		FirstPeriodStart: D("20230101"), LastDateTo: D("20240131"), ChainStart: D("20230101"), ChainedMonths: 13}
	ms = append(ms, gas, xch("SPO", false, "20230101", "20240115"), xch("SPN", true, "20240110", "20240112"),
		xch("SPN", true, "20240110", "20240209"), xch("SPN", true, "20240110", "20240309"))
	del := fuel("C1", "SP1", "E", false, "20240430")
	del.Deleted = true
	ms = append(ms, del, fuel("C1", "SP2", "G", true, "20240531"))

	sites, twins := map[string]*Site{}, map[string]*Site{}
	fast, anomalies := 0, 0
	for i, m := range ms {
		s, tw := sites[m.PremiseID], twins[m.PremiseID]
		if s == nil {
			s, tw = &Site{}, &Site{}
			sites[m.PremiseID], twins[m.PremiseID] = s, tw
		}
		if s.unchangedForStage2(m) {
			fast++
		}
		got, want := s.Apply(p, m), tw.applyFull(p, m, false)
		anomalies += len(want.Anomalies)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("membership %d (%s at %s): Apply returned %+v, the full path %+v", i, m.CustomerID, m.PremiseID, got, want)
		}
		if !sameSite(t, s, tw) {
			t.Fatalf("membership %d (%s at %s): the site differs from its twin's", i, m.CustomerID, m.PremiseID)
		}
	}
	t.Logf("fast path for %d of %d memberships, %d anomalies", fast, len(ms), anomalies)
	if anomalies == 0 {
		t.Fatal("no C4 anomaly: the shortcut past who is active where is not tested")
	}
	if fast == 0 || fast == len(ms) {
		t.Fatalf("the fast path was taken for %d of %d memberships: the file tests nothing", fast, len(ms))
	}
}

// generatedMemberships are the memberships stage 1 sends over a generated
// file of 400 service points and 14 months with every anomaly.
func generatedMemberships(t *testing.T, seed int64) []Membership {
	t.Helper()
	cfg := gen.Config{ServicePoints: 400, Months: 14, Seed: seed, Now: genNow, Compression: "none", Anomalies: ruleKinds()}
	var buf bytes.Buffer
	if _, _, err := gen.WriteFull(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, DefaultPolicy())
	r.file(gen.FileName(cfg.WithDefaults(), records.LayoutFull), &buf)
	return r.out.Memberships
}

// sameSite says whether two sites encode to the same bytes.
func sameSite(t *testing.T, a, b *Site) bool {
	t.Helper()
	x, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	y, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}
