package runtime

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// layoutDoc returns the layout lines (a tab, then a quoted kind byte) of
// the doc comment of the declaration named name in file, whitespace
// squeezed: the table the key layout tests hold the encoding to.
func layoutDoc(t *testing.T, file, name string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Doc == nil {
			continue
		}
		for _, sp := range gd.Specs {
			var names []*ast.Ident
			switch sp := sp.(type) {
			case *ast.TypeSpec:
				names = []*ast.Ident{sp.Name}
			case *ast.ValueSpec:
				names = sp.Names
			}
			if !slices.ContainsFunc(names, func(id *ast.Ident) bool { return id.Name == name }) {
				continue
			}
			var lines []string
			for _, l := range strings.Split(gd.Doc.Text(), "\n") {
				if strings.HasPrefix(l, "\t'") {
					lines = append(lines, strings.Join(strings.Fields(l), " "))
				}
			}
			if len(lines) == 0 {
				t.Fatalf("the doc of %s in %s has no layout table", name, file)
			}
			return lines
		}
	}
	t.Fatalf("no documented declaration %s in %s", name, file)
	return nil
}

// checkDocCovered fails unless the layout lines of the doc and those the
// test cases name are the same set: a kind added to one is added to both.
func checkDocCovered(t *testing.T, doc, tested []string) {
	t.Helper()
	slices.Sort(tested)
	tested = slices.Compact(tested)
	d := slices.Sorted(slices.Values(doc))
	if !slices.Equal(d, tested) {
		t.Fatalf("the documented layout and the tested one differ:\ndoc:\n\t%s\ntested:\n\t%s", strings.Join(d, "\n\t"), strings.Join(tested, "\n\t"))
	}
}

func be32(n uint32) string { return string(binary.BigEndian.AppendUint32(nil, n)) }
func be64(n uint64) string { return string(binary.BigEndian.AppendUint64(nil, n)) }

type kv struct{ key, value string }

