package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/usagestream/usagestream/sinks/sink"
)

const insertEligibility = `INSERT INTO eligibility_history (` + commonColumns + `,
	customer_id, premise_id, secondary_id, program, eligible, reasons, since, reason_codes)
SELECT ` + commonColumns + `, customer_id, premise_id, secondary_id, program, eligible, reasons, since, string_to_array(codes, ',')
FROM unnest(` + commonUnnest + `, $10::text[], $11::text[], $12::text[], $13::text[], $14::bool[], $15::jsonb[], $16::date[], $17::text[])
	AS u(` + commonColumns + `, customer_id, premise_id, secondary_id, program, eligible, reasons, since, codes)
ON CONFLICT (event_id) DO NOTHING`

// upsertCurrent moves a subject's row only forward in its partition (the
// WHERE of the update), so an older event delivered again leaves it alone.
// status_since carries over from the row on file when the batch's trailing
// run of equal eligible values started with the batch (extends) and the row
// on file has the same value.
const upsertCurrent = `INSERT INTO eligibility_current AS c (customer_id, premise_id, program, utility, secondary_id, eligible,
	reason_codes, reasons, since, status_since, event_id, kafka_partition, kafka_offset, updated_at)
SELECT u.customer_id, u.premise_id, u.program, u.utility, u.secondary_id, u.eligible,
	string_to_array(u.codes, ','), u.reasons, u.since,
	CASE WHEN u.extends AND p.eligible = u.eligible THEN p.status_since ELSE u.status_since END,
	u.event_id, u.kafka_partition, u.kafka_offset, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::jsonb[], $8::date[],
	$9::timestamptz[], $10::bool[], $11::text[], $12::int[], $13::bigint[], $14::text[])
	AS u(customer_id, premise_id, program, utility, secondary_id, eligible, reasons, since, status_since, extends, event_id, kafka_partition, kafka_offset, codes)
LEFT JOIN eligibility_current p ON p.customer_id = u.customer_id AND p.premise_id = u.premise_id AND p.program = u.program
ON CONFLICT (customer_id, premise_id, program) DO UPDATE SET
	utility = EXCLUDED.utility, secondary_id = EXCLUDED.secondary_id, eligible = EXCLUDED.eligible,
	reason_codes = EXCLUDED.reason_codes, reasons = EXCLUDED.reasons, since = EXCLUDED.since,
	status_since = EXCLUDED.status_since, event_id = EXCLUDED.event_id, kafka_partition = EXCLUDED.kafka_partition,
	kafka_offset = EXCLUDED.kafka_offset, updated_at = EXCLUDED.updated_at
WHERE c.kafka_partition <> EXCLUDED.kafka_partition OR c.kafka_offset < EXCLUDED.kafka_offset`

const insertCorrections = `INSERT INTO corrections (` + commonColumns + `,
	service_point_id, kind, rule, date_to, duration, old_value, new_value, old_charge, new_charge, new_date_to, new_duration,
	channel, interval_end, interval_minutes, old_estimate, new_estimate)
SELECT * FROM unnest(` + commonUnnest + `, $10::text[], $11::text[], $12::text[], $13::date[], $14::int[],
	$15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::date[], $20::int[],
	$21::text[], $22::timestamptz[], $23::int[], $24::bool[], $25::bool[])
ON CONFLICT (event_id) DO NOTHING`

const insertAccountEvents = `INSERT INTO account_events (` + commonColumns + `,
	service_point_id, account_id, customer_id, premise_id, secondary_id, type, rule, date, detail)
SELECT * FROM unnest(` + commonUnnest + `, $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
	$15::text[], $16::text[], $17::date[], $18::text[])
ON CONFLICT (event_id) DO NOTHING`

const insertAnomalies = `INSERT INTO anomalies (` + commonColumns + `,
	service_point_id, code, rule, message, effective_date, until, cleared, account_id, customer_id, premise_id, secondary_id)
SELECT * FROM unnest(` + commonUnnest + `, $10::text[], $11::text[], $12::text[], $13::text[], $14::date[],
	$15::date[], $16::bool[], $17::text[], $18::text[], $19::text[], $20::text[])
ON CONFLICT (event_id) DO NOTHING`

type eligibilityRows struct {
	common
	customer, premise []string
	secondary         []*string
	program           []string
	eligible          []bool
	reasons           []string
	codes             []string // reason codes joined by commas
	since             []*time.Time
}

