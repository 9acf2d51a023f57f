package rules

import (
	"bytes"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(DefaultPolicyYAML()))
	f.Add([]byte("rate_allowlist: []\nnet_metering: true\n"))
	f.Add([]byte("gap_horizon_days: [1]\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err == nil {
			if verr := p.Validate(); verr != nil {
				t.Fatalf("accepted a policy that does not validate: %v", verr)
			}
		}
	})
}

// fuzzRow turns 6 bytes into a row of a small world: three accounts, two
// customers, two service points, periods in 2024-2025 of half, one or two
// months, every layout, terminations, deletions and negative values.
func fuzzRow(b []byte) *records.BillingRow {
	layouts := []records.Layout{records.LayoutFull, records.LayoutFull, records.LayoutCustomer, records.LayoutUsage}
	r := &records.BillingRow{Layout: layouts[b[0]%4], ServicePointID: []string{"SP1", "SP2"}[b[0]>>7]}
	base := dates.MustParse("20240101")
	if r.Layout != records.LayoutUsage {
		n := int(b[1] % 3)
		r.AccountID = []string{"A1", "A2", "A3"}[n]
		r.CustomerID = []string{"C1", "C2", "C1"}[n]
		r.PremiseID = "P1"
		r.ServiceType = []string{"E", "G"}[b[0]>>7]
		r.ActiveDate = base.AddMonths(int(b[2] % 6))
		r.RateCode = []string{"R1", "MED1", ""}[b[2]>>6%3]
		if b[3]%5 == 0 {
			r.InactiveDate = records.NullDate{Date: r.ActiveDate.AddMonths(int(b[3]>>5) + 1), Valid: true}
		}
		r.IsAccountDeletion = b[3]%11 == 0
		r.SecondaryID = []string{"", "W1"}[b[3]>>7]
	}
	if r.Layout != records.LayoutCustomer {
		start := base.AddMonths(int(b[4] % 14))
		var end dates.Date
		switch b[5] % 4 {
		case 0:
			end = start.AddDays(14)
		case 1, 2:
			end = start.AddMonths(1) - 1
		default:
			end = start.AddMonths(2) - 1
		}
		r.DateTo, r.Duration = end, int32(end-start+1)
		r.UsageValue = float64(int(b[5]>>2) - 8)
		if b[4]>>7 == 1 {
			r.UsageCharge = records.NullFloat{Value: 1, Valid: true}
		}
	}
	return r
}

func FuzzStage1And2(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 3, 1})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0, 1, 2, 1, 4, 1, 0, 0, 0, 5, 5, 1, 0, 0, 0, 11, 6, 1, 2, 2, 3, 1, 0, 0})
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, 6))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, net := range []bool{false, true} {
			p := DefaultPolicy()
			p.NetMetering = net
			h := newHarness(t, p) // checks invariants and round-trips every state after every input
			for i := 0; i+6 <= len(b) && i < 6*60; i += 6 {
				h.line++
				h.apply(fuzzRow(b[i:i+6]), h.src())
			}
			// Every membership the premise stage holds is stage 1's latest
			// word, and stage 2 holds what of it stage 2 uses.
			for _, id := range sortedKeys(h.sps) {
				sp := h.sp(id)
				for _, s := range sp.Sent {
					site := h.site(s.PremiseID)
					m, ok := site.Points[id][s.CustomerID]
					if !ok || m.hash() != s.Hash {
						t.Fatalf("the premise stage holds a stale membership of %s for %s/%s", id, s.CustomerID, s.PremiseID)
					}
					got, ok := h.customer(s.CustomerID).Premises[s.PremiseID].Points[id]
					if !ok || !sameForStage2(got, forStage2(m)) {
						t.Fatalf("stage 2 holds a stale membership of %s for %s/%s", id, s.CustomerID, s.PremiseID)
					}
				}
			}
		}
	})
}
