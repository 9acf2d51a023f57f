package rules

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/gen"
	"github.com/usagestream/usagestream/producers/billing"
)

// busyState builds a service point with every kind of state: periods with and
// without charges, several tenures (superseded, deleted), open gap, overlap,
// active-date change and refused reactivation, and sent memberships.
func busyState(t *testing.T) (*harness, string) {
	h := newHarness(t, DefaultPolicy())
	a2 := func() *rb { return full("SP1").acct("A2", "20240501").who("C2", "P1").sec("W2") }
	h.feed(full("SP1").mon("2024-01", 1).charge(2), full("SP1").mon("2024-03", 1)) // gap
	h.feed(full("SP1").per("20240410", 45, 1))                                     // overlap
	h.feed(a2().mon("2024-05", 1))                                                 // move-in
	h.feed(cust("SP1").acct("A3", "20240801").who("C3", "P1"), cust("SP1").acct("A3", "20240801").who("C3", "P1").del())
	h.feed(a2().inactive("20240630").mon("2024-06", 1))
	h.feed(a2().acct("A2", "20240701").mon("2024-07", 1)) // refused, date changed
	return h, "SP1"
}

func TestStateRoundTrip(t *testing.T) {
	h, id := busyState(t)
	sp := h.sp(id)
	codes := map[string]bool{}
	for _, o := range sp.Open {
		codes[o.Code] = true
	}
	if len(codes) != 4 || len(sp.Tenures) != 3 || len(sp.Sent) != 3 {
		t.Fatalf("state not busy enough: %d open codes, %d tenures, %d sent", len(codes), len(sp.Tenures), len(sp.Sent))
	}
	b, err := sp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back ServicePoint
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*sp, back) {
		t.Errorf("service point differs after a round trip:\n%+v\n%+v", *sp, back)
	}
	for _, cid := range sortedKeys(h.custs) {
		c := h.customer(cid)
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Customer
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*c, back) {
			t.Errorf("customer %s differs after a round trip", cid)
		}
	}
	// A decoded state keeps working like the original.
	row := full("SP1").acct("A2", "20240501").who("C2", "P1").mon("2024-08", 1).r
	o1 := sp.Apply(h.p, &row, Source{Line: 99})
	o2 := back.Apply(h.p, &row, Source{Line: 99})
	if !reflect.DeepEqual(o1, o2) {
		t.Errorf("original and decoded state disagree:\n%+v\n%+v", o1, o2)
	}
}

func TestStateRefused(t *testing.T) {
	var sp ServicePoint
	for name, tc := range map[string]struct{ state, want string }{
		"not JSON":      {`{"v":1,`, "decoding"},
		"newer version": {`{"v":2,"id":"SP1"}`, "version 2"},
		"no version":    {`{"id":"SP1"}`, "version 0"},
		"periods out of order": {`{"v":1,"id":"SP1","periods":[{"start":20,"date_to":30},{"start":10,"date_to":19}]}`,
			"out of order"},
		"tenure without first date": {`{"v":1,"id":"SP1","next_seq":1,"tenures":[{"seq":1,"account_id":"A1","active_date":5}]}`,
			"first active_date"},
		"two live tenures on one day": {`{"v":1,"id":"SP1","next_seq":2,"first_active":{"A1":5,"A2":5},"tenures":[{"seq":1,"account_id":"A1","active_date":5},{"seq":2,"account_id":"A2","active_date":5}]}`,
			"share active date"},
		"open row rejection": {`{"v":1,"id":"SP1","open":[{"code":"DELETION_REFUSED"}]}`, "not a condition"},
	} {
		err := sp.UnmarshalBinary([]byte(tc.state))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	var c Customer
	if err := c.UnmarshalBinary([]byte(`{"v":2,"id":"C1","active_premises":1}`)); err == nil || !strings.Contains(err.Error(), "active premises") {
		t.Errorf("customer counter: %v", err)
	}
	if err := c.UnmarshalBinary([]byte(`{"v":2,"id":"C1","premises":{"P1":{"points":{"SP1":{"customer_id":"C2","premise_id":"P1","service_point_id":"SP1"}}}}}`)); err == nil {
		t.Error("customer with another customer's membership: no error")
	}
}

// TestDeterminism: the same inputs twice give identical outputs and
// identical state bytes.
func TestDeterminism(t *testing.T) {
	cfg := gen.Config{ServicePoints: 300, Months: 14, Seed: 5, Now: genNow, Compression: "none", Anomalies: ruleKinds()}
	var text bytes.Buffer
	if _, _, err := gen.WriteFull(&text, cfg); err != nil {
		t.Fatal(err)
	}
	name := gen.FileName(cfg.WithDefaults(), billing.LayoutFull)
	once := func() ([]byte, []byte) {
		r := newRun(t, DefaultPolicy())
		r.file(name, bytes.NewReader(text.Bytes()))
		out, err := json.Marshal(struct {
			S1 Stage1Output
			S2 []EligibilityChanged
		}{r.out, r.elig})
		if err != nil {
			t.Fatal(err)
		}
		var states bytes.Buffer
		for _, id := range sortedKeys(r.sps) {
			b, _ := r.sps[id].MarshalBinary()
			states.Write(b)
		}
		for _, id := range sortedKeys(r.custs) {
			b, _ := r.custs[id].MarshalBinary()
			states.Write(b)
		}
		return out, states.Bytes()
	}
	o1, s1 := once()
	o2, s2 := once()
	if !bytes.Equal(o1, o2) {
		t.Error("outputs differ between two runs")
	}
	if !bytes.Equal(s1, s2) {
		t.Error("states differ between two runs")
	}
	if len(o1) < 1000 || len(s1) < 1000 {
		t.Errorf("suspiciously little output: %d, %d bytes", len(o1), len(s1))
	}
}

// The invariants hold after every row of a generated file with every anomaly.
func TestInvariantsAfterEveryRow(t *testing.T) {
	cfg := gen.Config{ServicePoints: 200, Months: 14, Seed: 3, Now: genNow, Compression: "none", Split: false, Anomalies: ruleKinds()}
	var text bytes.Buffer
	if _, _, err := gen.WriteFull(&text, cfg); err != nil {
		t.Fatal(err)
	}
	br, err := billing.NewReader(gen.FileName(cfg.WithDefaults(), billing.LayoutFull), &text, billing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, DefaultPolicy()) // checks invariants and round-trips state after every Apply
	for {
		rec, err := br.Next()
		if err != nil {
			break
		}
		if rec.Row != nil {
			h.line++
			h.apply(rec.Row, Source{Line: rec.Row.Line})
		}
	}
	if h.line < 2000 {
		t.Errorf("only %d rows", h.line)
	}
}
