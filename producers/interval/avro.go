package interval

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/avro"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/records"
	recavro "github.com/usagestream/usagestream/records/avro"
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

// wireBuf is a recavro.IntervalRead with the targets of its optional
// fields, pooled so that neither encoding nor decoding allocates the record
// or its pointers: ten million reads a file.
type wireBuf struct {
	rec         recavro.IntervalRead
	serviceType string
	line        int64
	sha256      string
}

// Codec maps reads to and from the typed IntervalRead record of
// records/avro, encoded with twmb/avro: records of the schema embedded in
// this build directly, and records of any other registered version through
// Avro schema resolution (NewDecoder, NewResolver).
type Codec struct {
	s      *serde.Struct[recavro.IntervalRead]
	schema *avro.Schema // the embedded schema
	direct *Decoder
	bufs   sync.Pool
}

// NewCodec compiles the embedded IntervalRead schema.
func NewCodec() (*Codec, error) {
	s, err := recavro.Codec[recavro.IntervalRead]()
	if err != nil {
		return nil, err
	}
	c := &Codec{s: s, schema: s.Schema()}
	c.direct = &Decoder{c: c, d: s.Decoder(), schema: s.Schema()}
	c.bufs.New = func() any { return &wireBuf{} }
	return c, nil
}

// defaultCodec serves AppendAvro and DecodeAvro: the embedded schema never
// changes while the process runs, so one compiled codec serves every caller.
var defaultCodec = sync.OnceValues(NewCodec)

// AppendAvro appends r in the Confluent framing (magic 0, the 4-byte schema
// id, Avro binary of IntervalRead) to dst. It fails only on a read that the
// checks of this package would not have accepted (an unknown estimate flag).
func AppendAvro(dst []byte, schemaID int, r *records.IntervalRead, o Origin) ([]byte, error) {
	c, err := defaultCodec()
	if err != nil {
		return dst, err
	}
	return c.Append(dst, schemaID, r, o)
}

// DecodeAvro reads the Avro binary body (after the 5-byte framing) of a
// record written with the embedded schema.
func DecodeAvro(b []byte) (records.IntervalRead, Origin, error) {
	c, err := defaultCodec()
	if err != nil {
		return records.IntervalRead{}, Origin{}, err
	}
	return c.direct.Decode(b)
}

// Append is AppendAvro with c.
func (c *Codec) Append(dst []byte, schemaID int, r *records.IntervalRead, o Origin) ([]byte, error) {
	est, ok := estimateSymbol(r.Estimate)
	if !ok {
		return dst, fmt.Errorf("encoding the read of %s ending %s: is_estimate %q is not A, E or U", r.ServicePointID, time.UnixMilli(r.EndMillis).UTC().Format(time.RFC3339), rune(r.Estimate))
	}
	b := c.bufs.Get().(*wireBuf)
	defer c.bufs.Put(b)
	b.rec = recavro.IntervalRead{
		Utility: o.Utility, ServicePointID: r.ServicePointID, Channel: r.Channel,
		IntervalEndMillis: r.EndMillis, LocalDate: r.LocalDate, LocalTime: int32(r.LocalTime), UTCOffsetMinutes: int32(r.OffsetMinutes),
		OffsetGiven: r.OffsetGiven, Minutes: int32(r.Minutes), Value: r.Value, Units: r.Units, IsEstimate: est,
		Origin: recavro.IntervalOrigin{Kind: o.Kind, Name: o.Name},
	}
	if r.ServiceType != "" {
		b.serviceType = r.ServiceType
		b.rec.ServiceType = &b.serviceType
	}
	if r.Line > 0 {
		b.line = r.Line
		b.rec.Origin.Line = &b.line
	}
	if o.SHA256 != "" {
		b.sha256 = o.SHA256
		b.rec.Origin.FileSHA256 = &b.sha256
	}
	out, err := c.s.Append(dst, schemaID, &b.rec)
	b.serviceType, b.sha256, b.rec = "", "", recavro.IntervalRead{} // keep no caller strings alive in the pool
	if err != nil {
		return out, fmt.Errorf("encoding the read of %s: %w", r.ServicePointID, err)
	}
	return out, nil
}

