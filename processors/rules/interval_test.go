package rules

import (
	"bytes"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/interval"
	"github.com/usagestream/usagestream/records"
)

// ir builds a validated read: end local date and HHmm, length, value, offset.
func ir(t testing.TB, date, hhmm string, minutes int, value float64, offset int, est bool) *records.IntervalRead {
	t.Helper()
	v, err := interval.NewValidator(interval.Check{})
	if err != nil {
		t.Fatal(err)
	}
	var h, m int
	fmt.Sscanf(hhmm, "%02d%02d", &h, &m)
	r := &records.IntervalRead{ServicePointID: "SP1", LocalDate: dates.MustParse(date), LocalTime: int16(h*60 + m),
		OffsetMinutes: int16(offset), OffsetGiven: true, Minutes: int16(minutes), Value: value, Units: "KWH", Estimate: records.EstimateActual}
	if est {
		r.Estimate = records.EstimateEstimated
	}
	if rs := v.Validate(r); rs != nil {
		t.Fatalf("bad test read %s %s: %+v", date, hhmm, rs)
	}
	return r
}

// dayReads returns the reads of one whole local day at a fixed offset, all
// with value v, except the ends listed in skip.
func dayReads(t testing.TB, date string, minutes int, v float64, offset int, skip ...string) []*records.IntervalRead {
	var out []*records.IntervalRead
	d := dates.MustParse(date)
	for end := minutes; end <= 1440; end += minutes {
		hhmm := fmt.Sprintf("%02d%02d", end%1440/60, end%60)
		if strings.Contains(strings.Join(skip, ","), hhmm) {
			continue
		}
		ed := d
		if end == 1440 {
			ed = d.AddDays(1)
		}
		out = append(out, ir(t, ed.String(), hhmm, minutes, v, offset, false))
	}
	return out
}

type ipRun struct {
	t    testing.TB
	ip   IntervalPoint
	p    Policy
	ipol IntervalPolicy
	at   int64
	out  []string // every event, rendered
	n    int64
}

func newIPRun(t testing.TB) *ipRun {
	return &ipRun{t: t, p: DefaultPolicy(), ipol: DefaultIntervalPolicy(), at: time.Date(2024, 6, 2, 0, 0, 0, 0, time.UTC).UnixMilli()}
}

func (r *ipRun) record(o IntervalOutput) {
	for _, c := range o.Corrections {
		r.out = append(r.out, fmt.Sprintf("CORRECTION %s %s %v->%v est %v->%v", c.Date, time.UnixMilli(c.EndMs).UTC().Format("15:04"), c.OldValue, c.NewValue, c.OldEstimate, c.NewEstimate))
	}
	for _, a := range o.Anomalies {
		s := fmt.Sprintf("%s %s %s", a.Code, a.Rule, a.EffectiveDate)
		if a.Until != 0 {
			s += ".." + a.Until.String()
		}
		if a.Cleared {
			s += " cleared"
		}
		r.out = append(r.out, s)
	}
	if h := o.History; h != nil {
		r.out = append(r.out, fmt.Sprintf("HISTORY %d months since %s", h.Months, h.Since))
	}
}

func (r *ipRun) reads(rs ...*records.IntervalRead) {
	for _, rd := range rs {
		r.n++
		r.record(r.ip.ApplyRead(r.p, r.ipol, rd, r.at, Source{Topic: "intervals.v1", Offset: r.n}))
		r.roundTrip()
	}
}

func (r *ipRun) bill(dateTo string, duration int32, value float64) {
	r.n++
	row := &records.BillingRow{Layout: records.LayoutFull, ServicePointID: "SP1", CustomerID: "C1", PremiseID: "P1", AccountID: "A1",
		ActiveDate: dates.MustParse("20230101"), ServiceType: "E", UsageValue: value, DateTo: dates.MustParse(dateTo), Duration: duration}
	r.record(r.ip.ApplyBilling(r.p, row, Source{Topic: "billing.v1", Offset: r.n, File: "f.tsv", Line: r.n}))
	r.roundTrip()
}

