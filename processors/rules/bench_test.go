package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/gen"
	"github.com/usagestream/usagestream/records"
)

// benchRows is a generated file of 5,000 service points with two years of
// monthly history and a few anomalies, parsed once: the benchmarks measure
// the rules and the state encoding, not the reader.
func benchRows(b *testing.B) []*records.BillingRow {
	b.Helper()
	cfg := gen.Config{ServicePoints: 5000, Months: 24, Seed: 1, Compression: "none",
		Now:       time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Anomalies: map[gen.Kind]int{gen.U2Gap: 10, gen.U4ExactOverwrite: 10, gen.A2Supersede: 10, gen.A7RateNotAllowed: 10}}
	var text bytes.Buffer
	if _, _, err := gen.WriteFull(&text, cfg); err != nil {
		b.Fatal(err)
	}
	br, err := billing.NewReader(gen.FileName(cfg.WithDefaults(), records.LayoutFull), &text, billing.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var rows []*records.BillingRow
	for {
		rec, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if rec.Row != nil {
			rows = append(rows, rec.Row)
		}
	}
	return rows
}

// stateEvery is how often the runtime encodes a service point's state: once
// per poll, which holds about a year of one service point's monthly rows.
const stateEvery = 12

// runStage1 applies rows by service point; every stateEvery rows of a
// service point it encodes the state (encode), and decodes it back into a
// fresh value (reload) as a runtime without a warm cache would.
func runStage1(b *testing.B, rows []*records.BillingRow, encode, reload, collect bool) (memberships []Membership, stateBytes int64) {
	p := DefaultPolicy()
	sps := make(map[string]*ServicePoint, 8192)
	count := make(map[string]int, 8192)
	for i, row := range rows {
		sp := sps[row.ServicePointID]
		if sp == nil {
			sp = &ServicePoint{}
			sps[row.ServicePointID] = sp
		}
		out := sp.Apply(p, row, Source{Topic: "billing.v1", Offset: int64(i), File: "bench.tsv", Line: row.Line})
		if collect {
			memberships = append(memberships, out.Memberships...)
		}
		if !encode {
			continue
		}
		n := count[row.ServicePointID] + 1
		count[row.ServicePointID] = n
		if n%stateEvery != 0 {
			continue
		}
		st, err := sp.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		stateBytes += int64(len(st))
		if reload {
			fresh := &ServicePoint{}
			if err := fresh.UnmarshalBinary(st); err != nil {
				b.Fatal(err)
			}
			sps[row.ServicePointID] = fresh
		}
	}
	return memberships, stateBytes
}

func benchStage1(b *testing.B, encode, reload bool) {
	rows := benchRows(b)
	b.ReportAllocs()
	var n, stateBytes, encodes int64
	for b.Loop() {
		_, sb := runStage1(b, rows, encode, reload, false)
		n += int64(len(rows))
		stateBytes += sb
		encodes += int64(len(rows) / stateEvery)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
	if encodes > 0 && encode {
		b.ReportMetric(float64(stateBytes)/float64(encodes), "B/state")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStage1 is the runtime's pattern: rules on every row, state
// encoded once per service point per 12 rows.
func BenchmarkStage1(b *testing.B) { benchStage1(b, true, false) }

// BenchmarkStage1Reload also decodes every encoded state into a fresh value:
// the cost when states come back from Pebble rather than the write cache.
func BenchmarkStage1Reload(b *testing.B) { benchStage1(b, true, true) }

// BenchmarkStage1RulesOnly leaves the state encoding out.
func BenchmarkStage1RulesOnly(b *testing.B) { benchStage1(b, false, false) }

// BenchmarkStage2 feeds stage 1's memberships through the premise stage to
// stage 2 by customer, state encoded once per key per 12 inputs.
func BenchmarkStage2(b *testing.B) {
	rows := benchRows(b)
	ms, _ := runStage1(b, rows, false, false, true)
	p := DefaultPolicy()
	b.ReportAllocs()
	var n int64
	for b.Loop() {
		sites, cs := NewMemoryStore[Site](), NewMemoryStore[Customer]()
		count := map[string]int{}
		for i, m := range ms {
			site, _ := sites.Load(m.PremiseID)
			ins := site.Apply(p, m).Inputs
			if count["p/"+m.PremiseID]++; count["p/"+m.PremiseID]%stateEvery == 0 {
				if _, err := site.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
			for _, in := range ins {
				c, _ := cs.Load(in.CustomerID)
				c.Receive(p, in, Source{Topic: "memberships.v1", Offset: int64(i)})
				if count["c/"+in.CustomerID]++; count["c/"+in.CustomerID]%stateEvery == 0 {
					if _, err := c.MarshalBinary(); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		n += int64(len(ms))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "memberships/s")
	b.ReportMetric(float64(len(ms))/float64(len(rows)), "memberships/row")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStateCodec encodes and decodes the final service point states of
// the bench file (24 months each) in the binary encoding and, for
// comparison, in the JSON of the previous state versions, which
// UnmarshalBinary still reads.
func BenchmarkStateCodec(b *testing.B) {
	rows := benchRows(b)
	p := DefaultPolicy()
	byID := map[string]*ServicePoint{}
	for i, row := range rows {
		sp := byID[row.ServicePointID]
		if sp == nil {
			sp = &ServicePoint{}
			byID[row.ServicePointID] = sp
		}
		sp.Apply(p, row, Source{Topic: "billing.v1", Offset: int64(i), File: "bench.tsv", Line: row.Line})
	}
	sps := make([]*ServicePoint, 0, len(byID))
	for _, id := range sortedKeys(byID) {
		sps = append(sps, byID[id])
	}
	for _, codec := range []struct {
		name   string
		encode func(*ServicePoint) ([]byte, error)
	}{
		{"binary", (*ServicePoint).MarshalBinary},
		{"json", func(sp *ServicePoint) ([]byte, error) { return json.Marshal(spEnvelope{spJSONVersion, sp}) }},
	} {
		b.Run(codec.name, func(b *testing.B) {
			b.ReportAllocs()
			var n, size int64
			for b.Loop() {
				for _, sp := range sps {
					st, err := codec.encode(sp)
					if err != nil {
						b.Fatal(err)
					}
					var back ServicePoint
					if err := back.UnmarshalBinary(st); err != nil {
						b.Fatal(err)
					}
					size += int64(len(st))
				}
				n += int64(len(sps))
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "states/s")
			b.ReportMetric(float64(size)/float64(n), "B/state")
			b.ReportMetric(0, "ns/op")
		})
	}
}