func (r *eligibilityRows) add(ev sink.Event) error {
	n := ev.Native
	customer, err := str(n, "customer_id")
	if err != nil {
		return err
	}
	premise, err := str(n, "premise_id")
	if err != nil {
		return err
	}
	program, err := str(n, "program")
	if err != nil {
		return err
	}
	eligible, ok := n["eligible"].(bool)
	if !ok {
		return fmt.Errorf("field eligible: want a boolean, got %T", n["eligible"])
	}
	rs, ok := n["reasons"].([]any)
	if !ok {
		return fmt.Errorf("field reasons: want an array, got %T", n["reasons"])
	}
	var since *time.Time
	out := make([]reasonDoc, 0, len(rs))
	codes := make([]string, 0, len(rs))
	for i, x := range rs {
		m, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("field reasons[%d]: not a record", i)
		}
		eff, ok := m["effective_date"].(time.Time)
		if !ok {
			return fmt.Errorf("field reasons[%d].effective_date: want a date, got %T", i, m["effective_date"])
		}
		code, _ := m["code"].(string)
		rule, _ := m["rule"].(string)
		if code == "" || strings.Contains(code, ",") {
			return fmt.Errorf("field reasons[%d].code: %q is not a reason code", i, code)
		}
		if !eligible && (since == nil || eff.Before(*since)) {
			since = &eff
		}
		src, _ := m["source"].(map[string]any)
		codes = append(codes, code)
		out = append(out, reasonDoc{Code: code, Rule: rule, ServicePointID: optString(m["service_point_id"]),
			EffectiveDate: eff.Format(time.DateOnly), Until: dateString(optDate(m["until"])), Source: sourceOf(src)})
	}
	rj, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := r.common.add(ev); err != nil {
		return err
	}
	r.customer = append(r.customer, customer)
	r.premise = append(r.premise, premise)
	r.secondary = append(r.secondary, optString(n["secondary_id"]))
	r.program = append(r.program, program)
	r.eligible = append(r.eligible, eligible)
	r.reasons = append(r.reasons, string(rj))
	r.codes = append(r.codes, strings.Join(codes, ","))
	r.since = append(r.since, since)
	return nil
}

func (r *eligibilityRows) args() []any {
	return append(r.common.args(), r.customer, r.premise, r.secondary, r.program, r.eligible, r.reasons, r.since, r.codes)
}

// currentRows is the newest event of each subject in a batch.
type currentRows struct {
	customer, premise, program, utility []string
	secondary                           []*string
	eligible                            []bool
	reasons                             []string
	codes                               []string
	since                               []*time.Time
	statusSince                         []time.Time
	extends                             []bool
	eventID                             []string
	partition                           []int32
	offset                              []int64
}

// current reduces the batch's eligibility events to one row per subject.
// Events come in partition order and a subject's events share a partition
// (keyed by customer_id), so the last one seen is the newest.
func (r *eligibilityRows) current() currentRows {
	type subject struct{ customer, premise, program string }
	type run struct{ first, start, last int }
	runs := map[subject]*run{}
	var order []subject
	for i := range r.id {
		s := subject{r.customer[i], r.premise[i], r.program[i]}
		x := runs[s]
		switch {
		case x == nil:
			runs[s] = &run{i, i, i}
			order = append(order, s)
			continue
		case r.eligible[i] != r.eligible[x.last]:
			x.start = i
		}
		x.last = i
	}
	var c currentRows
	for _, s := range order {
		x := runs[s]
		i := x.last
		c.customer = append(c.customer, s.customer)
		c.premise = append(c.premise, s.premise)
		c.program = append(c.program, s.program)
		c.utility = append(c.utility, r.utility[i])
		c.secondary = append(c.secondary, r.secondary[i])
		c.eligible = append(c.eligible, r.eligible[i])
		c.reasons = append(c.reasons, r.reasons[i])
		c.codes = append(c.codes, r.codes[i])
		c.since = append(c.since, r.since[i])
		c.statusSince = append(c.statusSince, r.produced[x.start])
		c.extends = append(c.extends, x.start == x.first)
		c.eventID = append(c.eventID, r.id[i])
		c.partition = append(c.partition, r.partition[i])
		c.offset = append(c.offset, r.offset[i])
	}
	return c
}

func (c currentRows) args() []any {
	return []any{c.customer, c.premise, c.program, c.utility, c.secondary, c.eligible, c.reasons, c.since,
		c.statusSince, c.extends, c.eventID, c.partition, c.offset, c.codes}
}

