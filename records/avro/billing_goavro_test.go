package avro

import (
	"fmt"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// The goavro native-map mapping of BillingRow that ingest and the stages
// used before BillingCodec: kept as the independent reference the twmb/avro codec
// must agree with (TestBillingMatchesGoavro) and as the "before" of BenchmarkBillingRow.

// billingBuilder fills one reusable goavro native map per encoder goroutine.
// goavro reads the map during BinaryFromNative and keeps nothing, and
// building a fresh map plus a fresh union wrapper per field per row was half
// of ingest's CPU (measured with BenchmarkIngestFull). Not safe for
// concurrent use: one per goroutine.
type billingBuilder struct {
	m      map[string]any
	unions map[string]map[string]any
	src    map[string]any
	extra  map[string]any
}

func newBillingBuilder() *billingBuilder {
	return &billingBuilder{
		m:      make(map[string]any, 32),
		unions: make(map[string]map[string]any, 32),
		src:    make(map[string]any, 3),
		extra:  map[string]any{},
	}
}

// union sets field to the non-null branch of a ["null", T] union.
func (b *billingBuilder) union(field, branch string, v any) {
	u := b.unions[field]
	if u == nil {
		u = make(map[string]any, 1)
		b.unions[field] = u
	}
	u[branch] = v
	b.m[field] = u
}

func (b *billingBuilder) optString(field, v string) {
	if v == "" {
		b.m[field] = nil
		return
	}
	b.union(field, "string", v)
}

func (b *billingBuilder) optDate(field string, d dates.Date, valid bool) {
	if !valid {
		b.m[field] = nil
		return
	}
	b.union(field, "int.date", d.Time())
}

func (b *billingBuilder) optDouble(field string, v float64, valid bool) {
	if !valid {
		b.m[field] = nil
		return
	}
	b.union(field, "double", v)
}

// Row maps an accepted row to the BillingRow schema. Fields the row's
// layout does not carry become null. The map is valid until the next call.
func (b *billingBuilder) Row(r *records.BillingRow, src BillingSource) map[string]any {
	customer := r.Layout != records.LayoutUsage
	usage := r.Layout != records.LayoutCustomer
	m := b.m
	m["utility"] = src.Utility
	m["layout"] = string(r.Layout)
	b.src["file"], b.src["line"], b.src["file_sha256"] = src.File, r.Line, src.SHA256
	m["source"] = b.src
	b.optString("customer_id", r.CustomerID)
	b.optString("premise_id", r.PremiseID)
	b.optString("secondary_id", r.SecondaryID)
	b.optString("ccb_account_id", r.CCBAccountID)
	b.optString("customer_type", r.CustomerType)
	b.optString("business_name", r.BusinessName)
	b.optString("account_id", r.AccountID)
	b.optDate("active_date", r.ActiveDate, customer)
	b.optDate("inactive_date", r.InactiveDate.Date, customer && r.InactiveDate.Valid)
	m["is_account_deletion"] = r.IsAccountDeletion
	b.optString("read_cycle", r.ReadCycle)
	b.optString("rate_code", r.RateCode)
	m["service_point_id"] = r.ServicePointID
	b.optString("service_type", r.ServiceType)
	b.optString("service_house_number", r.ServiceHouseNumber)
	b.optString("service_street_name", r.ServiceStreetName)
	b.optString("service_unit", r.ServiceUnit)
	b.optString("service_city", r.ServiceCity)
	b.optString("service_state", r.ServiceState)
	b.optString("service_zip_code", r.ServiceZipCode)
	b.optString("meter_type", r.MeterType)
	b.optString("meter_unit", r.MeterUnit)
	b.optDouble("bldg_sq_foot", r.BldgSqFoot.Value, r.BldgSqFoot.Valid)
	b.optDouble("usage_value", r.UsageValue, usage)
	b.optDate("date_to", r.DateTo, usage)
	b.optDouble("usage_charge", r.UsageCharge.Value, usage && r.UsageCharge.Valid)
	m["duration"], m["is_estimate"] = nil, nil
	if usage {
		b.union("duration", "int", r.Duration)
		est := r.IsEstimate
		if est == 0 {
			est = records.EstimateEstimated
		}
		b.union("is_estimate", "io.usagestream.v1.EstimateFlag", estimateSymbol(est))
	}
	clear(b.extra)
	for _, a := range r.Extra {
		b.extra[a.Name] = a.Value
	}
	m["extra"] = b.extra
	return m
}

// Decode maps goavro's native form of a BillingRow back to a typed row. An
// error means the record does not have the shape the schema promises.
func goavroDecodeBilling(m map[string]any) (*DecodedBillingRow, error) {
	var d DecodedBillingRow
	var err error
	str := func(field string) string {
		if err != nil {
			return ""
		}
		switch v := m[field].(type) {
		case nil:
			return ""
		case string:
			return v
		case map[string]any:
			s, ok := v["string"].(string)
			if !ok {
				err = fmt.Errorf("field %s: unexpected union %v", field, v)
			}
			return s
		}
		err = fmt.Errorf("field %s: unexpected %T", field, m[field])
		return ""
	}
	date := func(field string) (dates.Date, bool) {
		u, ok := m[field].(map[string]any)
		if !ok {
			return 0, false
		}
		t, ok := u["int.date"].(time.Time)
		if !ok {
			err = fmt.Errorf("field %s: not a date", field)
			return 0, false
		}
		return dates.FromTime(t.UTC()), true
	}
	double := func(field string) (float64, bool) {
		u, ok := m[field].(map[string]any)
		if !ok {
			return 0, false
		}
		v, ok := u["double"].(float64)
		if !ok {
			err = fmt.Errorf("field %s: not a double", field)
		}
		return v, ok
	}

	r := &d.Row
	r.Layout = records.Layout(str("layout"))
	src, _ := m["source"].(map[string]any)
	d.Source.Utility = str("utility")
	if src != nil {
		d.Source.File, _ = src["file"].(string)
		d.Source.SHA256, _ = src["file_sha256"].(string)
		d.Line, _ = src["line"].(int64)
	}
	r.Line = d.Line
	r.CustomerID = str("customer_id")
	r.PremiseID = str("premise_id")
	r.SecondaryID = str("secondary_id")
	r.CCBAccountID = str("ccb_account_id")
	r.CustomerType = str("customer_type")
	r.BusinessName = str("business_name")
	r.AccountID = str("account_id")
	r.ActiveDate, _ = date("active_date")
	r.InactiveDate.Date, r.InactiveDate.Valid = date("inactive_date")
	r.IsAccountDeletion, _ = m["is_account_deletion"].(bool)
	r.ReadCycle = str("read_cycle")
	r.RateCode = str("rate_code")
	r.ServicePointID = str("service_point_id")
	r.ServiceType = str("service_type")
	r.ServiceHouseNumber = str("service_house_number")
	r.ServiceStreetName = str("service_street_name")
	r.ServiceUnit = str("service_unit")
	r.ServiceCity = str("service_city")
	r.ServiceState = str("service_state")
	r.ServiceZipCode = str("service_zip_code")
	r.MeterType = str("meter_type")
	r.MeterUnit = str("meter_unit")
	r.BldgSqFoot.Value, r.BldgSqFoot.Valid = double("bldg_sq_foot")
	r.UsageValue, _ = double("usage_value")
	r.DateTo, _ = date("date_to")
	if u, ok := m["duration"].(map[string]any); ok {
		r.Duration, _ = u["int"].(int32)
	}
	if u, ok := m["is_estimate"].(map[string]any); ok {
		if s, ok := u["io.usagestream.v1.EstimateFlag"].(string); ok && s != "" {
			r.IsEstimate = records.Estimate(s[0])
		}
	}
	r.UsageCharge.Value, r.UsageCharge.Valid = double("usage_charge")
	if extra, ok := m["extra"].(map[string]any); ok {
		for k, v := range extra {
			s, _ := v.(string)
			r.Extra = append(r.Extra, records.Attribute{Name: k, Value: s})
		}
	}
	if err != nil {
		return nil, err
	}
	if r.ServicePointID == "" {
		return nil, fmt.Errorf("billing record without service_point_id")
	}
	return &d, nil
}