// decode fills a pooled record with read (one writer schema's decoder, or
// a resolver) and maps it to a Read.
func (c *Codec) decode(read func(*recavro.IntervalRead) error) (records.IntervalRead, Origin, error) {
	b := c.bufs.Get().(*wireBuf)
	defer c.bufs.Put(b)
	b.rec = recavro.IntervalRead{ServiceType: &b.serviceType, Origin: recavro.IntervalOrigin{Line: &b.line, FileSHA256: &b.sha256}}
	err := read(&b.rec)
	w := b.rec
	b.rec = recavro.IntervalRead{}
	if err != nil {
		return records.IntervalRead{}, Origin{}, err
	}
	if w.LocalTime < 0 || w.LocalTime > 1439 || w.UTCOffsetMinutes < -1440 || w.UTCOffsetMinutes > 1440 || w.Minutes < 0 || w.Minutes > 1440 {
		return records.IntervalRead{}, Origin{}, quarantine.Poison(fmt.Errorf("interval read of %s: local_time %d, utc_offset_minutes %d or minutes %d out of range", w.ServicePointID, w.LocalTime, w.UTCOffsetMinutes, w.Minutes))
	}
	r := records.IntervalRead{
		ServicePointID: w.ServicePointID, Channel: w.Channel, EndMillis: w.IntervalEndMillis,
		LocalDate: w.LocalDate, LocalTime: int16(w.LocalTime), OffsetMinutes: int16(w.UTCOffsetMinutes), OffsetGiven: w.OffsetGiven,
		Minutes: int16(w.Minutes), Value: w.Value, Units: w.Units,
	}
	if len(w.IsEstimate) == 1 {
		r.Estimate = records.Estimate(w.IsEstimate[0])
	}
	o := Origin{Utility: w.Utility, Kind: w.Origin.Kind, Name: w.Origin.Name}
	if w.ServiceType != nil {
		r.ServiceType = *w.ServiceType
	}
	if w.Origin.Line != nil {
		r.Line = *w.Origin.Line
	}
	if w.Origin.FileSHA256 != nil {
		o.SHA256 = *w.Origin.FileSHA256
	}
	return r, o, nil
}

// Decoder reads IntervalRead records written with one writer schema.
type Decoder struct {
	c      *Codec
	d      *serde.Decoder[recavro.IntervalRead]
	schema *avro.Schema // what d reads with: the embedded schema, or a resolution
}

// NewDecoder returns a decoder for records written with writerSchema (a
// schema text from the registry): the embedded schema's own decoder when the
// two have the same canonical form, else the writer schema resolved against
// the embedded one by Avro's rules (fields added with defaults, promotions,
// fields the writer has and this build does not skipped).
func (c *Codec) NewDecoder(writerSchema string) (*Decoder, error) {
	d, err := c.s.NewDecoder(writerSchema)
	if err != nil {
		return nil, err
	}
	return &Decoder{c: c, d: d, schema: d.Schema()}, nil
}

// Decode reads the Avro binary body (after the 5-byte framing) of a record.
func (d *Decoder) Decode(body []byte) (records.IntervalRead, Origin, error) {
	return d.c.decode(func(w *recavro.IntervalRead) error { return d.d.Decode(body, w) })
}

// Resolver reads Confluent-framed IntervalRead records of any registered
// schema id, fetching each writer schema from the registry once. Safe for
// concurrent use.
type Resolver struct {
	c   *Codec
	res *serde.Resolver[recavro.IntervalRead]
	err error
}

// NewResolver is Codec.NewResolver with the codec AppendAvro uses. If the
// embedded schema did not compile (a broken build), every Decode says so.
func NewResolver(reg *serde.Registry) *Resolver {
	c, err := defaultCodec()
	if err != nil {
		return &Resolver{err: err}
	}
	return c.NewResolver(reg)
}

// NewResolver reads writer schemas from reg.
func (c *Codec) NewResolver(reg *serde.Registry) *Resolver {
	return &Resolver{c: c, res: c.s.NewResolver(reg)}
}

// Decode reads one framed record.
func (r *Resolver) Decode(ctx context.Context, framed []byte) (records.IntervalRead, Origin, error) {
	if r.err != nil {
		return records.IntervalRead{}, Origin{}, r.err
	}
	return r.c.decode(func(w *recavro.IntervalRead) error {
		_, err := r.res.Decode(ctx, framed, w)
		return err
	})
}

func estimateSymbol(e records.Estimate) (string, bool) {
	switch e {
	case records.EstimateActual:
		return "A", true
	case records.EstimateEstimated:
		return "E", true
	case records.EstimateUser:
		return "U", true
	}
	return "", false
}

// FromNative reads an IntervalRead in goavro's native form back into a
// Read: tests decode what the codec wrote with goavro, the reference, and
// read it with this (kafkatest.Decode).
func FromNative(m map[string]any) (records.IntervalRead, Origin, error) {
	var r records.IntervalRead
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
		r.Estimate = records.Estimate(e[0])
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
		return records.IntervalRead{}, Origin{}, fmt.Errorf("decoding an IntervalRead: %w", err)
	}
	return r, o, nil
}
