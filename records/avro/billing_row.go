package avro

// Billing rows to and from the BillingRow record: BillingCodec (billing.go).
// The goavro native-map mapping it replaced lives on in the tests as the
// reference it must match byte for byte (billing_goavro_test.go).

import (
	"github.com/usagestream/usagestream/records"
)

// BillingSource names the file a billing row came from.
type BillingSource struct {
	Utility string
	File    string
	SHA256  string
}

// DecodedBillingRow is a BillingRow record read back.
type DecodedBillingRow struct {
	Row    records.BillingRow
	Source BillingSource
	Line   int64
}

func estimateSymbol(e records.Estimate) string {
	switch e {
	case records.EstimateActual:
		return "A"
	case records.EstimateUser:
		return "U"
	}
	return "E"
}
