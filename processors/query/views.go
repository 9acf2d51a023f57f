package query

import (
	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/processors/rules"
)

// The JSON shapes of the API (docs/openapi.yaml describes them). They are
// built from the processors' state, never from it directly: the state's
// encoding is the runtime's business and may change without notice.

// Source says which input caused something: the topic position and, for
// billing rows, the file and line.
type Source struct {
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	File      string `json:"file,omitempty"`
	Line      int64  `json:"line,omitempty"`
}

// Period is one billing period of a service point's timeline.
type Period struct {
	Start    string   `json:"start"`
	DateTo   string   `json:"date_to"`
	Duration int32    `json:"duration"`
	Value    float64  `json:"value"`
	Charge   *float64 `json:"charge"`
}

// Account is one account's tenure at a service point.
type Account struct {
	AccountID    string  `json:"account_id"`
	CustomerID   string  `json:"customer_id"`
	PremiseID    string  `json:"premise_id"`
	SecondaryID  string  `json:"secondary_id,omitempty"`
	Status       string  `json:"status"` // active, superseded, terminated, deleted
	ActiveDate   string  `json:"active_date"`
	InactiveDate string  `json:"inactive_date,omitempty"`
	DeletedOn    string  `json:"deleted_on,omitempty"`
	RateCode     string  `json:"rate_code,omitempty"`
	RateSince    string  `json:"rate_since,omitempty"`
	Source       Source  `json:"source"`
	EndSource    *Source `json:"end_source,omitempty"`
}

// Anomaly is a condition open on a service point.
type Anomaly struct {
	Code          string `json:"code"`
	Rule          string `json:"rule"`
	AccountID     string `json:"account_id,omitempty"`
	From          string `json:"from,omitempty"`
	To            string `json:"to,omitempty"`
	EffectiveDate string `json:"effective_date"`
	Until         string `json:"until,omitempty"`
	Source        Source `json:"source"`
}

// ServicePoint is the answer for one service point.
type ServicePoint struct {
	ServicePointID string    `json:"service_point_id"`
	ServiceType    string    `json:"service_type,omitempty"`
	Partition      int32     `json:"partition"`
	Timeline       []Period  `json:"timeline"`
	Accounts       []Account `json:"accounts"`
	Anomalies      []Anomaly `json:"anomalies"`
}

// Reason is one thing that blocks a program.
type Reason struct {
	Code           string `json:"code"`
	Rule           string `json:"rule"`
	ServicePointID string `json:"service_point_id,omitempty"`
	EffectiveDate  string `json:"effective_date"`
	Until          string `json:"until,omitempty"`
	Source         Source `json:"source"`
}

// Program is the eligibility of a subject for one program.
type Program struct {
	Program  string   `json:"program"`
	Eligible bool     `json:"eligible"`
	Reasons  []Reason `json:"reasons"`
}

// Membership is what stage 1 last reported of one service point for the
// subject.
type Membership struct {
	ServicePointID string   `json:"service_point_id"`
	ServiceType    string   `json:"service_type,omitempty"`
	AccountID      string   `json:"account_id,omitempty"`
	ActiveDate     string   `json:"active_date,omitempty"`
	Active         bool     `json:"active"`
	Deleted        bool     `json:"deleted"`
	LastDateTo     string   `json:"last_date_to,omitempty"`
	ChainedMonths  int      `json:"chained_months"`
	Reasons        []Reason `json:"reasons"`
}

// Premise is the answer for a customer at a premise: the subject of
// eligibility.
type Premise struct {
	CustomerID    string       `json:"customer_id"`
	PremiseID     string       `json:"premise_id"`
	SecondaryID   string       `json:"secondary_id,omitempty"`
	Partition     int32        `json:"partition"`
	Evaluated     bool         `json:"evaluated"`
	Programs      []Program    `json:"programs"`
	ServicePoints []Membership `json:"service_points"`
}

// PremiseSummary is one premise in a customer's answer.
type PremiseSummary struct {
	PremiseID   string          `json:"premise_id"`
	SecondaryID string          `json:"secondary_id,omitempty"`
	Eligible    map[string]bool `json:"eligible"` // by program
}

// Customer is the answer for a customer: its premises and the customer-level
// reason (C2) if any.
type Customer struct {
	CustomerID      string           `json:"customer_id"`
	Partition       int32            `json:"partition"`
	ActivePremises  int              `json:"active_premises"`
	PropertyManager *Reason          `json:"property_manager,omitempty"`
	Premises        []PremiseSummary `json:"premises"`
}

