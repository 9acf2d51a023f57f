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

func optDate(d dates.Date, valid bool) any {
	if !valid {
		return nil
	}
	return goavro.Union("int.date", d.Time())
}

func optDouble(v float64, valid bool) any {
	if !valid {
		return nil
	}
	return goavro.Union("double", v)
}

// billingNative maps an accepted row to the BillingRow schema. Fields the
// row's layout does not carry become null.
func billingNative(r *billing.Row, src source) map[string]any {
	customer := r.Layout != billing.LayoutUsage
	usage := r.Layout != billing.LayoutCustomer
	m := map[string]any{
		"utility":              src.utility,
		"layout":               string(r.Layout),
		"source":               src.native(r.Line),
		"customer_id":          serde.OptString(r.CustomerID),
		"premise_id":           serde.OptString(r.PremiseID),
		"secondary_id":         serde.OptString(r.SecondaryID),
		"ccb_account_id":       serde.OptString(r.CCBAccountID),
		"customer_type":        serde.OptString(r.CustomerType),
		"business_name":        serde.OptString(r.BusinessName),
		"account_id":           serde.OptString(r.AccountID),
		"active_date":          optDate(r.ActiveDate, customer),
		"inactive_date":        optDate(r.InactiveDate.Date, customer && r.InactiveDate.Valid),
		"is_account_deletion":  r.IsAccountDeletion,
		"read_cycle":           serde.OptString(r.ReadCycle),
		"rate_code":            serde.OptString(r.RateCode),
		"service_point_id":     r.ServicePointID,
		"service_type":         serde.OptString(r.ServiceType),
		"service_house_number": serde.OptString(r.ServiceHouseNumber),
		"service_street_name":  serde.OptString(r.ServiceStreetName),
		"service_unit":         serde.OptString(r.ServiceUnit),
		"service_city":         serde.OptString(r.ServiceCity),
		"service_state":        serde.OptString(r.ServiceState),
		"service_zip_code":     serde.OptString(r.ServiceZipCode),
		"meter_type":           serde.OptString(r.MeterType),
		"meter_unit":           serde.OptString(r.MeterUnit),
		"bldg_sq_foot":         optDouble(r.BldgSqFoot.Value, r.BldgSqFoot.Valid),
		"usage_value":          optDouble(r.UsageValue, usage),
		"date_to":              optDate(r.DateTo, usage),
		"duration":             nil,
		"is_estimate":          nil,
		"usage_charge":         optDouble(r.UsageCharge.Value, usage && r.UsageCharge.Valid),
		"extra":                extraNative(r.Extra),
	}
	if usage {
		m["duration"] = goavro.Union("int", r.Duration)
		est := r.IsEstimate
		if est == 0 {
			est = billing.EstimateEstimated
		}
		m["is_estimate"] = goavro.Union("io.usagestream.v1.EstimateFlag", string(rune(est)))
	}
	return m
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
