package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/runtime"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// fuzzPipeline is a pipeline on an in-memory registry, shared by a fuzz
// run's iterations (the stages keep no state of their own between inputs).
var fuzzPipeline = sync.OnceValues(func() (*Pipeline, error) {
	reg := srfake.New() // lives for the test binary
	return New(context.Background(), kafkaconf.Config{Registry: reg.URL()}, rules.DefaultPolicy())
})

// FuzzRepartitionValues: the values of the repartition topics, as the
// premise stage (repartition-premises: memberships) and stage 2
// (repartition-memberships: stage 2 inputs; repartition-interval-history:
// interval histories) read them, in their binary form or the JSON of the
// first releases. topic picks the topic; key is the record
// key; the state the value meets is empty, or the state the previous value
// (prev, on the same topic and key) left.
//
// Properties: no panic; an error is poison, non-empty, and names the topic
// or the key field that is wrong; a value that is accepted has the key its
// topic is keyed by, survives a round trip through the binary form
// unchanged, and leaves a state that round-trips through its changelog
// encoding; every output is keyed as its topic is, and decodes (the binary
// repartition form, or Avro through the registry).
func FuzzRepartitionValues(f *testing.F) {
	p, err := fuzzPipeline()
	if err != nil {
		f.Fatal(err)
	}
	d := dates.MustParse("20240101")
	mv := membership{Utility: "gec", Membership: rules.Membership{CustomerID: "C1", PremiseID: "P1",
		ServicePointID: "SP1", ServiceType: "E", AccountID: "A1", ActiveDate: d, Active: true}}
	mv2 := membership{Utility: "gec", Membership: rules.Membership{CustomerID: "C2", PremiseID: "P1",
		ServicePointID: "SP1", ServiceType: "E", AccountID: "A2", ActiveDate: d + 40, Active: true}}
	// Another customer on another service point of the premise: C4.
	mv3 := membership{Utility: "gec", Membership: rules.Membership{CustomerID: "C3", PremiseID: "P1",
		ServicePointID: "SP2", ServiceType: "G", AccountID: "A3", ActiveDate: d, Active: true}}
	reasons := []rules.Reason{}
	civ := customerInput{Utility: "gec", Input: rules.CustomerInput{CustomerID: "C1", PremiseID: "P1",
		Membership:   &rules.Membership{CustomerID: "C1", PremiseID: "P1", ServicePointID: "SP1", ServiceType: "E", ActiveDate: d, Active: true},
		Replacements: &reasons, Cause: rules.Source{Topic: "billing.v1", Offset: 3, File: "f.gz", Line: 2}}}
	ihv := intervalHistory{Utility: "gec", History: rules.IntervalHistory{ServicePointID: "SP1", CustomerID: "C1",
		PremiseID: "P1", Months: 13, Since: d}}
	m, m2, ci, ih := mv.appendBinary(nil), mv2.appendBinary(nil), civ.appendBinary(nil), ihv.appendBinary(nil)
	// The JSON of the first releases, still read.
	mj, _ := json.Marshal(mv)
	cij, _ := json.Marshal(civ)
	ihj, _ := json.Marshal(ihv)
	f.Add(uint8(0), "P1", []byte(nil), mj)
	f.Add(uint8(0), "P1", mj, m2)
	f.Add(uint8(1), "C1", []byte(nil), cij)
	f.Add(uint8(2), "C1", cij, ihj)
	f.Add(uint8(2), "C1", []byte(nil), []byte{repartitionV1, 3, 'g'})
	f.Add(uint8(1), "C1", []byte(nil), []byte{repartitionV1 + 1})
	f.Add(uint8(0), "P1", []byte(nil), m)
	f.Add(uint8(0), "P1", m, m2)
	f.Add(uint8(0), "P2", []byte(nil), m)
	f.Add(uint8(0), "P1", m, mv3.appendBinary(nil))
	f.Add(uint8(1), "C1", []byte(nil), ci)
	f.Add(uint8(1), "C1", ci, ci)
	f.Add(uint8(2), "C1", ci, ih)
	f.Add(uint8(2), "C1", []byte(nil), ih)
	f.Add(uint8(0), "P1", []byte(nil), []byte(`{"membership":{"premise_id":"P1","active_date":"x"}}`))
	f.Add(uint8(1), "", []byte(nil), []byte(`{}`))
	f.Add(uint8(2), "C1", []byte(nil), []byte(`{"history":{"customer_id":"C1","months":-9223372036854775808}}`))
	f.Add(uint8(1), "C1", []byte(nil), []byte(`{"input":{"customer_id":"C1","membership":null,"replacements":[{"code":"`+strings.Repeat("X", 300)+`"}]}}`))
	f.Add(uint8(0), "P1", []byte(nil), []byte("not json"))
	f.Add(uint8(0), "P1", []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, topic uint8, key string, prev, value []byte) {
		if len(value) > 1<<14 || len(prev) > 1<<14 {
			return
		}
		names := []string{p.topics.Premises, p.topics.Memberships, p.topics.IntervalHistory}
		tp := names[int(topic)%len(names)]
		var state any
		site, cust := &rules.Site{}, &rules.Customer{}
		if tp == p.topics.Premises {
			state = site
		} else {
			state = cust
		}
		if prev != nil {
			// Whatever the previous value did, it must leave the stage working.
			_, _ = process(p, tp, key, prev, 1, site, cust)
		}
		outs, err := process(p, tp, key, value, 2, site, cust)
		if err != nil {
			msg := err.Error()
			if !quarantine.IsPoison(err) {
				t.Fatalf("not poison: %v", err)
			}
			if !strings.Contains(msg, tp) && !strings.Contains(msg, "record key") {
				t.Fatalf("error names neither the topic nor the key: %q", msg)
			}
			return
		}
		// Accepted: the key is the field the topic is keyed by, and the value
		// means the same after a round trip.
		switch tp {
		case p.topics.Premises:
			m := mustRoundTrip[membership](t, value)
			if m.Membership.PremiseID != key {
				t.Fatalf("accepted a membership of premise %q under key %q", m.Membership.PremiseID, key)
			}
		case p.topics.Memberships:
			ci := mustRoundTrip[customerInput](t, value)
			if ci.Input.CustomerID != key {
				t.Fatalf("accepted a stage 2 input of customer %q under key %q", ci.Input.CustomerID, key)
			}
		default:
			h := mustRoundTrip[intervalHistory](t, value)
			if h.History.CustomerID != key {
				t.Fatalf("accepted an interval history of customer %q under key %q", h.History.CustomerID, key)
			}
		}
		checkState(t, state)
		for _, o := range outs {
			switch o.Topic {
			case p.topics.Memberships:
				if o.Value[0] != repartitionV1 {
					t.Fatalf("output to %s not in the binary form: % x", o.Topic, o.Value)
				}
				ci := mustRoundTrip[customerInput](t, o.Value)
				if string(o.Key) != ci.Input.CustomerID {
					t.Fatalf("output to %s keyed %q for customer %q", o.Topic, o.Key, ci.Input.CustomerID)
				}
			case p.topics.Eligibility:
				rec, _, err := recavro.NewDecoder(p.reg).Decode(context.Background(), o.Value)
				if err != nil {
					t.Fatalf("an eligibility event does not decode: %v", err)
				}
				if ev, ok := rec.(*recavro.EligibilityChanged); !ok || ev.CustomerID != string(o.Key) {
					t.Fatalf("eligibility event %+v keyed %q", rec, o.Key)
				}
			case p.topics.Anomalies:
				// The premise stage judges S1 and C4 itself.
				rec, _, err := recavro.NewDecoder(p.reg).Decode(context.Background(), o.Value)
				if err != nil {
					t.Fatalf("an anomaly does not decode: %v", err)
				}
				if a, ok := rec.(*recavro.Anomaly); !ok || a.ServicePointID != string(o.Key) {
					t.Fatalf("anomaly %+v keyed %q", rec, o.Key)
				}
			default:
				t.Fatalf("output to unexpected topic %s", o.Topic)
			}
		}
	})
}