// roundTrip: the encoded state decodes to a state that encodes the same.
func (r *ipRun) roundTrip() {
	b, err := r.ip.MarshalBinary()
	if err != nil {
		r.t.Fatal(err)
	}
	var back IntervalPoint
	if err := back.UnmarshalBinary(b); err != nil {
		r.t.Fatal(err)
	}
	b2, _ := back.MarshalBinary()
	if !bytes.Equal(b, b2) {
		r.t.Fatal("the state does not survive encoding")
	}
	r.ip = back
}

func (r *ipRun) take() string {
	s := strings.Join(r.out, "\n")
	r.out = nil
	return s
}

func expectEvents(t *testing.T, got, want string) {
	t.Helper()
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
}

func TestI1OneLengthPerChannel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		second *records.IntervalRead
		want   string
	}{
		{"same length", nil, ""},
		{"another length", nil, "INTERVAL_LENGTH_CHANGED I1 20240601"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newIPRun(t)
			r.reads(ir(t, "20240601", "0015", 15, 1, -240, false))
			if i == 0 {
				r.reads(ir(t, "20240601", "0030", 15, 1, -240, false))
			} else {
				r.reads(ir(t, "20240601", "0100", 60, 1, -240, false), ir(t, "20240601", "0200", 60, 1, -240, false))
			}
			expectEvents(t, r.take(), c.want)
			if got := r.ip.Channels[0].Days[0].count(); got != 2-i {
				t.Fatalf("%d intervals counted", got)
			}
		})
	}
}

func TestI2SentAgainIsACorrection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		again *records.IntervalRead
		want  string
	}{
		{"same value: a resend, no event", ir(t, "20240601", "0015", 15, 1.5, -240, false), ""},
		{"new value", ir(t, "20240601", "0015", 15, 2.25, -240, false), "CORRECTION 20240601 04:15 1.5->2.25 est false->false"},
		{"estimate replaced by actual", nil, "CORRECTION 20240601 04:15 1.5->1.5 est true->false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newIPRun(t)
			first := ir(t, "20240601", "0015", 15, 1.5, -240, c.again == nil)
			r.reads(first)
			again := c.again
			if again == nil {
				again = ir(t, "20240601", "0015", 15, 1.5, -240, false)
			}
			r.reads(again)
			expectEvents(t, r.take(), c.want)
			if d := r.ip.Channels[0].Days[0]; d.Sum != again.Value || d.count() != 1 {
				t.Fatalf("day %+v", d)
			}
		})
	}
	t.Run("beyond the detail window", func(t *testing.T) {
		r := newIPRun(t)
		r.reads(ir(t, "20240101", "1200", 60, 1, -300, false), ir(t, "20240301", "1200", 60, 1, -300, false))
		r.take()
		r.reads(ir(t, "20240101", "1200", 60, 3, -300, false))
		expectEvents(t, r.take(), "INTERVAL_LATE_CORRECTION I2 20240101")
		// A day back-filled beyond the window keeps coverage, not values.
		r.reads(ir(t, "20240103", "1200", 60, 1, -300, false))
		if d := r.ip.Channels[0].find(dates.MustParse("20240103")); d == nil || d.Detailed || d.Values != nil || d.count() != 1 {
			t.Fatalf("back-filled day %+v", d)
		}
	})
}