// Error is the body of every answer that is not 200.
type Error struct {
	Error string `json:"error"`
	// Owner names the instance that holds the key, when another one does
	// (status 421).
	Owner *Owner `json:"owner,omitempty"`
}

// Owner is where a key lives.
type Owner struct {
	Member    string `json:"member"` // the group instance id
	URL       string `json:"url,omitempty"`
	Partition int32  `json:"partition"`
}

func day(d dates.Date) string {
	if d == 0 {
		return ""
	}
	return d.ISO()
}

func source(s rules.Source) Source {
	return Source{Topic: s.Topic, Partition: s.Partition, Offset: s.Offset, File: s.File, Line: s.Line}
}

func reasons(rs []rules.Reason) []Reason {
	out := make([]Reason, 0, len(rs))
	for _, r := range rs {
		out = append(out, Reason{Code: r.Code, Rule: r.Rule, ServicePointID: r.ServicePointID,
			EffectiveDate: day(r.EffectiveDate), Until: day(r.Until), Source: source(r.Source)})
	}
	return out
}

func servicePointView(sp *rules.ServicePoint, p int32) ServicePoint {
	v := ServicePoint{ServicePointID: sp.ID, ServiceType: sp.ServiceType, Partition: p,
		Timeline: make([]Period, 0, len(sp.Periods)), Accounts: make([]Account, 0, len(sp.Tenures)),
		Anomalies: make([]Anomaly, 0, len(sp.Open))}
	for _, per := range sp.Periods {
		pv := Period{Start: day(per.Start), DateTo: day(per.DateTo), Duration: per.Duration(), Value: per.Value}
		if per.HasCharge {
			c := per.Charge
			pv.Charge = &c
		}
		v.Timeline = append(v.Timeline, pv)
	}
	for i, t := range sp.Tenures {
		a := Account{AccountID: t.AccountID, CustomerID: t.CustomerID, PremiseID: t.PremiseID, SecondaryID: t.SecondaryID,
			Status: sp.TenureStatus(i), ActiveDate: day(t.ActiveDate), InactiveDate: day(t.InactiveDate),
			DeletedOn: day(t.DeletedOn), RateCode: t.RateCode, RateSince: day(t.RateSince), Source: source(t.Source)}
		if t.EndSource != (rules.Source{}) {
			es := source(t.EndSource)
			a.EndSource = &es
		}
		v.Accounts = append(v.Accounts, a)
	}
	for _, o := range sp.Open {
		v.Anomalies = append(v.Anomalies, Anomaly{Code: o.Code, Rule: o.Rule(), AccountID: o.AccountID,
			From: day(o.From), To: day(o.To), EffectiveDate: day(o.EffectiveDate), Until: day(o.Until), Source: source(o.Source)})
	}
	return v
}

func premiseView(c *rules.Customer, pr *rules.Premise, premiseID string, p int32) Premise {
	v := Premise{CustomerID: c.ID, PremiseID: premiseID, SecondaryID: pr.SecondaryID, Partition: p,
		Evaluated: pr.Evaluated, Programs: []Program{}, ServicePoints: []Membership{}}
	if pr.Evaluated {
		for _, prog := range rules.Programs() {
			v.Programs = append(v.Programs, Program{Program: prog, Eligible: pr.Eligible(prog), Reasons: reasons(pr.Sent[prog])})
		}
	}
	for _, id := range sortedKeys(pr.Points) {
		m := pr.Points[id]
		v.ServicePoints = append(v.ServicePoints, Membership{ServicePointID: id, ServiceType: m.ServiceType,
			AccountID: m.AccountID, ActiveDate: day(m.ActiveDate), Active: m.Active, Deleted: m.Deleted,
			LastDateTo: day(m.LastDateTo), ChainedMonths: m.ChainedMonths, Reasons: reasons(m.Reasons)})
	}
	return v
}

func customerView(c *rules.Customer, p int32) Customer {
	v := Customer{CustomerID: c.ID, Partition: p, ActivePremises: c.ActivePremises, Premises: []PremiseSummary{}}
	if c.PropertyManager != nil {
		r := reasons([]rules.Reason{*c.PropertyManager})[0]
		v.PropertyManager = &r
	}
	for _, id := range sortedKeys(c.Premises) {
		pr := c.Premises[id]
		s := PremiseSummary{PremiseID: id, SecondaryID: pr.SecondaryID, Eligible: map[string]bool{}}
		if pr.Evaluated {
			for _, prog := range rules.Programs() {
				s.Eligible[prog] = pr.Eligible(prog)
			}
		}
		v.Premises = append(v.Premises, s)
	}
	return v
}
