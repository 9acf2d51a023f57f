package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/records"
)

// busyState builds a service point with every kind of state: periods with and
// without charges, several tenures (superseded, deleted), open gap, overlap,
// active-date change and refused reactivation, and sent memberships.
func busyState(t testing.TB) (*harness, string) {
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
	t.Parallel()
	h, id := busyState(t)
	sp := h.sp(id)
	codes := map[string]bool{}
	for _, o := range sp.Open {
		codes[o.Code] = true
	}
	if len(codes) != 4 || len(sp.Tenures) != 3 || len(sp.Sent) != 3 {
		t.Fatalf("state not busy enough: %d open codes, %d tenures, %d sent", len(codes), len(sp.Tenures), len(sp.Sent))
	}
	back := decodesTo(t, "service point", must(t)(sp.MarshalBinary()), sp)
	for _, cid := range sortedKeys(h.custs) {
		c := h.customer(cid)
		decodesTo(t, "customer "+cid, must(t)(c.MarshalBinary()), c)
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
	t.Parallel()
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
	t.Parallel()
	cfg := gen.Config{ServicePoints: 300, Months: 14, Seed: 5, Now: genNow, Compression: "none", Anomalies: ruleKinds()}
	var text bytes.Buffer
	if _, _, err := gen.WriteFull(&text, cfg); err != nil {
		t.Fatal(err)
	}
	name := gen.FileName(cfg.WithDefaults(), records.LayoutFull)
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
	t.Parallel()
	cfg := gen.Config{ServicePoints: 200, Months: 14, Seed: 3, Now: genNow, Compression: "none", Split: false, Anomalies: ruleKinds()}
	var text bytes.Buffer
	if _, _, err := gen.WriteFull(&text, cfg); err != nil {
		t.Fatal(err)
	}
	br, err := billing.NewReader(gen.FileName(cfg.WithDefaults(), records.LayoutFull), &text, billing.Options{})
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

// fill sets every field reachable from v to a value that is not its zero,
// different from field to field: slices and maps get two entries, pointers
// a value. A field added to a state type is filled too, so a codec that
// forgets it fails TestStateCodecCovers.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) << 40) // a large one: the encoding must keep 64 bits
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.1234567) // not whole thousandths: the exact path
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue // transient, never encoded (ServicePoint.rowAtMs)
			}
			fill(v.Field(i), n)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), n)
		fill(s.Index(1), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n)
		v.Set(p)
	default:
		panic("fill: no value for kind " + v.Kind().String())
	}
}

// TestStateCodecCovers: every field of the three billing states survives the
// binary encoding, whatever its value. The invariants are not checked here
// (filled states break them): the codec is tested below UnmarshalBinary.
func TestStateCodecCovers(t *testing.T) {
	t.Parallel()
	var n int
	roundTrip(t, "service point", &n, (*enc).servicePoint, (*dec).servicePoint)
	roundTrip(t, "premise", &n, (*enc).site, (*dec).site)
	e, cBack := roundTrip(t, "customer", &n, (*enc).customer, (*dec).customer)

	// Equal states give equal bytes, whatever the order of their maps.
	e2 := enc{}
	e2.customer(cBack)
	if !bytes.Equal(e.b, e2.b) {
		t.Error("a decoded customer encodes to other bytes")
	}
}

// roundTrip fills every field of a T, encodes and decodes it, and fails
// unless the result is equal: a field the codec forgets fails it.
func roundTrip[T any](t *testing.T, what string, n *int, encode func(*enc, *T), decode func(*dec, *T)) (enc, *T) {
	t.Helper()
	var v, back T
	fill(reflect.ValueOf(&v).Elem(), n)
	e := enc{}
	encode(&e, &v)
	d := dec{b: e.b}
	decode(&d, &back)
	if err := d.end(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, back) {
		t.Errorf("%s differs after a round trip:\n%+v\n%+v", what, v, back)
	}
	return e, &back
}

// TestStateReadsVersion2: a service point written by binary version 2 (no
// Tenure.AsOfFile; testdata/servicepoint-v2.bin is busyState's, written by
// that build) decodes to the same state with AsOfFile empty.
func TestStateReadsVersion2(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/servicepoint-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != spV2 {
		t.Fatalf("version %d", b[0])
	}
	h, id := busyState(t)
	want := h.sp(id)
	for i := range want.Tenures {
		want.Tenures[i].AsOfFile = ""
	}
	// That build hashed the memberships sent with FNV-1a: the file keeps
	// its values (this build's first row resends each pair once).
	want.Sent = slices.Clone(want.Sent)
	for i, h := range []uint64{13005532542486749785, 10037697787067156774, 3019472790599809268} {
		want.Sent[i].Hash = h
	}
	decodesTo(t, "service point of version 2", b, want)
}