func TestI3Gaps(t *testing.T) {
	t.Parallel()
	t.Run("missing intervals inside a day, reported when the day is closed, cleared when filled", func(t *testing.T) {
		r := newIPRun(t)
		r.reads(dayReads(t, "20240601", 60, 1, -240, "0300", "0400", "0000")...)
		expectEvents(t, r.take(), "") // the day may still be arriving
		r.reads(dayReads(t, "20240602", 60, 1, -240)...)
		expectEvents(t, r.take(), "INTERVAL_GAP I3 20240601..20240601")
		r.reads(ir(t, "20240601", "0300", 60, 1, -240, false), ir(t, "20240601", "0400", 60, 1, -240, false))
		expectEvents(t, r.take(), "") // one still missing, reported already
		r.reads(dayReads(t, "20240604", 60, 1, -240)...)
		expectEvents(t, r.take(), `INTERVAL_GAP I3 20240601..20240601
INTERVAL_GAP_DAYS I3 20240603..20240603`) // the count changed: reported again when the next day starts
		r.reads(ir(t, "20240602", "0000", 60, 1, -240, false))
		expectEvents(t, r.take(), "INTERVAL_GAP I3 20240601..20240601 cleared")
	})
	t.Run("whole days missing, then one of them filled", func(t *testing.T) {
		r := newIPRun(t)
		r.reads(dayReads(t, "20240601", 60, 1, -240)...)
		r.reads(dayReads(t, "20240605", 60, 1, -240)...)
		expectEvents(t, r.take(), "INTERVAL_GAP_DAYS I3 20240602..20240604")
		r.reads(dayReads(t, "20240603", 60, 1, -240)...)
		expectEvents(t, r.take(), `INTERVAL_GAP_DAYS I3 20240602..20240604 cleared
INTERVAL_GAP_DAYS I3 20240602..20240602
INTERVAL_GAP_DAYS I3 20240604..20240604`)
	})
	t.Run("daylight-saving days are complete with 23 and 25 hours", func(t *testing.T) {
		r := newIPRun(t)
		// 2024-03-10 New York: 23 hourly intervals.
		r.reads(ir(t, "20240310", "0100", 60, 1, -300, false))
		for h := 3; h <= 23; h++ {
			r.reads(ir(t, "20240310", fmt.Sprintf("%02d00", h), 60, 1, -240, false))
		}
		r.reads(ir(t, "20240311", "0000", 60, 1, -240, false))
		r.reads(dayReads(t, "20240311", 60, 1, -240)...)
		// 2024-11-03: 25, the hour ending 0100 twice.
		r.reads(ir(t, "20241103", "0100", 60, 1, -240, false), ir(t, "20241103", "0100", 60, 1, -300, false))
		for h := 2; h <= 23; h++ {
			r.reads(ir(t, "20241103", fmt.Sprintf("%02d00", h), 60, 1, -300, false))
		}
		r.reads(ir(t, "20241104", "0000", 60, 1, -300, false))
		r.reads(dayReads(t, "20241104", 60, 1, -300)...)
		got := r.take()
		if strings.Contains(got, "INTERVAL_GAP I3") || strings.Contains(got, "CORRECTION") {
			t.Fatalf("DST days reported: %s", got)
		}
		if d := r.ip.Channels[0].find(dates.MustParse("20241103")); d.count() != 25 || d.Sum != 25 {
			t.Fatalf("autumn day has %d intervals, sum %v", d.count(), d.Sum)
		}
		if d := r.ip.Channels[0].find(dates.MustParse("20240310")); d.count() != 23 || d.missing(60) != 0 {
			t.Fatalf("spring day has %d intervals", d.count())
		}
	})
}

func TestI4StaleFeed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		inactive bool
		fireIn   time.Duration
		want     string
	}{
		{"active, 72 hours without data", false, 72 * time.Hour, "STALE_FEED I4 20240602"},
		{"active, timer early (a read moved it)", false, 71 * time.Hour, ""},
		{"inactive service point", true, 100 * time.Hour, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newIPRun(t)
			if c.inactive {
				row := &records.BillingRow{Layout: records.LayoutCustomer, ServicePointID: "SP1", CustomerID: "C1", PremiseID: "P1", AccountID: "A1",
					ActiveDate: dates.MustParse("20230101"), InactiveDate: records.NullDate{Date: dates.MustParse("20240101"), Valid: true}}
				r.ip.ApplyBilling(r.p, row, Source{})
			}
			out := r.ip.ApplyRead(r.p, r.ipol, ir(t, "20240601", "0100", 60, 1, -240, false), r.at, Source{})
			if want := time.UnixMilli(r.at).Add(72 * time.Hour); !out.StaleTimer.Equal(want) {
				t.Fatalf("timer %v, want %v", out.StaleTimer, want)
			}
			r.record(r.ip.CheckStale(r.ipol, r.at+c.fireIn.Milliseconds(), Source{}))
			r.record(r.ip.CheckStale(r.ipol, r.at+c.fireIn.Milliseconds()+1, Source{})) // once only
			expectEvents(t, r.take(), c.want)
			r.roundTrip()
			r.at += 100 * time.Hour.Milliseconds()
			r.reads(ir(t, "20240605", "0100", 60, 1, -240, false))
			// The clear is dated like the raise, so that it names the
			// condition it ends (code, rule and effective date).
			if got := r.take(); c.want != "" && !strings.HasPrefix(got, "STALE_FEED I4 20240602 cleared") {
				t.Fatalf("data again: %s", got)
			}
		})
	}
}

