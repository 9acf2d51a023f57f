// Package avro holds every Avro record usagestream writes or reads as a
// typed Go struct, one per schema of schemas/, and their codecs (through
// github.com/twmb/avro, compiled once from the embedded schemas): framed
// encoding for producers and processors, decoding of any registered version
// (Avro schema resolution against the schema of this build) for stages,
// sinks and tools, and the JSON rendering of records that tail and the
// JSON Lines sink write.
//
// The structs mirror the schemas field by field, in schema order. An Avro
// ["null", T] union is a *T (nil is null); a date is a dates.Date (days
// since 1970-01-01); a timestamp-millis is a time.Time in UTC, except the
// interval end of IntervalRead, kept in epoch milliseconds on the hot path of
// meter reads; an enum is its symbol as a string.
package avro

import (
	"time"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
	"github.com/usagestream/usagestream/schemas"
)

// Record is one of the typed records of this package.
type Record interface {
	// Schema names the record's schema in schemas/.
	Schema() schemas.Name
}

// Cause is the input that caused an event: its Kafka position and, for
// file rows, the file and line.
type Cause struct {
	Topic     string  `avro:"topic"`
	Partition int32   `avro:"partition"`
	Offset    int64   `avro:"offset"`
	File      *string `avro:"file"`
	Line      *int64  `avro:"line"`
}

// Reason is one thing that blocks a program for a subject.
type Reason struct {
	Code           string      `avro:"code"`
	Rule           string      `avro:"rule"`
	ServicePointID *string     `avro:"service_point_id"`
	EffectiveDate  dates.Date  `avro:"effective_date"`
	Until          *dates.Date `avro:"until"`
	Source         Cause       `avro:"source"`
}

// EligibilityChanged is schemas/eligibility_changed.avsc.
type EligibilityChanged struct {
	EventID     string   `avro:"event_id"`
	Utility     string   `avro:"utility"`
	CustomerID  string   `avro:"customer_id"`
	PremiseID   string   `avro:"premise_id"`
	SecondaryID *string  `avro:"secondary_id"`
	Program     string   `avro:"program"`
	Eligible    bool     `avro:"eligible"`
	Reasons     []Reason `avro:"reasons"`
	Cause       Cause    `avro:"cause"`
}

// UsageCorrected is schemas/usage_corrected.avsc.
type UsageCorrected struct {
	EventID         string     `avro:"event_id"`
	Utility         string     `avro:"utility"`
	ServicePointID  string     `avro:"service_point_id"`
	Kind            string     `avro:"kind"`
	Rule            string     `avro:"rule"`
	DateTo          dates.Date `avro:"date_to"`
	Duration        int32      `avro:"duration"`
	OldValue        float64    `avro:"old_value"`
	NewValue        float64    `avro:"new_value"`
	OldCharge       *float64   `avro:"old_charge"`
	NewCharge       *float64   `avro:"new_charge"`
	NewDateTo       dates.Date `avro:"new_date_to"`
	NewDuration     int32      `avro:"new_duration"`
	Cause           Cause      `avro:"cause"`
	Channel         *string    `avro:"channel"`
	IntervalEnd     *time.Time `avro:"interval_end"`
	IntervalMinutes *int32     `avro:"interval_minutes"`
	OldEstimate     *bool      `avro:"old_estimate"`
	NewEstimate     *bool      `avro:"new_estimate"`
}

// AccountEvent is schemas/account_event.avsc.
type AccountEvent struct {
	EventID        string     `avro:"event_id"`
	Utility        string     `avro:"utility"`
	ServicePointID string     `avro:"service_point_id"`
	AccountID      string     `avro:"account_id"`
	CustomerID     string     `avro:"customer_id"`
	PremiseID      string     `avro:"premise_id"`
	SecondaryID    *string    `avro:"secondary_id"`
	Type           string     `avro:"type"`
	Rule           string     `avro:"rule"`
	Date           dates.Date `avro:"date"`
	Detail         *string    `avro:"detail"`
	Cause          Cause      `avro:"cause"`
}

// Anomaly is schemas/anomaly.avsc.
type Anomaly struct {
	EventID        string      `avro:"event_id"`
	Utility        string      `avro:"utility"`
	ServicePointID string      `avro:"service_point_id"`
	Code           string      `avro:"code"`
	Rule           string      `avro:"rule"`
	Message        string      `avro:"message"`
	EffectiveDate  dates.Date  `avro:"effective_date"`
	Until          *dates.Date `avro:"until"`
	Cleared        bool        `avro:"cleared"`
	AccountID      *string     `avro:"account_id"`
	CustomerID     *string     `avro:"customer_id"`
	PremiseID      *string     `avro:"premise_id"`
	SecondaryID    *string     `avro:"secondary_id"`
	Cause          Cause       `avro:"cause"`
}

// SourceRef is where a billing file row came from.
type SourceRef struct {
	File       string `avro:"file"`
	Line       int64  `avro:"line"`
	FileSHA256 string `avro:"file_sha256"`
}

// RejectReason is one reason a row was rejected.
type RejectReason struct {
	Field   *string `avro:"field"`
	Code    string  `avro:"code"`
	Rule    string  `avro:"rule"`
	Message string  `avro:"message"`
}

// RejectedRow is schemas/rejected_row.avsc.
type RejectedRow struct {
	Utility        string         `avro:"utility"`
	Layout         string         `avro:"layout"`
	Source         SourceRef      `avro:"source"`
	Raw            string         `avro:"raw"`
	ServicePointID *string        `avro:"service_point_id"`
	Reasons        []RejectReason `avro:"reasons"`
}