// TestStateReadsCustomerAndPremiseBeforeSince: a customer of binary version
// 3 and a premise of version 2 (before Membership.Since;
// testdata/customer-v3.bin and premise-v2.bin are busyState's C2 and P1,
// written by that build) decode to the state this build holds with Since
// left 0, which reads as the membership's ActiveDate.
func TestStateReadsCustomerAndPremiseBeforeSince(t *testing.T) {
	noSince := func(ms map[string]Membership) {
		for k, m := range ms {
			m.Since = 0
			ms[k] = m
		}
	}
	h, _ := busyState(t)
	b, err := os.ReadFile("testdata/premise-v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != siteNoSince {
		t.Fatalf("premise version %d", b[0])
	}
	site := h.site("P1")
	for _, ms := range site.Points {
		noSince(ms)
	}
	decodesTo(t, "premise of version 2", b, site)

	if b, err = os.ReadFile("testdata/customer-v3.bin"); err != nil {
		t.Fatal(err)
	}
	if b[0] != customerNoSince {
		t.Fatalf("customer version %d", b[0])
	}
	var c Customer
	if err := c.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	// The reasons it last sent may date otherwise than this build's (S2,
	// I5); the memberships are the same.
	want := h.customer("C2")
	for id, pr := range want.Premises {
		noSince(pr.Points)
		if got := c.Premises[id]; got == nil || !reflect.DeepEqual(got.Points, pr.Points) {
			t.Errorf("premise %s: memberships %+v, want %+v", id, got, pr.Points)
		}
	}
}

// TestStateReadsJSON: a state written by the JSON versions (the changelog of
// the previous build) decodes to the same state.
func TestStateReadsJSON(t *testing.T) {
	t.Parallel()
	h, id := busyState(t)
	sp := h.sp(id)
	decodesTo(t, "service point from JSON", must(t)(json.Marshal(spEnvelope{spJSONVersion, sp})), sp)
	for _, pid := range sortedKeys(h.sites) {
		s := h.site(pid)
		decodesTo(t, "premise "+pid+" from JSON", must(t)(json.Marshal(siteEnvelope{siteJSONVersion, s})), s)
	}
	for _, cid := range sortedKeys(h.custs) {
		c := h.customer(cid)
		decodesTo(t, "customer "+cid+" from JSON", must(t)(json.Marshal(customerEnvelope{customerJSONVersion, c})), c)
	}
}

// must fails the test on an encoding error and returns the bytes.
func must(t *testing.T) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// decodesTo decodes b into a new T and fails unless it equals want.
func decodesTo[T any, PT interface {
	*T
	UnmarshalBinary([]byte) error
}](t *testing.T, what string, b []byte, want *T) *T {
	t.Helper()
	back := PT(new(T))
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(want, (*T)(back)) {
		t.Errorf("%s differs after decoding:\n%+v\n%+v", what, *want, *back)
	}
	return back
}

// TestBinaryStateRefused: a binary state that is newer, cut short, too long
// or breaks an invariant is refused with an error saying so.
func TestBinaryStateRefused(t *testing.T) {
	t.Parallel()
	h, id := busyState(t)
	good, err := h.sp(id).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	broken := *h.sp(id)
	broken.Periods = slices.Clone(broken.Periods)
	slices.Reverse(broken.Periods)
	bad, _ := broken.MarshalBinary()
	cases := map[string]struct {
		state []byte
		want  string
	}{
		"newer version":  {append([]byte{stateVersion + 1}, good[1:]...), fmt.Sprintf("version %d", stateVersion+1)},
		"empty":          {nil, "empty"},
		"cut short":      {good[:len(good)/2], "malformed"},
		"trailing bytes": {append(slices.Clone(good), 0), "trailing bytes"},
		"out of order":   {bad, "out of order"},
	}
	for name, tc := range cases {
		var sp ServicePoint
		err := sp.UnmarshalBinary(tc.state)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	for _, cid := range sortedKeys(h.custs) {
		b, _ := h.customer(cid).MarshalBinary()
		var c Customer
		if err := c.UnmarshalBinary(b[:len(b)-1]); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("customer %s cut short: %v", cid, err)
		}
	}
	for _, pid := range sortedKeys(h.sites) {
		b, _ := h.site(pid).MarshalBinary()
		var s Site
		if err := s.UnmarshalBinary(b[:len(b)-1]); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("premise %s cut short: %v", pid, err)
		}
	}
}

// FuzzStateDecode: no input makes the decoders panic; what they accept
// encodes back to the same state.
func FuzzStateDecode(f *testing.F) {
	h, id := busyState(f)
	b, _ := h.sp(id).MarshalBinary()
	f.Add(b)
	for _, cid := range sortedKeys(h.custs) {
		b, _ := h.customer(cid).MarshalBinary()
		f.Add(b)
	}
	for _, pid := range sortedKeys(h.sites) {
		f.Add(h.sites[pid])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var sp ServicePoint
		if sp.UnmarshalBinary(b) == nil && !legacyJSON(b) {
			again, _ := sp.MarshalBinary()
			var back ServicePoint
			err := back.UnmarshalBinary(again)
			twice, _ := back.MarshalBinary()
			if err != nil || !bytes.Equal(again, twice) { // bytes, not values: NaN is not equal to itself
				t.Errorf("service point accepted, then not the same after a round trip: %v", err)
			}
		}
		var s Site
		_ = s.UnmarshalBinary(b)
		var c Customer
		_ = c.UnmarshalBinary(b)
	})
}
