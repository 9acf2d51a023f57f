package pipeline

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
)

// A repartition topic written by a release that sent JSON keeps being read
// after an upgrade: each JSON value means what its binary form means.
func TestRepartitionValuesReadTheJSONOfEarlierReleases(t *testing.T) {
	t.Parallel()
	d := dates.MustParse("20240101")
	src := rules.Source{Topic: "usagestream.billing.v1", Partition: 2, Offset: 3, File: "f.gz", Line: 2}
	m := rules.Membership{CustomerID: "C1", PremiseID: "P1", SecondaryID: "S1", ServicePointID: "SP1", ServiceType: "E",
		AccountID: "A1", ActiveDate: d, Active: true, FirstPeriodStart: d, LastDateTo: d + 30, ChainStart: d, ChainedMonths: 1,
		Reasons: []rules.Reason{{Code: rules.ReasonInactive, Rule: "A4", ServicePointID: "SP1", EffectiveDate: d, Until: d + 9, Source: src}},
		Source:  src}
	reasons := []rules.Reason{{Code: "X", Rule: "S1", EffectiveDate: d}}
	for name, c := range map[string]struct {
		v, back interface {
			appendBinary([]byte) []byte
			decode([]byte) error
		}
	}{
		"membership":       {&membership{Utility: "gec", Membership: m}, &membership{}},
		"stage 2 input":    {&customerInput{Utility: "gec", Input: rules.CustomerInput{CustomerID: "C1", PremiseID: "P1", Membership: &m, Replacements: &reasons, Cause: src}}, &customerInput{}},
		"no membership":    {&customerInput{Utility: "gec", Input: rules.CustomerInput{CustomerID: "C1", PremiseID: "P1", Cause: src}}, &customerInput{}},
		"interval history": {&intervalHistory{Utility: "gec", History: rules.IntervalHistory{ServicePointID: "SP1", CustomerID: "C1", PremiseID: "P1", Months: 13, Since: d, Source: src}}, &intervalHistory{}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := c.v.appendBinary(nil)
			if want[0] != repartitionV1 {
				t.Fatalf("the binary form starts with %d, not the version %d", want[0], repartitionV1)
			}
			js, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.back.decode(js); err != nil {
				t.Fatalf("the JSON form does not decode: %v", err)
			}
			if got := c.back.appendBinary(nil); !bytes.Equal(got, want) {
				t.Fatalf("the JSON form decodes to another value:\n%+v\nwant the value of\n%+v", c.back, c.v)
			}
			if err := c.back.decode(want[:len(want)-1]); err == nil {
				t.Fatal("a value cut short decodes")
			}
		})
	}
}