// File statuses (the FileStatus enum).
const (
	FileReceived  = "RECEIVED"
	FileCompleted = "COMPLETED"
	FileFailed    = "FAILED"
)

// FileEvent is schemas/file_event.avsc.
type FileEvent struct {
	EventID         string           `avro:"event_id"`
	Status          string           `avro:"status"`
	Utility         string           `avro:"utility"`
	File            string           `avro:"file"`
	FileSHA256      string           `avro:"file_sha256"`
	SizeBytes       int64            `avro:"size_bytes"`
	Generation      int32            `avro:"generation"`
	Layout          string           `avro:"layout"`
	Kind            string           `avro:"kind"`
	Population      *string          `avro:"population"`
	SpecVersion     *string          `avro:"spec_version"`
	NameTimestamp   *time.Time       `avro:"name_timestamp"`
	NameConforms    bool             `avro:"name_conforms"`
	EventTime       time.Time        `avro:"event_time"`
	RowsRead        int64            `avro:"rows_read"`
	RowsPublished   int64            `avro:"rows_published"`
	RowsRejected    int64            `avro:"rows_rejected"`
	RejectedByCode  map[string]int64 `avro:"rejected_by_code"`
	ResumedFromLine int64            `avro:"resumed_from_line"`
	Error           *string          `avro:"error"`
}

// IntervalOrigin is where an interval read came from.
type IntervalOrigin struct {
	Kind       string  `avro:"kind"`
	Name       string  `avro:"name"`
	Line       *int64  `avro:"line"`
	FileSHA256 *string `avro:"file_sha256"`
}

// IntervalRead is schemas/interval_read.avsc.
type IntervalRead struct {
	Utility        string  `avro:"utility"`
	ServicePointID string  `avro:"service_point_id"`
	Channel        string  `avro:"channel"`
	ServiceType    *string `avro:"service_type"`
	// IntervalEndMillis is the timestamp-millis interval_end as epoch
	// milliseconds: ten million reads a file make a time.Time a cost.
	IntervalEndMillis int64          `avro:"interval_end"`
	LocalDate         dates.Date     `avro:"local_date"`
	LocalTime         int32          `avro:"local_time"`
	UTCOffsetMinutes  int32          `avro:"utc_offset_minutes"`
	OffsetGiven       bool           `avro:"offset_given"`
	Minutes           int32          `avro:"minutes"`
	Value             float64        `avro:"value"`
	Units             string         `avro:"units"`
	IsEstimate        string         `avro:"is_estimate"`
	Origin            IntervalOrigin `avro:"origin"`
}

// BillingRow is schemas/billing_row.avsc.
type BillingRow struct {
	Utility            string            `avro:"utility"`
	Layout             string            `avro:"layout"`
	Source             SourceRef         `avro:"source"`
	CustomerID         *string           `avro:"customer_id"`
	PremiseID          *string           `avro:"premise_id"`
	SecondaryID        *string           `avro:"secondary_id"`
	CCBAccountID       *string           `avro:"ccb_account_id"`
	CustomerType       *string           `avro:"customer_type"`
	BusinessName       *string           `avro:"business_name"`
	AccountID          *string           `avro:"account_id"`
	ActiveDate         *dates.Date       `avro:"active_date"`
	InactiveDate       *dates.Date       `avro:"inactive_date"`
	IsAccountDeletion  bool              `avro:"is_account_deletion"`
	ReadCycle          *string           `avro:"read_cycle"`
	RateCode           *string           `avro:"rate_code"`
	ServicePointID     string            `avro:"service_point_id"`
	ServiceType        *string           `avro:"service_type"`
	ServiceHouseNumber *string           `avro:"service_house_number"`
	ServiceStreetName  *string           `avro:"service_street_name"`
	ServiceUnit        *string           `avro:"service_unit"`
	ServiceCity        *string           `avro:"service_city"`
	ServiceState       *string           `avro:"service_state"`
	ServiceZipCode     *string           `avro:"service_zip_code"`
	MeterType          *string           `avro:"meter_type"`
	MeterUnit          *string           `avro:"meter_unit"`
	BldgSqFoot         *float64          `avro:"bldg_sq_foot"`
	UsageValue         *float64          `avro:"usage_value"`
	DateTo             *dates.Date       `avro:"date_to"`
	Duration           *int32            `avro:"duration"`
	IsEstimate         *string           `avro:"is_estimate"`
	UsageCharge        *float64          `avro:"usage_charge"`
	Extra              map[string]string `avro:"extra"`
}

func (*EligibilityChanged) Schema() schemas.Name { return schemas.EligibilityChanged }
func (*UsageCorrected) Schema() schemas.Name     { return schemas.UsageCorrected }
func (*AccountEvent) Schema() schemas.Name       { return schemas.AccountEvent }
func (*Anomaly) Schema() schemas.Name            { return schemas.Anomaly }
func (*RejectedRow) Schema() schemas.Name        { return schemas.RejectedRow }
func (*FileEvent) Schema() schemas.Name          { return schemas.FileEvent }
func (*IntervalRead) Schema() schemas.Name       { return schemas.IntervalRead }
func (*BillingRow) Schema() schemas.Name         { return schemas.BillingRow }
func (*OperatorAction) Schema() schemas.Name     { return schemas.OperatorAction }

// OperatorAction is schemas/operator_action.avsc: records.OperatorAction,
// whose fields already mirror the schema, as a record of this package (so
// that tail and the decoders read the operator topics too).
type OperatorAction records.OperatorAction

// Opt is the ["null","string"] value of s: the file format's empty field is
// Avro null (docs/data-contract.md §2.1).
func Opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Deref is the string of an optional value, "" for null.
func Deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
