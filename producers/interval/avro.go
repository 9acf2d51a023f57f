package interval

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/avro"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/schemas"
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

// wireRead is the IntervalRead record (schemas/interval_read.avsc) as
// twmb/avro maps it to Go: a struct codec built once per schema, instead of
// a goavro map per read, which cost more than the rest of ingest together at
// ten million reads a file.
type wireRead struct {
	Utility        string     `avro:"utility"`
	ServicePointID string     `avro:"service_point_id"`
	Channel        string     `avro:"channel"`
	ServiceType    *string    `avro:"service_type"`
	IntervalEnd    int64      `avro:"interval_end"`
	LocalDate      dates.Date `avro:"local_date"`
	LocalTime      int16      `avro:"local_time"`
	OffsetMinutes  int16      `avro:"utc_offset_minutes"`
	OffsetGiven    bool       `avro:"offset_given"`
	Minutes        int16      `avro:"minutes"`
	Value          float64    `avro:"value"`
	Units          string     `avro:"units"`
	Estimate       string     `avro:"is_estimate"`
	Origin         wireOrigin `avro:"origin"`
}

type wireOrigin struct {
	Kind   string  `avro:"kind"`
	Name   string  `avro:"name"`
	Line   *int64  `avro:"line"`
	SHA256 *string `avro:"file_sha256"`
}

// wireBuf is a wireRead with the targets of its optional fields, pooled so
// that neither encoding nor decoding allocates the record or its pointers.
type wireBuf struct {
	rec         wireRead
	serviceType string
	line        int64
	sha256      string
}

// Codec encodes and decodes IntervalRead records with twmb/avro (through
// serde.Struct): records of the schema embedded in this build directly, and
// records of any other registered version through Avro schema resolution
// (NewDecoder, NewResolver).
type Codec struct {
	s      *serde.Struct[wireRead]
	schema *avro.Schema // the embedded schema
	direct *Decoder
	bufs   sync.Pool
}

// NewCodec compiles the embedded IntervalRead schema.
func NewCodec() (*Codec, error) {
	s, err := serde.NewStruct[wireRead](schemas.MustText(schemas.IntervalRead))
	if err != nil {
		return nil, fmt.Errorf("IntervalRead: %w", err)
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
func AppendAvro(dst []byte, schemaID int, r *Read, o Origin) ([]byte, error) {
	c, err := defaultCodec()
	if err != nil {
		return dst, err
	}
	return c.Append(dst, schemaID, r, o)
}

// DecodeAvro reads the Avro binary body (after the 5-byte framing) of a
// record written with the embedded schema.
func DecodeAvro(b []byte) (Read, Origin, error) {
	c, err := defaultCodec()
	if err != nil {
		return Read{}, Origin{}, err
	}
	return c.direct.Decode(b)
}

// Append is AppendAvro with c.
func (c *Codec) Append(dst []byte, schemaID int, r *Read, o Origin) ([]byte, error) {
	est, ok := estimateSymbol(r.Estimate)
	if !ok {
		return dst, fmt.Errorf("encoding the read of %s ending %s: is_estimate %q is not A, E or U", r.ServicePointID, time.UnixMilli(r.EndMillis).UTC().Format(time.RFC3339), rune(r.Estimate))
	}
	b := c.bufs.Get().(*wireBuf)
	defer c.bufs.Put(b)
	b.rec = wireRead{
		Utility: o.Utility, ServicePointID: r.ServicePointID, Channel: r.Channel,
		IntervalEnd: r.EndMillis, LocalDate: r.LocalDate, LocalTime: r.LocalTime, OffsetMinutes: r.OffsetMinutes,
		OffsetGiven: r.OffsetGiven, Minutes: r.Minutes, Value: r.Value, Units: r.Units, Estimate: est,
		Origin: wireOrigin{Kind: o.Kind, Name: o.Name},
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
		b.rec.Origin.SHA256 = &b.sha256
	}
	out, err := c.s.Append(dst, schemaID, &b.rec)
	b.serviceType, b.sha256, b.rec = "", "", wireRead{} // keep no caller strings alive in the pool
	if err != nil {
		return out, fmt.Errorf("encoding the read of %s: %w", r.ServicePointID, err)
	}
	return out, nil
}

// decode fills a pooled wireRead with read (one writer schema's decoder, or
// a resolver) and maps it to a Read.
func (c *Codec) decode(read func(*wireRead) error) (Read, Origin, error) {
	b := c.bufs.Get().(*wireBuf)
	defer c.bufs.Put(b)
	b.rec = wireRead{ServiceType: &b.serviceType, Origin: wireOrigin{Line: &b.line, SHA256: &b.sha256}}
	err := read(&b.rec)
	w := b.rec
	b.rec = wireRead{}
	if err != nil {
		return Read{}, Origin{}, err
	}
	r := Read{
		ServicePointID: w.ServicePointID, Channel: w.Channel, EndMillis: w.IntervalEnd,
		LocalDate: w.LocalDate, LocalTime: w.LocalTime, OffsetMinutes: w.OffsetMinutes, OffsetGiven: w.OffsetGiven,
		Minutes: w.Minutes, Value: w.Value, Units: w.Units,
	}
	if len(w.Estimate) == 1 {
		r.Estimate = billing.Estimate(w.Estimate[0])
	}
	o := Origin{Utility: w.Utility, Kind: w.Origin.Kind, Name: w.Origin.Name}
	if w.ServiceType != nil {
		r.ServiceType = *w.ServiceType
	}
	if w.Origin.Line != nil {
		r.Line = *w.Origin.Line
	}
	if w.Origin.SHA256 != nil {
		o.SHA256 = *w.Origin.SHA256
	}
	return r, o, nil
}

// Decoder reads IntervalRead records written with one writer schema.
type Decoder struct {
	c      *Codec
	d      *serde.Decoder[wireRead]
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
func (d *Decoder) Decode(body []byte) (Read, Origin, error) {
	return d.c.decode(func(w *wireRead) error { return d.d.Decode(body, w) })
}

// Resolver reads Confluent-framed IntervalRead records of any registered
// schema id, fetching each writer schema from the registry once. Safe for
// concurrent use.
type Resolver struct {
	c   *Codec
	res *serde.Resolver[wireRead]
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
func (r *Resolver) Decode(ctx context.Context, framed []byte) (Read, Origin, error) {
	if r.err != nil {
		return Read{}, Origin{}, r.err
	}
	return r.c.decode(func(w *wireRead) error {
		_, err := r.res.Decode(ctx, framed, w)
		return err
	})
}

func estimateSymbol(e billing.Estimate) (string, bool) {
	switch e {
	case billing.EstimateActual:
		return "A", true
	case billing.EstimateEstimated:
		return "E", true
	case billing.EstimateUser:
		return "U", true
	}
	return "", false
}

// FromNative reads an IntervalRead that serde.Registry decoded into goavro's
// native form (any schema version the registry resolved) back into a Read.
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