type correctionRows struct {
	common
	servicePoint, kind, rule []string
	dateTo                   []time.Time
	duration                 []int32
	oldValue, newValue       []float64
	oldCharge, newCharge     []*float64
	newDateTo                []time.Time
	newDuration              []int32
	// Interval corrections (I2) only; null otherwise.
	channel                  []*string
	intervalEnd              []*time.Time
	intervalMinutes          []*int32
	oldEstimate, newEstimate []*bool
}

func (r *correctionRows) add(ev sink.Event) error {
	n := ev.Native
	var (
		sp, kind, rule     string
		dateTo, newDateTo  time.Time
		dur, newDur        int32
		oldV, newV         float64
		errs               fieldErrors
		oldCharge, newChrg = optDouble(n["old_charge"]), optDouble(n["new_charge"])
	)
	sp = errs.str(n, "service_point_id")
	kind = errs.str(n, "kind")
	rule = errs.str(n, "rule")
	dateTo = errs.date(n, "date_to")
	newDateTo = errs.date(n, "new_date_to")
	dur = errs.int(n, "duration")
	newDur = errs.int(n, "new_duration")
	oldV = errs.double(n, "old_value")
	newV = errs.double(n, "new_value")
	if errs.err != nil {
		return errs.err
	}
	if err := r.common.add(ev); err != nil {
		return err
	}
	r.servicePoint = append(r.servicePoint, sp)
	r.kind = append(r.kind, kind)
	r.rule = append(r.rule, rule)
	r.dateTo = append(r.dateTo, dateTo)
	r.duration = append(r.duration, dur)
	r.oldValue = append(r.oldValue, oldV)
	r.newValue = append(r.newValue, newV)
	r.oldCharge = append(r.oldCharge, oldCharge)
	r.newCharge = append(r.newCharge, newChrg)
	r.newDateTo = append(r.newDateTo, newDateTo)
	r.newDuration = append(r.newDuration, newDur)
	r.channel = append(r.channel, optString(n["channel"]))
	r.intervalEnd = append(r.intervalEnd, optDate(n["interval_end"]))
	r.intervalMinutes = append(r.intervalMinutes, optInt(n["interval_minutes"]))
	r.oldEstimate = append(r.oldEstimate, optBool(n["old_estimate"]))
	r.newEstimate = append(r.newEstimate, optBool(n["new_estimate"]))
	return nil
}

func (r *correctionRows) args() []any {
	return append(r.common.args(), r.servicePoint, r.kind, r.rule, r.dateTo, r.duration, r.oldValue, r.newValue,
		r.oldCharge, r.newCharge, r.newDateTo, r.newDuration, r.channel, r.intervalEnd, r.intervalMinutes, r.oldEstimate, r.newEstimate)
}

type accountRows struct {
	common
	servicePoint, account, customer, premise []string
	secondary                                []*string
	typ, rule                                []string
	date                                     []time.Time
	detail                                   []*string
}

func (r *accountRows) add(ev sink.Event) error {
	n := ev.Native
	var errs fieldErrors
	sp, acct, cust, prem := errs.str(n, "service_point_id"), errs.str(n, "account_id"), errs.str(n, "customer_id"), errs.str(n, "premise_id")
	typ, rule, date := errs.str(n, "type"), errs.str(n, "rule"), errs.date(n, "date")
	if errs.err != nil {
		return errs.err
	}
	if err := r.common.add(ev); err != nil {
		return err
	}
	r.servicePoint = append(r.servicePoint, sp)
	r.account = append(r.account, acct)
	r.customer = append(r.customer, cust)
	r.premise = append(r.premise, prem)
	r.secondary = append(r.secondary, optString(n["secondary_id"]))
	r.typ = append(r.typ, typ)
	r.rule = append(r.rule, rule)
	r.date = append(r.date, date)
	r.detail = append(r.detail, optString(n["detail"]))
	return nil
}

func (r *accountRows) args() []any {
	return append(r.common.args(), r.servicePoint, r.account, r.customer, r.premise, r.secondary, r.typ, r.rule, r.date, r.detail)
}

type anomalyRows struct {
	common
	servicePoint, code, rule, message []string
	effective                         []time.Time
	until                             []*time.Time
	cleared                           []bool
	account, customer, premise, sec   []*string
}

