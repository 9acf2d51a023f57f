package records

import "github.com/usagestream/usagestream/internal/dates"

// Layout names which columns a billing file carries (docs/data-contract.md §2.2), or,
// as LayoutInterval, that a file holds interval reads.
type Layout string

const (
	LayoutFull     Layout = "full"
	LayoutCustomer Layout = "customer"
	LayoutUsage    Layout = "usage"
	// LayoutInterval is the layout name of interval files in file events and
	// rejected rows; no billing file has it.
	LayoutInterval Layout = "interval"
)

// DefaultServiceTypes returns the service_type list used when no list is
// configured (docs/data-contract.md §2.4 decision), a fresh copy.
func DefaultServiceTypes() []string { return []string{"E", "G", "W"} }

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

// BillingRow is one accepted billing row, typed. Strings use "" for null (the
// file's null is the empty string, docs/data-contract.md §2.1). Which groups are
// filled depends on Layout: the customer layout leaves the usage fields zero,
// the usage layout fills only ServicePointID and the usage fields.
type BillingRow struct {
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
func (r *BillingRow) PeriodStart() dates.Date { return r.DateTo.AddDays(1 - int(r.Duration)) }
