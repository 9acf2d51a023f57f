// Package billingavro maps billing rows to and from the goavro native form
// of the BillingRow schema (schemas/billing_row.avsc): ingest encodes with
// it, the processors decode with it, so both sides agree field by field.
package billingavro

import (
	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/billing"
)

// Source names the file a row came from.
type Source struct {
	Utility string
	File    string
	SHA256  string
}

// Builder fills one reusable goavro native map per encoder goroutine.
// goavro reads the map during BinaryFromNative and keeps nothing, and
// building a fresh map plus a fresh union wrapper per field per row was half
// of ingest's CPU (measured with BenchmarkIngestFull). Not safe for
// concurrent use: one per goroutine.
type Builder struct {
	m      map[string]any
	unions map[string]map[string]any
	src    map[string]any
	extra  map[string]any
}

func NewBuilder() *Builder {
	return &Builder{
		m:      make(map[string]any, 32),
		unions: make(map[string]map[string]any, 32),
		src:    make(map[string]any, 3),
		extra:  map[string]any{},
	}
}

// union sets field to the non-null branch of a ["null", T] union.
func (b *Builder) union(field, branch string, v any) {
	u := b.unions[field]
	if u == nil {
		u = make(map[string]any, 1)
		b.unions[field] = u
	}
	u[branch] = v
	b.m[field] = u
}

func (b *Builder) optString(field, v string) {
	if v == "" {
		b.m[field] = nil
		return
	}
	b.union(field, "string", v)
}

func (b *Builder) optDate(field string, d dates.Date, valid bool) {
	if !valid {
		b.m[field] = nil
		return
	}
	b.union(field, "int.date", d.Time())
}

func (b *Builder) optDouble(field string, v float64, valid bool) {
	if !valid {
		b.m[field] = nil
		return
	}
	b.union(field, "double", v)
}

// Row maps an accepted row to the BillingRow schema. Fields the row's
// layout does not carry become null. The map is valid until the next call.
func (b *Builder) Row(r *billing.Row, src Source) map[string]any {
	customer := r.Layout != billing.LayoutUsage
	usage := r.Layout != billing.LayoutCustomer
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
			est = billing.EstimateEstimated
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

func estimateSymbol(e billing.Estimate) string {
	switch e {
	case billing.EstimateActual:
		return "A"
	case billing.EstimateUser:
		return "U"
	}
	return "E"
}