// process runs value through the stage that reads topic tp.
func process(p *Pipeline, tp, key string, value []byte, off int64, site *rules.Site, cust *rules.Customer) ([]runtime.Out, error) {
	in := runtime.Input{Record: runtime.Record{Topic: tp, Partition: 0, Offset: off, Key: []byte(key), Value: value,
		Timestamp: time.UnixMilli(1_700_000_000_000)}}
	if tp == p.topics.Premises {
		st, err := p.PremiseStage().Process(site, in)
		return st.Outputs, err
	}
	st, err := p.CustomerStage().Process(cust, in)
	return st.Outputs, err
}

// repartitionValue is a repartition topic's value type.
type repartitionValue[T any] interface {
	*T
	appendBinary([]byte) []byte
	decode([]byte) error
}

// mustRoundTrip decodes an accepted value (binary or JSON) and checks that
// its binary form decodes to what encodes to the same bytes: the binary
// form loses nothing of what was accepted.
func mustRoundTrip[T any, P repartitionValue[T]](t *testing.T, b []byte) *T {
	t.Helper()
	v := P(new(T))
	if err := v.decode(b); err != nil {
		t.Fatalf("an accepted value does not decode: %v", err)
	}
	b1 := v.appendBinary(nil)
	back := P(new(T))
	if err := back.decode(b1); err != nil {
		t.Fatalf("the binary form of an accepted value does not decode: %v (% x)", err, b1)
	}
	if b2 := back.appendBinary(nil); !bytes.Equal(b1, b2) {
		t.Fatalf("a round trip through the binary form changed the value:\n%+v\n%+v", v, back)
	}
	if len(b) > 0 && b[0] == repartitionV1 && !reflect.DeepEqual(v, back) {
		t.Fatalf("a binary value changed in a round trip:\n%+v\n%+v", v, back)
	}
	return v
}

// checkState: the state a value left round-trips through its changelog
// encoding (what a restore would read back).
func checkState(t *testing.T, state any) {
	t.Helper()
	type binary interface {
		MarshalBinary() ([]byte, error)
		UnmarshalBinary([]byte) error
	}
	s := state.(binary)
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatalf("state does not encode: %v", err)
	}
	var back binary
	switch state.(type) {
	case *rules.Site:
		back = &rules.Site{}
	default:
		back = &rules.Customer{}
	}
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatalf("state does not decode: %v", err)
	}
	b2, err := back.MarshalBinary()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("state round trip: %v\n%s\n%s", err, b, b2)
	}
}
