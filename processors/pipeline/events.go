package pipeline

import (
	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/records"
)

// Native forms of the event schemas (schemas/*.avsc) for goavro.

func causeNative(s rules.Source) map[string]any {
	var line any
	if s.Line > 0 {
		line = goavro.Union("long", s.Line)
	}
	return map[string]any{"topic": s.Topic, "partition": s.Partition, "offset": s.Offset, "file": serde.OptString(s.File), "line": line}
}

func optDate(d dates.Date) any {
	if d == 0 {
		return nil
	}
	return goavro.Union("int.date", d.Time())
}

func optDouble(v records.NullFloat) any {
	if !v.Valid {
		return nil
	}
	return goavro.Union("double", v.Value)
}

func reasonsNative(rs []rules.Reason) []any {
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = map[string]any{
			"code": r.Code, "rule": r.Rule, "service_point_id": serde.OptString(r.ServicePointID),
			"effective_date": r.EffectiveDate.Time(), "until": optDate(r.Until), "source": causeNative(r.Source),
		}
	}
	return out
}

func eligibilityNative(id, utility string, e rules.EligibilityChanged) map[string]any {
	return map[string]any{
		"event_id": id, "utility": utility, "customer_id": e.CustomerID, "premise_id": e.PremiseID,
		"secondary_id": serde.OptString(e.SecondaryID), "program": e.Program, "eligible": e.Eligible,
		"reasons": reasonsNative(e.Reasons), "cause": causeNative(e.Source),
	}
}

func correctionNative(id, utility string, c rules.Correction) map[string]any {
	return map[string]any{
		"event_id": id, "utility": utility, "service_point_id": c.ServicePointID, "kind": c.Kind, "rule": c.Rule,
		"date_to": c.DateTo.Time(), "duration": c.Duration, "old_value": c.OldValue, "new_value": c.NewValue,
		"old_charge": optDouble(c.OldCharge), "new_charge": optDouble(c.NewCharge),
		"new_date_to": c.NewDateTo.Time(), "new_duration": c.NewDuration, "cause": causeNative(c.Source),
	}
}

func accountEventNative(id, utility string, a rules.AccountEvent) map[string]any {
	return map[string]any{
		"event_id": id, "utility": utility, "service_point_id": a.ServicePointID, "account_id": a.AccountID,
		"customer_id": a.CustomerID, "premise_id": a.PremiseID, "secondary_id": serde.OptString(a.SecondaryID),
		"type": a.Type, "rule": a.Rule, "date": a.Date.Time(), "detail": serde.OptString(a.Detail), "cause": causeNative(a.Source),
	}
}

func anomalyNative(id, utility string, a rules.Anomaly) map[string]any {
	return map[string]any{
		"event_id": id, "utility": utility, "service_point_id": a.ServicePointID, "code": a.Code, "rule": a.Rule,
		"message": a.Message, "effective_date": a.EffectiveDate.Time(), "until": optDate(a.Until), "cleared": a.Cleared,
		"account_id": serde.OptString(a.AccountID), "customer_id": serde.OptString(a.CustomerID),
		"premise_id": serde.OptString(a.PremiseID), "secondary_id": serde.OptString(a.SecondaryID),
		"cause": causeNative(a.Source),
	}
}