func TestI5History(t *testing.T) {
	t.Parallel()
	r := newIPRun(t)
	r.bill("20230131", 31, 31) // makes the account known
	r.take()
	start := dates.MustParse("20230101")
	for d := start; d < start.AddDays(400); d++ {
		r.reads(ir(t, d.AddDays(1).String(), "0000", 1440, 1, -300, false))
	}
	got := r.take()
	if !strings.Contains(got, "HISTORY 12 months since 20230101") || !strings.Contains(got, "HISTORY 13 months since 20230101") {
		t.Fatalf("history events: %s", got)
	}
	if !HistoryEligible(r.p, r.ip.HistoryMonths) || HistoryEligible(r.p, 12) {
		t.Fatal("13 months are needed, and enough")
	}
	// A new customer at the service point learns its history.
	r.n++
	r.record(r.ip.ApplyBilling(r.p, &records.BillingRow{Layout: records.LayoutCustomer, ServicePointID: "SP1", CustomerID: "C2", PremiseID: "P1",
		AccountID: "A2", ActiveDate: dates.MustParse("20240201"), ServiceType: "E"}, Source{Offset: r.n}))
	expectEvents(t, r.take(), "HISTORY 13 months since 20230101")
	if h := r.ip.Account; h.CustomerID != "C2" {
		t.Fatalf("account %+v", h)
	}
	// A whole-day gap restarts the history.
	r.reads(ir(t, start.AddDays(420).String(), "0000", 1440, 1, -300, false))
	got = r.take()
	if !strings.Contains(got, "HISTORY 0 months since") {
		t.Fatalf("after a gap: %s", got)
	}
}

func TestI6SumCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		billed float64
		want   string
	}{
		{"matches", 96, ""},
		{"within 2%", 97.5, ""},
		{"within 1 unit of a small bill", 0, "BILLING_INTERVAL_MISMATCH I6 20240601..20240604"},
		{"mismatch", 120, "BILLING_INTERVAL_MISMATCH I6 20240601..20240604"},
	}
	for _, c := range cases {
		for _, billFirst := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/bill first %v", c.name, billFirst), func(t *testing.T) {
				r := newIPRun(t)
				if billFirst {
					r.bill("20240604", 4, c.billed)
				}
				for _, d := range []string{"20240601", "20240602", "20240603", "20240604"} {
					r.reads(dayReads(t, d, 60, 1, -240)...)
				}
				if !billFirst {
					r.bill("20240604", 4, c.billed)
				}
				expectEvents(t, r.take(), c.want)
			})
		}
	}
	t.Run("an incomplete period is not checked; a correction clears a mismatch", func(t *testing.T) {
		r := newIPRun(t)
		r.bill("20240602", 2, 50)
		r.reads(dayReads(t, "20240601", 60, 1, -240)...)
		r.reads(dayReads(t, "20240602", 60, 1, -240, "1200")...)
		expectEvents(t, r.take(), "")
		r.reads(ir(t, "20240602", "1200", 60, 1, -240, false))
		expectEvents(t, r.take(), "BILLING_INTERVAL_MISMATCH I6 20240601..20240602")
		r.reads(ir(t, "20240602", "1200", 60, 3, -240, false))
		expectEvents(t, r.take(), `CORRECTION 20240602 16:00 1->3 est false->false
BILLING_INTERVAL_MISMATCH I6 20240601..20240602 cleared`)
	})
	// Issue 14: the final state does not depend on whether the bill came
	// before the reads. A period whose first day left the retention is not
	// judged any more: a bill after the reads finds its first days gone,
	// and one before them has its mismatch cleared when they go.
	for _, billFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("a period leaving the retention is no longer judged/bill first %v", billFirst), func(t *testing.T) {
			t.Parallel()
			r := newIPRun(t)
			r.ipol.RetentionDays, r.ipol.DetailDays = 5, 2
			if billFirst {
				r.bill("20240604", 4, 120)
			}
			for d := dates.MustParse("20240601"); d <= dates.MustParse("20240606"); d++ {
				r.reads(dayReads(t, d.String(), 60, 1, -240)...)
			}
			if !billFirst {
				r.bill("20240604", 4, 120)
			}
			want := ""
			if billFirst {
				want = "BILLING_INTERVAL_MISMATCH I6 20240601..20240604\nBILLING_INTERVAL_MISMATCH I6 20240601..20240604 cleared"
			}
			expectEvents(t, r.take(), want)
			if len(r.ip.Periods) != 0 && billFirst {
				t.Errorf("the period beyond the retention is kept: %+v", r.ip.Periods)
			}
		})
	}
}

