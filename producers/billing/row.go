package billing

import "github.com/usagestream/usagestream/internal/dates"

// Estimate is the is_estimate flag: A actual, E estimated (the default when
// empty), U user-reported (treated as estimated).
type Estimate byte

const (
	EstimateActual    Estimate = 'A'
	EstimateEstimated Estimate = 'E'
	EstimateUser      Estimate = 'U'
)

// NullDate is a date column that may be empty (null).
type NullDate struct {
	Date  dates.Date
	Valid bool
}

// NullFloat is a number column that may be empty (null).
type NullFloat struct {
	Value float64
	Valid bool
}

// Row is one accepted billing row, typed. Strings use "" for null (the file's
// null is the empty string, docs/data-contract.md §2.1). Which groups are filled depends
// on Layout: the customer layout leaves the usage fields zero, the usage layout
// fills only ServicePointID and the usage fields.
type Row struct {
	Layout Layout
	Line   int64 // 1-based physical line in the (decompressed) file; the header is line 1

	// Customer, premise, account.
	CustomerID        string
	PremiseID         string
	SecondaryID       string
	CCBAccountID      string
	CustomerType      string
	BusinessName      string
	AccountID         string
	ActiveDate        dates.Date
	InactiveDate      NullDate
	IsAccountDeletion bool
	ReadCycle         string
	RateCode          string

	// Service point.
	ServicePointID     string
	ServiceType        string
	ServiceHouseNumber string
	ServiceStreetName  string
	ServiceUnit        string
	ServiceCity        string
	ServiceState       string
	ServiceZipCode     string
	MeterType          string
	MeterUnit          string
	BldgSqFoot         NullFloat

	// Usage value.
	UsageValue  float64
	DateTo      dates.Date
	Duration    int32
	IsEstimate  Estimate
	UsageCharge NullFloat

	// Extra holds unknown trailing columns (docs/data-contract.md §2.1 decision), by
	// header name, in file order. They may be personal data.
	Extra []Attribute
}

// Attribute is one extra trailing column.
type Attribute struct {
	Name  string
	Value string
}

// PeriodStart is the first day of the billed period: date_to - duration + 1.
func (r *Row) PeriodStart() dates.Date { return r.DateTo.AddDays(1 - int(r.Duration)) }
