package billing

import "github.com/usagestream/usagestream/records"

// Record is one data line: exactly one of Row or Rejected is set.
type Record struct {
	Row      *records.BillingRow
	Rejected *records.Rejected
}
