package interval

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/producers/billing"
)

// Origin says where a read came from (the IntervalOrigin record).
type Origin struct {
	Utility string
	Kind    string // OriginFile, OriginAdapter or OriginHTTP
	Name    string // file base name or adapter name
	SHA256  string // files only
}

const (
	OriginFile    = "file"
	OriginAdapter = "adapter"
	OriginHTTP    = "http"
)

// The IntervalRead schema (schemas/interval_read.avsc) is fixed and small, so
// it is encoded and decoded here by hand: a generic goavro map per read cost
// more than the rest of ingest together at ten million reads a file.
// TestAvroMatchesGoavro holds the hand-written form to goavro, byte for byte,
// in both directions.

// AppendAvro appends r in the Confluent framing (magic 0, the 4-byte schema
// id, Avro binary of IntervalRead) to dst.
func AppendAvro(dst []byte, schemaID int, r *Read, o Origin) []byte {
	dst = append(dst, 0, byte(schemaID>>24), byte(schemaID>>16), byte(schemaID>>8), byte(schemaID))
	dst = appendString(dst, o.Utility)
	dst = appendString(dst, r.ServicePointID)
	dst = appendString(dst, r.Channel)
	dst = appendOptString(dst, r.ServiceType)
	dst = binary.AppendVarint(dst, r.EndMillis)
	dst = binary.AppendVarint(dst, int64(r.LocalDate))
	dst = binary.AppendVarint(dst, int64(r.LocalTime))
	dst = binary.AppendVarint(dst, int64(r.OffsetMinutes))
	dst = appendBool(dst, r.OffsetGiven)
	dst = binary.AppendVarint(dst, int64(r.Minutes))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(r.Value))
	dst = appendString(dst, r.Units)
	dst = binary.AppendVarint(dst, int64(estimateIndex(r.Estimate)))
	dst = appendString(dst, o.Kind)
	dst = appendString(dst, o.Name)
	if r.Line > 0 {
		dst = binary.AppendVarint(dst, 1)
		dst = binary.AppendVarint(dst, r.Line)
	} else {
		dst = binary.AppendVarint(dst, 0)
	}
	return appendOptString(dst, o.SHA256)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendVarint(dst, int64(len(s)))
	return append(dst, s...)
}

func appendOptString(dst []byte, s string) []byte {
	if s == "" {
		return binary.AppendVarint(dst, 0)
	}
	return appendString(binary.AppendVarint(dst, 1), s)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func estimateIndex(e billing.Estimate) int {
	switch e {
	case billing.EstimateActual:
		return 0
	case billing.EstimateUser:
		return 2
	}
	return 1
}

var estimateSymbols = [...]billing.Estimate{billing.EstimateActual, billing.EstimateEstimated, billing.EstimateUser}

// ErrSchema says a record is not an IntervalRead this build can read by hand;
// decode it through the registry (FromNative) instead.
var ErrSchema = errors.New("not an IntervalRead of the embedded schema")

// DecodeAvro reads the Avro binary body (after the 5-byte framing) written by
// AppendAvro. Strings alias nothing: they are copied out of b.
func DecodeAvro(b []byte) (Read, Origin, error) {
	d := decoder{b: b}
	var r Read
	var o Origin
	o.Utility = d.str()
	r.ServicePointID = d.str()
	r.Channel = d.str()
	r.ServiceType = d.optStr()
	r.EndMillis = d.long()
	r.LocalDate = dates.Date(d.long())
	r.LocalTime = int16(d.long())
	r.OffsetMinutes = int16(d.long())
	r.OffsetGiven = d.bool()
	r.Minutes = int16(d.long())
	r.Value = d.double()
	r.Units = d.str()
	if i := d.long(); i >= 0 && i < int64(len(estimateSymbols)) {
		r.Estimate = estimateSymbols[i]
	} else {
		d.fail()
	}
	o.Kind = d.str()
	o.Name = d.str()
	switch d.long() {
	case 0:
	case 1:
		r.Line = d.long()
	default:
		d.fail()
	}
	o.SHA256 = d.optStr()
	if d.err == nil && d.i != len(b) {
		d.fail()
	}
	if d.err != nil {
		return Read{}, Origin{}, fmt.Errorf("decoding an IntervalRead: %w", d.err)
	}
	return r, o, nil
}

type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: malformed at byte %d", ErrSchema, d.i)
	}
}