func TestI7VEEFindings(t *testing.T) {
	t.Parallel()
	zeroDay := func(date string) []*records.IntervalRead { return dayReads(t, date, 60, 0, -240) }
	cases := []struct {
		name  string
		gas   bool
		reads func() []*records.IntervalRead
		want  string
	}{
		{"negative value", false, func() []*records.IntervalRead {
			return []*records.IntervalRead{ir(t, "20240601", "0100", 60, -2, -240, false), ir(t, "20240601", "0200", 60, -2, -240, false)}
		}, "INTERVAL_NEGATIVE I7 20240601"},
		{"24 hours of zeros", false, func() []*records.IntervalRead { return zeroDay("20240601") }, "INTERVAL_ZERO_RUN I7 20240601"},
		{"zeros on gas are normal", true, func() []*records.IntervalRead { return zeroDay("20240601") }, ""},
		{"23 hours of zeros", false, func() []*records.IntervalRead { return zeroDay("20240601")[1:] }, ""},
		{"zeros then usage clears", false, func() []*records.IntervalRead {
			return append(zeroDay("20240601"), ir(t, "20240602", "0100", 60, 1, -240, false))
		}, "INTERVAL_ZERO_RUN I7 20240601\nINTERVAL_ZERO_RUN I7 20240602 cleared"},
		{"spike", false, func() []*records.IntervalRead {
			rs := dayReads(t, "20240601", 60, 1, -240)
			rs[5] = ir(t, "20240601", "0600", 60, 40, -240, false)
			return append(rs, ir(t, "20240602", "0100", 60, 1, -240, false))
		}, "INTERVAL_SPIKE I7 20240601"},
		{"48 hours of estimates", false, func() []*records.IntervalRead {
			var rs []*records.IntervalRead
			for _, d := range []string{"20240601", "20240602"} {
				for _, x := range dayReads(t, d, 60, 1, -240) {
					x.Estimate = records.EstimateEstimated
					rs = append(rs, x)
				}
			}
			return rs
		}, "INTERVAL_ESTIMATE_RUN I7 20240601"},
		// A run that starts right after an actual read is dated by its
		// first estimated read, not by a start never set (1970-01-01).
		{"estimates after an actual read", false, func() []*records.IntervalRead {
			rs := dayReads(t, "20240531", 60, 1, -240)
			for _, d := range []string{"20240601", "20240602", "20240603"} {
				for _, x := range dayReads(t, d, 60, 1, -240) {
					x.Estimate = records.EstimateEstimated
					rs = append(rs, x)
				}
			}
			return rs
		}, "INTERVAL_ESTIMATE_RUN I7 20240601"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newIPRun(t)
			if c.gas {
				r.ip.Account = IntervalAccount{Known: true, Active: true, ServiceType: "G"}
			}
			r.reads(c.reads()...)
			expectEvents(t, r.take(), c.want)
		})
	}
}