func (r *anomalyRows) add(ev sink.Event) error {
	n := ev.Native
	var errs fieldErrors
	sp, code, rule, msg := errs.str(n, "service_point_id"), errs.str(n, "code"), errs.str(n, "rule"), errs.str(n, "message")
	eff := errs.date(n, "effective_date")
	cleared, ok := n["cleared"].(bool)
	if !ok && errs.err == nil {
		errs.err = fmt.Errorf("field cleared: want a boolean, got %T", n["cleared"])
	}
	if errs.err != nil {
		return errs.err
	}
	if err := r.common.add(ev); err != nil {
		return err
	}
	r.servicePoint = append(r.servicePoint, sp)
	r.code = append(r.code, code)
	r.rule = append(r.rule, rule)
	r.message = append(r.message, msg)
	r.effective = append(r.effective, eff)
	r.until = append(r.until, optDate(n["until"]))
	r.cleared = append(r.cleared, cleared)
	r.account = append(r.account, optString(n["account_id"]))
	r.customer = append(r.customer, optString(n["customer_id"]))
	r.premise = append(r.premise, optString(n["premise_id"]))
	r.sec = append(r.sec, optString(n["secondary_id"]))
	return nil
}

func (r *anomalyRows) args() []any {
	return append(r.common.args(), r.servicePoint, r.code, r.rule, r.message, r.effective, r.until, r.cleared,
		r.account, r.customer, r.premise, r.sec)
}

// Reading goavro's native form: records are maps, non-null union values are
// single-entry maps keyed by the branch ("string", "long", "int.date", ...),
// dates are time.Time.

type fieldErrors struct{ err error }

func (e *fieldErrors) str(n map[string]any, f string) string {
	s, err := str(n, f)
	if err != nil && e.err == nil {
		e.err = err
	}
	return s
}

func (e *fieldErrors) date(n map[string]any, f string) time.Time {
	t, ok := n[f].(time.Time)
	if !ok && e.err == nil {
		e.err = fmt.Errorf("field %s: want a date, got %T", f, n[f])
	}
	return t
}

func (e *fieldErrors) int(n map[string]any, f string) int32 {
	v, ok := n[f].(int32)
	if !ok && e.err == nil {
		e.err = fmt.Errorf("field %s: want an int, got %T", f, n[f])
	}
	return v
}

func (e *fieldErrors) double(n map[string]any, f string) float64 {
	v, ok := n[f].(float64)
	if !ok && e.err == nil {
		e.err = fmt.Errorf("field %s: want a double, got %T", f, n[f])
	}
	return v
}

func str(n map[string]any, f string) (string, error) {
	s, ok := n[f].(string)
	if !ok {
		return "", fmt.Errorf("field %s: want a string, got %T", f, n[f])
	}
	return s, nil
}

func unionValue(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, x := range m {
			return x
		}
	}
	return v
}

func optString(v any) *string {
	if s, ok := unionValue(v).(string); ok {
		return &s
	}
	return nil
}

func optLong(v any) *int64 {
	if n, ok := unionValue(v).(int64); ok {
		return &n
	}
	return nil
}

func optDouble(v any) *float64 {
	if f, ok := unionValue(v).(float64); ok {
		return &f
	}
	return nil
}

func optInt(v any) *int32 {
	if n, ok := unionValue(v).(int32); ok {
		return &n
	}
	return nil
}

func optBool(v any) *bool {
	if b, ok := unionValue(v).(bool); ok {
		return &b
	}
	return nil
}

// optDate reads a nullable date or timestamp (both time.Time when decoded).
func optDate(v any) *time.Time {
	if t, ok := unionValue(v).(time.Time); ok {
		return &t
	}
	return nil
}

func dateString(t *time.Time) *string {
	if t == nil {
		return nil
	}
	d := t.Format(time.DateOnly)
	return &d
}

// reasonDoc and sourceDoc are the JSON of a reason and of a Cause record
// (null file and line omitted) in the jsonb columns.
type reasonDoc struct {
	Code           string     `json:"code"`
	Rule           string     `json:"rule"`
	ServicePointID *string    `json:"service_point_id"`
	EffectiveDate  string     `json:"effective_date"`
	Until          *string    `json:"until"`
	Source         *sourceDoc `json:"source"`
}

type sourceDoc struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	File      *string `json:"file,omitempty"`
	Line      *int64  `json:"line,omitempty"`
}

func sourceOf(m map[string]any) *sourceDoc {
	if m == nil {
		return nil
	}
	topic, _ := m["topic"].(string)
	partition, _ := m["partition"].(int32)
	offset, _ := m["offset"].(int64)
	return &sourceDoc{Topic: topic, Partition: partition, Offset: offset, File: optString(m["file"]), Line: optLong(m["line"])}
}
