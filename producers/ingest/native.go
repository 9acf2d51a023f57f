package ingest

import (
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/producers/billing"
)

// source identifies the file every record of one ingestion comes from.
type source struct {
	utility string
	file    string
	sha256  string
}

func (s source) native(line int64) map[string]any {
	return map[string]any{"file": s.file, "line": line, "file_sha256": s.sha256}
}

// rowBuilder fills one reusable goavro native map per encoder goroutine.
// goavro reads the map during BinaryFromNative and keeps nothing, and
// building a fresh map plus a fresh union wrapper per field per row was half
// of ingest's CPU (measured with BenchmarkIngestFull). Not safe for
// concurrent use: one per goroutine.
type rowBuilder struct {
	m      map[string]any
	unions map[string]map[string]any
	src    map[string]any
	extra  map[string]any
}

func newRowBuilder() *rowBuilder {
	return &rowBuilder{
		m:      make(map[string]any, 32),
		unions: make(map[string]map[string]any, 32),
		src:    make(map[string]any, 3),
		extra:  map[string]any{},
	}
}

// union sets field to the non-null branch of a ["null", T] union.
func (b *rowBuilder) union(field, branch string, v any) {
	u := b.unions[field]
	if u == nil {
		u = make(map[string]any, 1)
		b.unions[field] = u
	}
	u[branch] = v
	b.m[field] = u
}

func (b *rowBuilder) optString(field, v string) {
	if v == "" {
		b.m[field] = nil
		return
	}
	b.union(field, "string", v)
}

func (b *rowBuilder) optDate(field string, d dates.Date, valid bool) {
	if !valid {
		b.m[field] = nil
		return
	}
	b.union(field, "int.date", d.Time())
}

func (b *rowBuilder) optDouble(field string, v float64, valid bool) {
	if !valid {
		b.m[field] = nil
		return
	}
	b.union(field, "double", v)
}

// billing maps an accepted row to the BillingRow schema. Fields the row's
// layout does not carry become null. The map is valid until the next call.
func (b *rowBuilder) billing(r *billing.Row, src source) map[string]any {
	customer := r.Layout != billing.LayoutUsage
	usage := r.Layout != billing.LayoutCustomer
	m := b.m
	m["utility"] = src.utility
	m["layout"] = string(r.Layout)
	b.src["file"], b.src["line"], b.src["file_sha256"] = src.file, r.Line, src.sha256
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

func extraNative(attrs []billing.Attribute) map[string]any {
	m := make(map[string]any, len(attrs))
	for _, a := range attrs {
		m[a.Name] = a.Value
	}
	return m
}

func rejectedNative(rj *billing.Rejected, layout string, src source) map[string]any {
	reasons := make([]any, 0, len(rj.Reasons))
	for _, r := range rj.Reasons {
		reasons = append(reasons, map[string]any{
			"field":   serde.OptString(r.Field),
			"code":    r.Code,
			"rule":    r.Rule,
			"message": r.Message,
		})
	}
	return map[string]any{
		"utility":          src.utility,
		"layout":           layout,
		"source":           src.native(rj.Line),
		"raw":              rj.Raw,
		"service_point_id": serde.OptString(rj.ServicePointID),
		"reasons":          reasons,
	}
}

// fileEvent is the FileEvent record before encoding.
type fileEvent struct {
	Status      string
	Generation  int
	Name        billing.FileName
	Layout      string
	Size        int64
	Time        time.Time
	Read        int64
	Published   int64
	Rejected    int64
	ByCode      map[string]int64
	ResumedFrom int64
	Err         string
}

func fileEventNative(e fileEvent, src source) map[string]any {
	byCode := make(map[string]any, len(e.ByCode))
	for k, v := range e.ByCode {
		byCode[k] = v
	}
	var ts any
	if e.Name.Conforms {
		ts = goavro.Union("long.timestamp-millis", e.Name.Timestamp)
	}
	var errText any
	if e.Err != "" {
		errText = goavro.Union("string", e.Err)
	}
	return map[string]any{
		"event_id":          eventID(src.sha256, e.Generation, e.Status),
		"status":            e.Status,
		"utility":           src.utility,
		"file":              src.file,
		"file_sha256":       src.sha256,
		"size_bytes":        e.Size,
		"generation":        int32(e.Generation),
		"layout":            e.Layout,
		"kind":              e.Name.Kind,
		"population":        serde.OptString(e.Name.Population),
		"spec_version":      serde.OptString(e.Name.SpecVersion),
		"name_timestamp":    ts,
		"name_conforms":     e.Name.Conforms,
		"event_time":        e.Time,
		"rows_read":         e.Read,
		"rows_published":    e.Published,
		"rows_rejected":     e.Rejected,
		"rejected_by_code":  byCode,
		"resumed_from_line": e.ResumedFrom,
		"error":             errText,
	}
}

func eventID(sha string, generation int, status string) string {
	return sha + ":" + itoa(int64(generation)) + ":" + status
}