func TestIntervalStateRefusesGarbage(t *testing.T) {
	t.Parallel()
	r := newIPRun(t)
	r.reads(dayReads(t, "20240601", 15, 0.125, -240)...)
	b, _ := r.ip.MarshalBinary()
	for cut := 0; cut < len(b); cut += 7 {
		var ip IntervalPoint
		if err := ip.UnmarshalBinary(b[:cut]); err == nil {
			t.Fatalf("a state cut at %d of %d bytes decoded", cut, len(b))
		}
	}
}

// FuzzIntervalState: any bytes are a state or an error, never a panic, and
// a state that decodes encodes back to bytes that decode the same.
func FuzzIntervalState(f *testing.F) {
	r := newIPRun(f)
	r.bill("20240602", 2, 50)
	r.reads(dayReads(f, "20240601", 60, 1, -240, "0300")...)
	r.reads(dayReads(f, "20240604", 15, 0.25, -240)...)
	b, _ := r.ip.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ip IntervalPoint
		if ip.UnmarshalBinary(b) != nil {
			return
		}
		again, err := ip.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back IntervalPoint
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatalf("a decoded state does not decode after encoding: %v", err)
		}
	})
}

// TestI3AnomalyStampDoesNotDependOnArrivalOrder: reads and bills reach the
// interval stage on two topics in no fixed order. Whatever the interleaving,
// the anomalies left open carry the same account stamp: the account whose
// active date is the latest on or before the anomaly's day (A1 before
// 2024-06-10, A2 after). Before the fix an anomaly carried whatever account
// the stage knew when it was raised: none when the reads came first.
func TestI3AnomalyStampDoesNotDependOnArrivalOrder(t *testing.T) {
	t.Parallel()
	account := func(id, cust, active string) *records.BillingRow {
		return &records.BillingRow{Layout: records.LayoutCustomer, ServicePointID: "SP1", CustomerID: cust, PremiseID: "P1",
			AccountID: id, ActiveDate: dates.MustParse(active), ServiceType: "E"}
	}
	bills := []*records.BillingRow{account("A1", "C1", "20240101"), account("A2", "C2", "20240610")}
	reads := []*records.IntervalRead{
		ir(t, "20240601", "0100", 60, 1, -240, false), ir(t, "20240605", "0100", 60, 1, -240, false),
		ir(t, "20240612", "0100", 60, 1, -240, false), ir(t, "20240615", "0100", 60, 1, -240, false),
	}
	// Each order keeps the bills in their order, and the reads in theirs.
	orders := []string{"bbrrrr", "rrrrbb", "brrrrb", "rrbrrb", "rbrrbr"}
	var first map[string]string
	for _, o := range orders {
		ip, p, ipol := IntervalPoint{}, DefaultPolicy(), DefaultIntervalPolicy()
		at := time.Date(2024, 6, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
		final := map[string]string{}
		var bi, ri int
		for _, step := range o {
			var out IntervalOutput
			if step == 'b' {
				out = ip.ApplyBilling(p, bills[bi], Source{Topic: "billing.v1", Offset: int64(bi)})
				bi++
			} else {
				out = ip.ApplyRead(p, ipol, reads[ri], at, Source{Topic: "intervals.v1", Offset: int64(ri)})
				ri++
			}
			b, err := ip.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if err := ip.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			for _, a := range out.Anomalies {
				k := fmt.Sprintf("%s %s %s", a.Code, a.Rule, a.EffectiveDate)
				if a.Cleared {
					delete(final, k)
				} else {
					final[k] = a.AccountID + "/" + a.CustomerID
				}
			}
		}
		if len(final) == 0 {
			t.Fatalf("order %s: no anomaly open; the test needs some", o)
		}
		for k, v := range final {
			d, _ := dates.Parse(strings.Fields(k)[2])
			want := "A1/C1"
			if d >= dates.MustParse("20240610") {
				want = "A2/C2"
			}
			if v != want {
				t.Errorf("order %s: %s stamped %s, want %s", o, k, v, want)
			}
		}
		if first == nil {
			first = final
		} else if !maps.Equal(first, final) {
			t.Errorf("order %s left %v, order %s left %v", orders[0], first, o, final)
		}
	}
}
