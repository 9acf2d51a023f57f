// Package billingavro maps billing rows to and from the BillingRow Avro
// record (schemas/billing_row.avsc): ingest encodes with it, the processors
// decode with it, so both sides agree field by field. Codec does both with a
// hamba/avro struct codec; the goavro native-map mapping it replaced lives on
// in the tests as the reference it must match byte for byte.
package billingavro

import (
	"github.com/usagestream/usagestream/records"
)

// Source names the file a row came from.
type Source struct {
	Utility string
	File    string
	SHA256  string
}

// Decoded is a BillingRow record read back.
type Decoded struct {
	Row    records.BillingRow
	Source Source
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
