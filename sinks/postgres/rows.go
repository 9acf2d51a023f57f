package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	recavro "github.com/usagestream/usagestream/records/avro"
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

func (r *eligibilityRows) add(ev sink.Event, e *recavro.EligibilityChanged) error {
	var since *time.Time
	out := make([]reasonDoc, 0, len(e.Reasons))
	codes := make([]string, 0, len(e.Reasons))
	for i, x := range e.Reasons {
		if x.Code == "" || strings.Contains(x.Code, ",") {
			return fmt.Errorf("field reasons[%d].code: %q is not a reason code", i, x.Code)
		}
		eff := x.EffectiveDate.Time()
		if !e.Eligible && (since == nil || eff.Before(*since)) {
			since = &eff
		}
		codes = append(codes, x.Code)
		out = append(out, reasonDoc{Code: x.Code, Rule: x.Rule, ServicePointID: x.ServicePointID,
			EffectiveDate: eff.Format(time.DateOnly), Until: dateString(x.Until), Source: sourceOf(&x.Source)})
	}
	rj, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := r.common.add(ev, e.EventID, e.Utility, &e.Cause); err != nil {
		return err
	}
	r.customer = append(r.customer, e.CustomerID)
	r.premise = append(r.premise, e.PremiseID)
	r.secondary = append(r.secondary, e.SecondaryID)
	r.program = append(r.program, e.Program)
	r.eligible = append(r.eligible, e.Eligible)
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

func (r *correctionRows) add(ev sink.Event, c *recavro.UsageCorrected) error {
	if err := r.common.add(ev, c.EventID, c.Utility, &c.Cause); err != nil {
		return err
	}
	r.servicePoint = append(r.servicePoint, c.ServicePointID)
	r.kind = append(r.kind, c.Kind)
	r.rule = append(r.rule, c.Rule)
	r.dateTo = append(r.dateTo, c.DateTo.Time())
	r.duration = append(r.duration, c.Duration)
	r.oldValue = append(r.oldValue, c.OldValue)
	r.newValue = append(r.newValue, c.NewValue)
	r.oldCharge = append(r.oldCharge, c.OldCharge)
	r.newCharge = append(r.newCharge, c.NewCharge)
	r.newDateTo = append(r.newDateTo, c.NewDateTo.Time())
	r.newDuration = append(r.newDuration, c.NewDuration)
	r.channel = append(r.channel, c.Channel)
	r.intervalEnd = append(r.intervalEnd, c.IntervalEnd)
	r.intervalMinutes = append(r.intervalMinutes, c.IntervalMinutes)
	r.oldEstimate = append(r.oldEstimate, c.OldEstimate)
	r.newEstimate = append(r.newEstimate, c.NewEstimate)
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

func (r *accountRows) add(ev sink.Event, a *recavro.AccountEvent) error {
	if err := r.common.add(ev, a.EventID, a.Utility, &a.Cause); err != nil {
		return err
	}
	r.servicePoint = append(r.servicePoint, a.ServicePointID)
	r.account = append(r.account, a.AccountID)
	r.customer = append(r.customer, a.CustomerID)
	r.premise = append(r.premise, a.PremiseID)
	r.secondary = append(r.secondary, a.SecondaryID)
	r.typ = append(r.typ, a.Type)
	r.rule = append(r.rule, a.Rule)
	r.date = append(r.date, a.Date.Time())
	r.detail = append(r.detail, a.Detail)
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

func (r *anomalyRows) add(ev sink.Event, a *recavro.Anomaly) error {
	if err := r.common.add(ev, a.EventID, a.Utility, &a.Cause); err != nil {
		return err
	}
	r.servicePoint = append(r.servicePoint, a.ServicePointID)
	r.code = append(r.code, a.Code)
	r.rule = append(r.rule, a.Rule)
	r.message = append(r.message, a.Message)
	r.effective = append(r.effective, a.EffectiveDate.Time())
	r.until = append(r.until, dateTime(a.Until))
	r.cleared = append(r.cleared, a.Cleared)
	r.account = append(r.account, a.AccountID)
	r.customer = append(r.customer, a.CustomerID)
	r.premise = append(r.premise, a.PremiseID)
	r.sec = append(r.sec, a.SecondaryID)
	return nil
}

func (r *anomalyRows) args() []any {
	return append(r.common.args(), r.servicePoint, r.code, r.rule, r.message, r.effective, r.until, r.cleared,
		r.account, r.customer, r.premise, r.sec)
}

func dateTime(d *dates.Date) *time.Time {
	if d == nil {
		return nil
	}
	t := d.Time()
	return &t
}

func dateString(d *dates.Date) *string {
	if d == nil {
		return nil
	}
	s := d.Time().Format(time.DateOnly)
	return &s
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

func sourceOf(c *recavro.Cause) *sourceDoc {
	return &sourceDoc{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset, File: c.File, Line: c.Line}
}
