// Package schemas holds the Avro schemas of every topic usagestream writes.
// They are embedded in the binary and registered in a Confluent-compatible
// registry under the topic's value subject (TopicNameStrategy: <topic>-value).
//
// Evolution rule: every change must be BACKWARD compatible with the previous
// released version (a consumer on the new schema reads data written with the
// old one). Released versions live in history/<name>/v<N>.avsc; the tests fail
// when the current schema differs from the newest released one or breaks
// compatibility with it.
package schemas

import (
	"embed"
	"fmt"
)

//go:embed *.avsc history
var files embed.FS

// Name identifies one schema file (without .avsc).
type Name string

const (
	BillingRow   Name = "billing_row"
	RejectedRow  Name = "rejected_row"
	FileEvent    Name = "file_event"
	IntervalRead Name = "interval_read"

	EligibilityChanged Name = "eligibility_changed"
	UsageCorrected     Name = "usage_corrected"
	AccountEvent       Name = "account_event"
	Anomaly            Name = "anomaly"

	// OperatorAction is input like BillingRow: an operator's override.
	OperatorAction Name = "operator_action"
)

// All returns every schema the project publishes, a fresh list.
func All() []Name {
	return []Name{BillingRow, RejectedRow, FileEvent, IntervalRead, EligibilityChanged, UsageCorrected, AccountEvent, Anomaly, OperatorAction}
}

// Text returns the schema's JSON text.
func Text(n Name) (string, error) {
	b, err := files.ReadFile(string(n) + ".avsc")
	if err != nil {
		return "", fmt.Errorf("schema %q is not embedded in this binary: %w", n, err)
	}
	return string(b), nil
}

// MustText is Text for the names above, which are known to be embedded.
func MustText(n Name) string {
	s, err := Text(n)
	if err != nil {
		panic(err)
	}
	return s
}
