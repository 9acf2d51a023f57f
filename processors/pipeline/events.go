package pipeline

import (
	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
)

// The event records (schemas/*.avsc) of the rules' outputs.

func cause(s rules.Source) recavro.Cause {
	c := recavro.Cause{Topic: s.Topic, Partition: s.Partition, Offset: s.Offset, File: recavro.Opt(s.File)}
	if s.Line > 0 {
		line := s.Line
		c.Line = &line
	}
	return c
}

func optDate(d dates.Date) *dates.Date {
	if d == 0 {
		return nil
	}
	return &d
}

func optDouble(v records.NullFloat) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Value
}

func reasons(rs []rules.Reason) []recavro.Reason {
	out := make([]recavro.Reason, len(rs))
	for i, r := range rs {
		out[i] = recavro.Reason{
			Code: r.Code, Rule: r.Rule, ServicePointID: recavro.Opt(r.ServicePointID),
			EffectiveDate: r.EffectiveDate, Until: optDate(r.Until), Source: cause(r.Source),
		}
	}
	return out
}

func eligibilityRecord(id, utility string, e rules.EligibilityChanged) *recavro.EligibilityChanged {
	return &recavro.EligibilityChanged{
		EventID: id, Utility: utility, CustomerID: e.CustomerID, PremiseID: e.PremiseID,
		SecondaryID: recavro.Opt(e.SecondaryID), Program: e.Program, Eligible: e.Eligible,
		Reasons: reasons(e.Reasons), Cause: cause(e.Source),
	}
}

func correctionRecord(id, utility string, c rules.Correction) *recavro.UsageCorrected {
	return &recavro.UsageCorrected{
		EventID: id, Utility: utility, ServicePointID: c.ServicePointID, Kind: c.Kind, Rule: c.Rule,
		DateTo: c.DateTo, Duration: c.Duration, OldValue: c.OldValue, NewValue: c.NewValue,
		OldCharge: optDouble(c.OldCharge), NewCharge: optDouble(c.NewCharge),
		NewDateTo: c.NewDateTo, NewDuration: c.NewDuration, Cause: cause(c.Source),
	}
}

func accountEventRecord(id, utility string, a rules.AccountEvent) *recavro.AccountEvent {
	return &recavro.AccountEvent{
		EventID: id, Utility: utility, ServicePointID: a.ServicePointID, AccountID: a.AccountID,
		CustomerID: a.CustomerID, PremiseID: a.PremiseID, SecondaryID: recavro.Opt(a.SecondaryID),
		Type: a.Type, Rule: a.Rule, Date: a.Date, Detail: recavro.Opt(a.Detail), Cause: cause(a.Source),
	}
}

func anomalyRecord(id, utility string, a rules.Anomaly) *recavro.Anomaly {
	return &recavro.Anomaly{
		EventID: id, Utility: utility, ServicePointID: a.ServicePointID, Code: a.Code, Rule: a.Rule,
		Message: a.Message, EffectiveDate: a.EffectiveDate, Until: optDate(a.Until), Cleared: a.Cleared,
		AccountID: recavro.Opt(a.AccountID), CustomerID: recavro.Opt(a.CustomerID),
		PremiseID: recavro.Opt(a.PremiseID), SecondaryID: recavro.Opt(a.SecondaryID),
		Cause: cause(a.Source),
	}
}
