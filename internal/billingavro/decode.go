package billingavro

import (
	"fmt"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/billing"
)

// Decoded is a BillingRow record read back.
type Decoded struct {
	Row    billing.Row
	Source Source
	Line   int64
}

// Decode maps goavro's native form of a BillingRow back to a typed row. An
// error means the record does not have the shape the schema promises.
func Decode(m map[string]any) (*Decoded, error) {
	var d Decoded
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
	r.Layout = billing.Layout(str("layout"))
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
			r.IsEstimate = billing.Estimate(s[0])
		}
	}
	r.UsageCharge.Value, r.UsageCharge.Valid = double("usage_charge")
	if extra, ok := m["extra"].(map[string]any); ok {
		for k, v := range extra {
			s, _ := v.(string)
			r.Extra = append(r.Extra, billing.Attribute{Name: k, Value: s})
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
