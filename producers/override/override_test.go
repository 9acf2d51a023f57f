package override

import (
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

func TestCodecRoundTrip(t *testing.T) {
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	until := dates.MustParse("20250131")
	for _, a := range []records.OperatorAction{
		{ActionID: "a1", Kind: records.ActionClearAnomaly, Utility: "U", ServicePointID: "SP1", AnomalyCode: "ACTIVE_DATE_CHANGED", AccountID: "A1",
			Actor: "ops", RequestedAt: time.UnixMilli(1_700_000_000_123).UTC(), Reason: "checked", Ticket: "T-1"},
		{ActionID: "a2", Kind: records.ActionHoldIneligible, CustomerID: "C1", PremiseID: "P1", Program: "communications", Until: &until,
			Actor: "ops", RequestedAt: time.UnixMilli(1).UTC(), Reason: "r", Ticket: "T-2"},
	} {
		b, err := c.Append(nil, 7, &a)
		if err != nil {
			t.Fatal(err)
		}
		var got records.OperatorAction
		if err := c.s.Decoder().Decode(b[5:], &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, a)
		}
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := NewID(), NewID()
	if !re.MatchString(a) || a == b {
		t.Errorf("ids %q and %q: want two different version 4 UUIDs", a, b)
	}
}

func TestInForce(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC) }
	hold := func(id, kind, prog string, min int) Entry {
		return Entry{Action: records.OperatorAction{ActionID: id, Kind: kind, CustomerID: "C1", PremiseID: "P1", Program: prog, RequestedAt: at(min)}}
	}
	entries := []Entry{
		{Action: records.OperatorAction{ActionID: "clear", Kind: records.ActionClearAnomaly, ServicePointID: "SP1", RequestedAt: at(0)}},
		hold("h1", records.ActionHoldIneligible, "communications", 1),
		hold("h2", records.ActionHoldEligible, "communications", 2), // replaces h1
		hold("h3", records.ActionHoldIneligible, "web_access", 3),
		hold("r3", records.ActionReleaseHold, "web_access", 4), // ends h3
		hold("r9", records.ActionReleaseHold, "disaggregation", 5),
		hold("h4", records.ActionHoldIneligible, "disaggregation", 6),
	}
	// h4 lasts through 2026-01-02: in force on that day, not after.
	until := dates.MustParse("20260102")
	entries[len(entries)-1].Action.Until = &until
	var got []string
	for _, e := range InForce(entries, time.Date(2026, 1, 2, 23, 0, 0, 0, time.UTC)) {
		got = append(got, e.Action.ActionID)
	}
	if want := []string{"clear", "h2", "h4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("in force on the hold's last day %v, want %v", got, want)
	}
	got = nil
	for _, e := range InForce(entries, time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)) {
		got = append(got, e.Action.ActionID)
	}
	if want := []string{"clear", "h2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("in force %v, want %v", got, want)
	}
}
