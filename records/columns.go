package records

import "slices"

// ColumnType is the type letter of docs/data-contract.md §2.4.
type ColumnType byte

const (
	TypeString  ColumnType = 'S'
	TypeDate    ColumnType = 'D' // yyyymmdd, a real calendar date
	TypeNumber  ColumnType = 'N' // decimal, no thousands separators
	TypeInteger ColumnType = 'I'
)

// Column describes one known billing column.
type Column struct {
	Name     string
	Type     ColumnType
	Required bool
	// Personal marks names, addresses and contacts: redacted in rejected rows and
	// never logged (design: personal data).
	Personal bool
	// Usage marks the usage columns (usage_value .. usage_charge).
	Usage bool
}

// BillingColumns returns the canonical column order of the full billing layout
// (docs/data-contract.md §2.4: the table's order is the canonical order), a fresh
// copy the caller may keep or change. Readers that look columns up per row copy
// it once, at set-up, or use BillingColumn.
func BillingColumns() []Column { return slices.Clone(billingColumns) }

// BillingColumn returns column i of BillingColumns without copying the list.
func BillingColumn(i int) Column { return billingColumns[i] }

var billingColumns = []Column{
	{Name: "customer_id", Type: TypeString, Required: true},
	{Name: "premise_id", Type: TypeString, Required: true},
	{Name: "secondary_id", Type: TypeString},
	{Name: "ccb_account_id", Type: TypeString},
	{Name: "customer_type", Type: TypeString},
	{Name: "business_name", Type: TypeString, Personal: true},
	{Name: "account_id", Type: TypeString, Required: true},
	{Name: "active_date", Type: TypeDate, Required: true},
	{Name: "inactive_date", Type: TypeDate},
	{Name: "is_account_deletion", Type: TypeString},
	{Name: "read_cycle", Type: TypeString},
	{Name: "rate_code", Type: TypeString},
	{Name: "service_point_id", Type: TypeString, Required: true},
	{Name: "service_type", Type: TypeString, Required: true},
	{Name: "service_house_number", Type: TypeString, Personal: true},
	{Name: "service_street_name", Type: TypeString, Personal: true},
	{Name: "service_unit", Type: TypeString, Personal: true},
	{Name: "service_city", Type: TypeString, Personal: true},
	{Name: "service_state", Type: TypeString},
	{Name: "service_zip_code", Type: TypeString, Personal: true},
	{Name: "meter_type", Type: TypeString},
	{Name: "meter_unit", Type: TypeString},
	{Name: "bldg_sq_foot", Type: TypeNumber},
	{Name: "usage_value", Type: TypeNumber, Required: true, Usage: true},
	{Name: "date_to", Type: TypeDate, Required: true, Usage: true},
	{Name: "duration", Type: TypeInteger, Required: true, Usage: true},
	{Name: "is_estimate", Type: TypeString, Usage: true},
	{Name: "usage_charge", Type: TypeNumber, Usage: true},
}

// LayoutColumns returns the known columns of a billing layout, in canonical order.
func LayoutColumns(l Layout) []Column {
	switch l {
	case LayoutCustomer:
		out := make([]Column, 0, len(billingColumns))
		for _, c := range billingColumns {
			if !c.Usage {
				out = append(out, c)
			}
		}
		return out
	case LayoutUsage:
		out := []Column{columnByName("service_point_id")}
		for _, c := range billingColumns {
			if c.Usage {
				out = append(out, c)
			}
		}
		return out
	default:
		return BillingColumns()
	}
}

// HeaderLine is the header row of a billing layout, without line end: what a
// file must start with.
func HeaderLine(l Layout) string {
	cols := LayoutColumns(l)
	b := make([]byte, 0, 512)
	for i, c := range cols {
		if i > 0 {
			b = append(b, '\t')
		}
		b = append(b, c.Name...)
	}
	return string(b)
}

func columnByName(name string) Column {
	for _, c := range billingColumns {
		if c.Name == name {
			return c
		}
	}
	panic("records: unknown billing column " + name)
}

// IntervalColumns returns the canonical column order of an interval file
// (docs/data-contract.md §3), a fresh copy.
func IntervalColumns() []string { return slices.Clone(intervalColumns) }

// IntervalColumn returns the name of column i of IntervalColumns without
// copying the list.
func IntervalColumn(i int) string { return intervalColumns[i] }

var intervalColumns = []string{
	"service_point_id", "usage_value", "date", "time", "units",
	"is_estimate", "UTC_offset", "service_type", "service_quantity_identifier",
}