func (d *decoder) long() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.i += n
	return v
}

func (d *decoder) str() string {
	n := d.long()
	if d.err != nil || n < 0 || int64(len(d.b)-d.i) < n {
		d.fail()
		return ""
	}
	s := string(d.b[d.i : d.i+int(n)])
	d.i += int(n)
	return s
}

func (d *decoder) optStr() string {
	switch d.long() {
	case 0:
		return ""
	case 1:
		return d.str()
	}
	d.fail()
	return ""
}

func (d *decoder) bool() bool {
	if d.err != nil || d.i >= len(d.b) || d.b[d.i] > 1 {
		d.fail()
		return false
	}
	d.i++
	return d.b[d.i-1] == 1
}

func (d *decoder) double() float64 {
	if d.err != nil || len(d.b)-d.i < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.i:]))
	d.i += 8
	return v
}

// Native is r in goavro's native form, for tests and for any writer that
// goes through serde.Codec.
func Native(r *Read, o Origin) map[string]any {
	var line any
	if r.Line > 0 {
		line = goavro.Union("long", r.Line)
	}
	return map[string]any{
		"utility": o.Utility, "service_point_id": r.ServicePointID, "channel": r.Channel,
		"service_type": serde.OptString(r.ServiceType), "interval_end": time.UnixMilli(r.EndMillis).UTC(),
		"local_date": r.LocalDate.Time(), "local_time": int32(r.LocalTime), "utc_offset_minutes": int32(r.OffsetMinutes),
		"offset_given": r.OffsetGiven, "minutes": int32(r.Minutes), "value": r.Value, "units": r.Units,
		"is_estimate": string(rune(r.Estimate)),
		"origin":      map[string]any{"kind": o.Kind, "name": o.Name, "line": line, "file_sha256": serde.OptString(o.SHA256)},
	}
}

// FromNative reads a decoded IntervalRead (any schema version the registry
// resolved) back into a Read.
func FromNative(m map[string]any) (Read, Origin, error) {
	var r Read
	var o Origin
	var errs []error
	str := func(m map[string]any, k string) string {
		switch v := m[k].(type) {
		case string:
			return v
		case map[string]any:
			if s, ok := v["string"].(string); ok {
				return s
			}
		case nil:
			return ""
		}
		errs = append(errs, fmt.Errorf("field %s is %T", k, m[k]))
		return ""
	}
	i32 := func(k string) int32 {
		v, ok := m[k].(int32)
		if !ok {
			errs = append(errs, fmt.Errorf("field %s is %T", k, m[k]))
		}
		return v
	}
	o.Utility = str(m, "utility")
	r.ServicePointID = str(m, "service_point_id")
	r.Channel = str(m, "channel")
	r.ServiceType = str(m, "service_type")
	if t, ok := m["interval_end"].(time.Time); ok {
		r.EndMillis = t.UnixMilli()
	} else {
		errs = append(errs, fmt.Errorf("field interval_end is %T", m["interval_end"]))
	}
	if t, ok := m["local_date"].(time.Time); ok {
		r.LocalDate = dates.FromTime(t)
	} else {
		errs = append(errs, fmt.Errorf("field local_date is %T", m["local_date"]))
	}
	r.LocalTime = int16(i32("local_time"))
	r.OffsetMinutes = int16(i32("utc_offset_minutes"))
	r.OffsetGiven, _ = m["offset_given"].(bool)
	r.Minutes = int16(i32("minutes"))
	r.Value, _ = m["value"].(float64)
	r.Units = str(m, "units")
	if e, ok := m["is_estimate"].(string); ok && len(e) == 1 {
		r.Estimate = billing.Estimate(e[0])
	} else {
		errs = append(errs, fmt.Errorf("field is_estimate is %v", m["is_estimate"]))
	}
	if om, ok := m["origin"].(map[string]any); ok {
		o.Kind = str(om, "kind")
		o.Name = str(om, "name")
		o.SHA256 = str(om, "file_sha256")
		if l, ok := om["line"].(map[string]any); ok {
			r.Line, _ = l["long"].(int64)
		}
	} else {
		errs = append(errs, errors.New("field origin is missing"))
	}
	if err := errors.Join(errs...); err != nil {
		return Read{}, Origin{}, fmt.Errorf("decoding an IntervalRead: %w", err)
	}
	return r, o, nil
}
