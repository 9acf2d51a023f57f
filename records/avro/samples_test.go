package avro

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/linkedin/goavro/v2"
	twavro "github.com/twmb/avro"

	"github.com/usagestream/usagestream/internal/dates"
)

func ptr[T any](v T) *T { return &v }

var (
	day  = dates.MustParse("20250131")
	when = time.Date(2025, 1, 31, 14, 5, 0, 0, time.UTC)
)

// samples are one value of every record type with every optional field
// set, and one with every optional field null (maps and arrays empty).
func samples() []Record {
	cause := Cause{Topic: "usagestream.billing.v1", Partition: 3, Offset: 1019, File: ptr("opwr_gec_res_v1-19-0_full_20250101000000.tsv.gz"), Line: ptr(int64(42))}
	return []Record{
		&EligibilityChanged{EventID: "billing.v1-3-1019-0", Utility: "gec", CustomerID: "C1", PremiseID: "P1", SecondaryID: ptr("S1"),
			Program: "communications", Eligible: false, Reasons: []Reason{
				{Code: "USAGE_GAP", Rule: "U2", ServicePointID: ptr("SP1"), EffectiveDate: day, Until: ptr(day + 30), Source: cause},
				{Code: "INACTIVE", Rule: "A1", EffectiveDate: dates.MustParse("19691231"), Source: Cause{Topic: "t", Offset: -1}},
			}, Cause: cause},
		&EligibilityChanged{EventID: "e", Utility: "gec", CustomerID: "C1", PremiseID: "P1", Program: "web_access", Eligible: true, Reasons: []Reason{}, Cause: Cause{Topic: "t"}},
		&UsageCorrected{EventID: "e1", Utility: "gec", ServicePointID: "SP1", Kind: "INTERVAL", Rule: "I2", DateTo: day, Duration: 1,
			OldValue: 1.25, NewValue: -0.5, OldCharge: ptr(10.0), NewCharge: ptr(12.75), NewDateTo: day, NewDuration: 1, Cause: cause,
			Channel: ptr("GENERATED"), IntervalEnd: ptr(when), IntervalMinutes: ptr(int32(15)), OldEstimate: ptr(true), NewEstimate: ptr(false)},
		&UsageCorrected{EventID: "e2", Utility: "gec", ServicePointID: "SP1", Kind: "EXACT", Rule: "U4", DateTo: day, Duration: 31,
			OldValue: 100, NewValue: 101.5, NewDateTo: day, NewDuration: 31, Cause: Cause{Topic: "t"}},
		&AccountEvent{EventID: "e3", Utility: "gec", ServicePointID: "SP1", AccountID: "A1", CustomerID: "C1", PremiseID: "P1",
			SecondaryID: ptr("S1"), Type: "ACTIVATED", Rule: "A1", Date: day, Detail: ptr("Café – ünïcode \"quoted\"\n"), Cause: cause},
		&AccountEvent{EventID: "e4", Utility: "gec", ServicePointID: "SP1", AccountID: "A1", CustomerID: "C1", PremiseID: "P1",
			Type: "TERMINATED", Rule: "A3", Date: 0, Cause: Cause{Topic: "t"}},
		&Anomaly{EventID: "e5", Utility: "gec", ServicePointID: "SP1", Code: "USAGE_GAP", Rule: "U2", Message: "gap of 3 days",
			EffectiveDate: day, Until: ptr(day + 3), Cleared: true, AccountID: ptr("A1"), CustomerID: ptr("C1"), PremiseID: ptr("P1"),
			SecondaryID: ptr("S1"), Cause: cause},
		&Anomaly{EventID: "e6", Utility: "gec", ServicePointID: "SP1", Code: "USAGE_OVERLAP", Rule: "U3", Message: "m", EffectiveDate: day, Cause: Cause{Topic: "t"}},
		&RejectedRow{Utility: "gec", Layout: "full", Source: SourceRef{File: "f.tsv", Line: 9, FileSHA256: strings.Repeat("ab", 32)},
			Raw: "SP1\t[redacted]\t2025", ServicePointID: ptr("SP1"), Reasons: []RejectReason{
				{Field: ptr("date_to"), Code: "BAD_DATE", Rule: "DC-2.4", Message: "not a date"},
				{Code: "FIELD_COUNT", Rule: "DC-2.1", Message: "3 fields, want 31"},
			}},
		&RejectedRow{Utility: "gec", Layout: "interval", Source: SourceRef{File: "f", Line: 1, FileSHA256: "x"}, Raw: "", Reasons: []RejectReason{}},
		&FileEvent{EventID: "sha:1:COMPLETED", Status: FileCompleted, Utility: "gec", File: "f.tsv.gz", FileSHA256: "sha", SizeBytes: 1 << 33,
			Generation: 2, Layout: "full", Kind: "full", Population: ptr("res"), SpecVersion: ptr("v1-19-0"), NameTimestamp: ptr(when.Add(-time.Hour)),
			NameConforms: true, EventTime: when.Add(1234 * time.Millisecond), RowsRead: 10, RowsPublished: 8, RowsRejected: 2,
			RejectedByCode: map[string]int64{"BAD_DATE": 2}, ResumedFromLine: 5, Error: ptr("line 7: bad")},
		&FileEvent{EventID: "sha:1:RECEIVED", Status: FileReceived, Utility: "gec", File: "f", FileSHA256: "sha", Generation: 1, Layout: "interval",
			Kind: "interval15", EventTime: when, RejectedByCode: map[string]int64{}},
		&IntervalRead{Utility: "gec", ServicePointID: "SP1", Channel: "GENERATED", ServiceType: ptr("E"), IntervalEndMillis: when.UnixMilli(),
			LocalDate: day, LocalTime: 545, UTCOffsetMinutes: -300, OffsetGiven: true, Minutes: 15, Value: 0.125, Units: "KWH", IsEstimate: "A",
			Origin: IntervalOrigin{Kind: "file", Name: "f.csv", Line: ptr(int64(2)), FileSHA256: ptr("sha")}},
		&IntervalRead{Utility: "gec", ServicePointID: "SP1", IntervalEndMillis: -1000, LocalDate: -1, LocalTime: 1439, Minutes: 1440,
			Value: 0, Units: "THERM", IsEstimate: "E", Origin: IntervalOrigin{Kind: "adapter", Name: "mdms"}},
		&BillingRow{Utility: "gec", Layout: "full", Source: SourceRef{File: "f.tsv.gz", Line: 7, FileSHA256: "sha"},
			CustomerID: ptr("C1"), PremiseID: ptr("P1"), SecondaryID: ptr("S1"), CCBAccountID: ptr("CCB1"), CustomerType: ptr("RES"),
			BusinessName: ptr("Café"), AccountID: ptr("A1"), ActiveDate: ptr(day - 365), InactiveDate: ptr(day + 365), IsAccountDeletion: true,
			ReadCycle: ptr("07"), RateCode: ptr("R1"), ServicePointID: "SP1", ServiceType: ptr("E"), ServiceHouseNumber: ptr("12"),
			ServiceStreetName: ptr("Main"), ServiceUnit: ptr("4B"), ServiceCity: ptr("Macon"), ServiceState: ptr("GA"), ServiceZipCode: ptr("31201"),
			MeterType: ptr("AMI"), MeterUnit: ptr("KWH"), BldgSqFoot: ptr(1200.5), UsageValue: ptr(321.5), DateTo: ptr(day), Duration: ptr(int32(31)),
			IsEstimate: ptr("A"), UsageCharge: ptr(40.25), Extra: map[string]string{"mail_city": "Macon"}},
		&BillingRow{Utility: "gec", Layout: "usage", Source: SourceRef{File: "f", Line: 1 << 40, FileSHA256: "sha"}, ServicePointID: "SP2",
			Extra: map[string]string{}},
		&OperatorAction{ActionID: "a1", Kind: "CLEAR_ANOMALY", Utility: "gec", ServicePointID: "SP1", AnomalyCode: "ACTIVE_DATE_CHANGED",
			AccountID: "A1", Actor: "ops", RequestedAt: when, Reason: "confirmed \"by\" billing\n", Ticket: "OPS-1"},
		&OperatorAction{ActionID: "a2", Kind: "HOLD_INELIGIBLE", Utility: "gec", CustomerID: "C1", PremiseID: "P1", Program: "communications",
			Until: ptr(day), Actor: "ops", RequestedAt: when, Reason: "r", Ticket: "OPS-2"},
	}
}