// dump is every key and value in the store, in key order.
func dump(t *testing.T, s *Store) []kv {
	t.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []kv
	for it.First(); it.Valid(); it.Next() {
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStoreKeyLayout writes one partition holding every kind of key through
// the store's write and compares what Pebble holds, byte by byte, with the
// layout documented on Store; the documented kinds and the tested ones must
// be the same.
func TestStoreKeyLayout(t *testing.T) {
	const p = 0x01020304 // every byte distinct: the byte order shows
	cases := []struct {
		doc        string
		key, value string
	}{
		{`'s' p userKey -> the encoded state of userKey`,
			"s" + be32(p) + "SP-1", "state of SP-1"},
		{`'m' p "changelog" -> next changelog offset of p to apply`,
			"m" + be32(p) + "changelog", be64(42)},
		{`'m' p "in" topic -> next offset of topic[p] the states reflect`,
			"m" + be32(p) + "in" + "billing.v1", be64(9)},
		{`'m' p "wm" -> event time of p`,
			"m" + be32(p) + "wm", be64(1_700_000_000_000)},
		{`'m' p "r" kind userKey -> fire time of userKey's timer of kind`,
			"m" + be32(p) + "r" + "e" + "SP-1", be64(1_700_000_360_000)},
		{`'t' p kind fireAt userKey -> empty`,
			"t" + be32(p) + "e" + be64(1_700_000_360_000) + "SP-1", ""},
	}
	var tested []string
	for _, c := range cases {
		tested = append(tested, c.doc)
	}
	checkDocCovered(t, layoutDoc(t, "store.go", "Store"), tested)

	s := openTestStore(t)
	err := s.writePartitions([]partitionWrite{{
		p:             p,
		states:        []stateWrite{{key: []byte("SP-1"), value: []byte("state of SP-1")}},
		timers:        []timerWrite{{kind: EventTime, key: []byte("SP-1"), atMs: 1_700_000_360_000}},
		eventTime:     1_700_000_000_000,
		changelogNext: 42,
		inputs:        map[string]int64{"billing.v1": 9},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := dump(t, s)
	for _, c := range cases {
		if !slices.Contains(got, kv{c.key, c.value}) {
			t.Errorf("%s: key % x with value % x not in the store", c.doc, c.key, c.value)
		}
	}
	if len(got) != len(cases) {
		t.Errorf("the store holds %d keys, the layout says %d: % x", len(got), len(cases), got)
	}
}

// TestChangelogKeyLayout encodes a transaction's changes of every kind as
// changelog records and compares them, byte by byte, with the layout
// documented at the changelog key kinds.
func TestChangelogKeyLayout(t *testing.T) {
	cases := []struct {
		doc        string
		key, value string
		null       bool
	}{
		{doc: `'s' userKey -> the encoded state of userKey (null: deleted)`, key: "s" + "SP-1", value: "state of SP-1"},
		{doc: `'s' userKey -> the encoded state of userKey (null: deleted)`, key: "s" + "SP-2", null: true},
		{doc: `'t' kind userKey -> fire time of userKey's timer of kind (null: cancelled)`, key: "t" + "w" + "SP-1", value: be64(1_700_000_360_000)},
		{doc: `'t' kind userKey -> fire time of userKey's timer of kind (null: cancelled)`, key: "t" + "e" + "SP-2", null: true},
		{doc: `'w' -> event time of the partition (null: ignored)`, key: "w", value: be64(1_700_000_000_000)},
	}
	var tested []string
	for _, c := range cases {
		tested = append(tested, c.doc)
	}
	checkDocCovered(t, layoutDoc(t, "changelog.go", "clState"), tested)

	recs, err := changelogRecords("cl", 3, testCache(), func(v any) ([]byte, error) { return []byte(v.(string)), nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		i := slices.IndexFunc(recs, func(r *kgo.Record) bool { return string(r.Key) == c.key })
		if i < 0 {
			t.Errorf("%s: no record with key % x", c.doc, c.key)
			continue
		}
		r := recs[i]
		if r.Topic != "cl" || r.Partition != 3 {
			t.Errorf("%s: record to %s[%d], want cl[3] (the input's partition)", c.doc, r.Topic, r.Partition)
		}
		if c.null != (r.Value == nil) || string(r.Value) != c.value {
			t.Errorf("%s: key % x has value % x (null %t), want % x (null %t)", c.doc, c.key, r.Value, r.Value == nil, c.value, c.null)
		}
	}
	if len(recs) != len(cases) {
		t.Errorf("%d changelog records, want %d (an unchanged state has none)", len(recs), len(cases))
	}
}

// testCache is a transaction's cache of partition 3 holding a change of
// every kind, and a state read but not changed.
func testCache() *partCache {
	return &partCache{
		states: map[string]*entry{
			"SP-1": {state: "state of SP-1", dirty: true},
			"SP-2": {dirty: true, deleted: true},
			"SP-3": {state: "unchanged"},
		},
		timers: map[timerID]int64{
			{WallClock, "SP-1"}: 1_700_000_360_000,
			{EventTime, "SP-2"}: 0,
		},
		wm: 1_700_000_000_000, wmDirty: true,
		inOffset: map[string]int64{},
	}
}

// TestPersistIsWhatRestoreRebuilds: the store a transaction's persist step
// leaves and the one a restore of the changelog records its produce step
// wrote rebuilds are the same, byte for byte, deletions and cancelled
// timers included.
func TestPersistIsWhatRestoreRebuilds(t *testing.T) {
	const p = 3
	before := []partitionWrite{{p: p, eventTime: -1, changelogNext: 10,
		states: []stateWrite{{key: []byte("SP-2"), value: []byte("old")}, {key: []byte("SP-3"), value: []byte("unchanged")}},
		timers: []timerWrite{{kind: EventTime, key: []byte("SP-2"), atMs: 500}, {kind: WallClock, key: []byte("SP-1"), atMs: 700}},
	}}
	persisted, restored := openTestStore(t), openTestStore(t)
	for _, s := range []*Store{persisted, restored} {
		if err := s.writePartitions(before); err != nil {
			t.Fatal(err)
		}
	}

	tx := newTxn()
	tx.parts[p] = testCache()
	recs, err := changelogRecords("cl", p, tx.parts[p], func(v any) ([]byte, error) { return []byte(v.(string)), nil })
	if err != nil {
		t.Fatal(err)
	}
	tx.changelogNext[p] = 10 + int64(len(recs))
	if err := (&Instance{store: persisted}).persist(tx); err != nil {
		t.Fatal(err)
	}

	w := partitionWrite{p: p, eventTime: -1, changelogNext: 10 + int64(len(recs))}
	for _, r := range recs {
		if err := w.addChangelog(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := restored.writePartitions([]partitionWrite{w}); err != nil {
		t.Fatal(err)
	}

	a, b := dump(t, persisted), dump(t, restored)
	if !slices.Equal(a, b) {
		t.Fatalf("persisted:\n% x\nrestored:\n% x", a, b)
	}
	want := []kv{
		{"m" + be32(p) + "changelog", be64(uint64(10 + len(recs)))},
		{"m" + be32(p) + "r" + "w" + "SP-1", be64(1_700_000_360_000)},
		{"m" + be32(p) + "wm", be64(1_700_000_000_000)},
		{"s" + be32(p) + "SP-1", "state of SP-1"},
		{"s" + be32(p) + "SP-3", "unchanged"},
		{"t" + be32(p) + "w" + be64(1_700_000_360_000) + "SP-1", ""},
	}
	if !slices.Equal(a, want) {
		t.Fatalf("store after the transaction:\n% x\nwant:\n% x", a, want)
	}
}

// TestStoreRefusesStatesWithoutTheirChangelogOffset: the invariant is the
// API's; a write of states, timers or event time without the changelog
// offset they reflect stores nothing. Input offsets alone need none.
func TestStoreRefusesStatesWithoutTheirChangelogOffset(t *testing.T) {
	s := openTestStore(t)
	for name, w := range map[string]partitionWrite{
		"state":      {p: 1, eventTime: -1, states: []stateWrite{{key: []byte("k"), value: []byte("v")}}},
		"timer":      {p: 1, eventTime: -1, timers: []timerWrite{{kind: WallClock, key: []byte("k"), atMs: 5}}},
		"event time": {p: 1, eventTime: 5},
	} {
		ok := partitionWrite{p: 2, eventTime: -1, changelogNext: 3, states: []stateWrite{{key: []byte("k"), value: []byte("v")}}}
		if err := s.writePartitions([]partitionWrite{ok, w}); err == nil {
			t.Errorf("%s without its changelog offset: stored", name)
		}
	}
	if got := dump(t, s); len(got) != 0 {
		t.Fatalf("a refused write left % x", got)
	}
	if err := s.writePartitions([]partitionWrite{{p: 1, eventTime: -1, inputs: map[string]int64{"in": 4}}}); err != nil {
		t.Fatalf("input offsets alone: %v", err)
	}
	if off, err := s.InputOffset(1, "in"); err != nil || off != 4 {
		t.Fatalf("input offset %d, %v; want 4", off, err)
	}
}

// TestStoreTimers: a timer replaced or cancelled leaves no trace of its old
// fire time, and the due ones come out earliest first, per kind.
func TestStoreTimers(t *testing.T) {
	s := openTestStore(t)
	write := func(tws ...timerWrite) {
		t.Helper()
		if err := s.writePartitions([]partitionWrite{{p: 0, eventTime: -1, changelogNext: 1, timers: tws}}); err != nil {
			t.Fatal(err)
		}
	}
	due := func(kind TimerKind, at int64) []string {
		t.Helper()
		ts, err := s.dueTimers(0, kind, at, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tm := range ts {
			out = append(out, fmt.Sprintf("%s@%d", tm.Key, tm.At.UnixMilli()))
		}
		return out
	}
	write(timerWrite{EventTime, []byte("a"), 300}, timerWrite{EventTime, []byte("b"), 100}, timerWrite{WallClock, []byte("a"), 50})
	if got, want := due(EventTime, 1000), []string{"b@100", "a@300"}; !slices.Equal(got, want) {
		t.Fatalf("due %q, want %q", got, want)
	}
	write(timerWrite{EventTime, []byte("a"), 900}, timerWrite{EventTime, []byte("b"), 0})
	if got, want := due(EventTime, 500), []string(nil); !slices.Equal(got, want) {
		t.Fatalf("after a replace and a cancel, due at 500: %q", got)
	}
	if got, want := due(EventTime, 1000), []string{"a@900"}; !slices.Equal(got, want) {
		t.Fatalf("due %q, want %q", got, want)
	}
	if got, want := due(WallClock, 1000), []string{"a@50"}; !slices.Equal(got, want) {
		t.Fatalf("wall-clock timers due %q, want %q", got, want)
	}
	timerKeys := 0
	for _, e := range dump(t, s) {
		if bytes.HasPrefix([]byte(e.key), []byte{kindTimer}) {
			timerKeys++
		}
	}
	if timerKeys != 2 {
		t.Fatalf("%d 't' keys, want 2 (a replaced timer leaves none)", timerKeys)
	}
}

// TestChangelogTombstoneClears: a tombstone of each changelog key kind,
// restored after the live record, leaves the partition with no state, no
// timer and an event time of zero; ChangelogCleared tells the two apart.
func TestChangelogTombstoneClears(t *testing.T) {
	const p = 2
	recs, err := changelogRecords("cl", p, testCache(), func(v any) ([]byte, error) { return []byte(v.(string)), nil })
	if err != nil {
		t.Fatal(err)
	}
	w := partitionWrite{p: p, eventTime: -1}
	for _, r := range recs {
		if r.Value == nil {
			continue // already cleared in the test cache
		}
		if ChangelogCleared(r.Key, r.Value) {
			t.Errorf("live record % x = % x taken for cleared", r.Key, r.Value)
		}
		tomb := ChangelogTombstone("cl", p, r.Key)
		if tomb.Topic != "cl" || tomb.Partition != p || !ChangelogCleared(tomb.Key, tomb.Value) {
			t.Errorf("tombstone of % x: %s[%d] % x = % x, not cleared", r.Key, tomb.Topic, tomb.Partition, tomb.Key, tomb.Value)
		}
		for _, x := range []*kgo.Record{r, tomb} {
			if err := w.addChangelog(x.Key, x.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.changelogNext = 99
	s := openTestStore(t)
	if err := s.writePartitions([]partitionWrite{w}); err != nil {
		t.Fatal(err)
	}
	want := []kv{{"m" + be32(p) + "changelog", be64(99)}, {"m" + be32(p) + "wm", be64(0)}}
	if got := dump(t, s); !slices.Equal(got, want) {
		t.Fatalf("store after the tombstones:\n% x\nwant:\n% x", got, want)
	}
}

// TestStoreLooksUpMissingStatesByFilter: the first row of a key looks for
// a state that is not there; once states are in tables, a filter answers
// that without reading the tables' blocks. Pebble's table filters are what
// answers while the store's own key filter is not ready (its scan after
// opening; TestStoreFilterSparesReadsAndHidesNothing), and for the keys that
// one lets through.
func TestStoreLooksUpMissingStatesByFilter(t *testing.T) {
	s := openTestStore(t)
	<-s.filled
	s.filter.ready.Store(false)
	w := partitionWrite{p: 0, eventTime: -1, changelogNext: 1}
	for i := range 1000 {
		w.states = append(w.states, stateWrite{key: fmt.Appendf(nil, "SP-%06d", i), value: []byte("state")})
	}
	if err := s.writePartitions([]partitionWrite{w}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, ok, err := s.Get(0, fmt.Appendf(nil, "SP-%06d-new", i)); err != nil || ok {
			t.Fatalf("a state never written: found %v, %v", ok, err)
		}
	}
	if v, ok, err := s.Get(0, []byte("SP-000500")); err != nil || !ok || string(v) != "state" {
		t.Fatalf("a state written: %q, %v, %v", v, ok, err)
	}
	if m := s.db.Metrics(); m.Filter.Hits < 900 {
		t.Fatalf("%d of 1,000 lookups of missing states answered by a filter (misses %d)", m.Filter.Hits, m.Filter.Misses)
	}
}
