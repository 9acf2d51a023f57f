package rules

import (
	"bytes"
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
	cfg := gen.Config{ServicePoints: 400, Months: 14, Seed: 5, Now: genNow, Compression: "none", Anomalies: ruleKinds()}
	var buf bytes.Buffer
	if _, _, err := gen.WriteFull(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, DefaultPolicy())
	r.file(gen.FileName(cfg.WithDefaults(), records.LayoutFull), &buf)

	p := DefaultPolicy()
	sites, twins := map[string]*Site{}, map[string]*Site{}
	last := map[string]map[string]string{} // premise -> customer -> After
	var sent, multi int
	for _, m := range r.out.Memberships {
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
		a, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		b, err := twins[id].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("premise %s: the site differs from its twin's after the fingerprints", id)
		}
	}
}