// toNative is v in goavro's native form for schema node n, written from
// the schema and the struct tags alone (not through twmb/avro): unions as
// goavro.Union with goavro's branch names, dates and timestamps as
// time.Time, records and maps as map[string]any, arrays as []any.
func toNative(n *twavro.SchemaNode, v reflect.Value, ns string) any {
	switch n.Type {
	case "union":
		if v.Kind() != reflect.Pointer {
			panic(fmt.Sprintf("a union of %v needs a pointer field", v.Type()))
		}
		if v.IsNil() {
			return nil
		}
		for i := range n.Branches {
			b := &n.Branches[i]
			if b.Type == "null" {
				continue
			}
			branch := b.Type
			switch {
			case b.LogicalType != "":
				branch += "." + b.LogicalType
			case b.Type == "enum" || b.Type == "record":
				branch = fullName(b, ns)
			}
			return goavro.Union(branch, toNative(b, v.Elem(), ns))
		}
	case "record":
		ns = namespaceOf(fullName(n, ns))
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			tag := v.Type().Field(i).Tag.Get("avro")
			for j := range n.Fields {
				if n.Fields[j].Name == tag {
					m[tag] = toNative(&n.Fields[j].Type, v.Field(i), ns)
				}
			}
		}
		return m
	case "array":
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toNative(n.Items, v.Index(i), ns)
		}
		return out
	case "map":
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = toNative(n.Values, v.MapIndex(k), ns)
		}
		return out
	}
	switch x := v.Interface().(type) {
	case dates.Date:
		return x.Time()
	case int64:
		if n.LogicalType == "timestamp-millis" {
			return time.UnixMilli(x).UTC()
		}
	}
	return v.Interface()
}
