package avro

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/records"
)

// billingBuf is a BillingRow with the targets its pointers need that the row
// itself cannot give (the estimate symbol) and its extra map, pooled so that
// neither encoding nor decoding allocates them per row.
type billingBuf struct {
	rec      BillingRow
	estimate string
	extra    map[string]string
}

// BillingCodec encodes billing rows (records.BillingRow) as BillingRow
// records and decodes them back, through the struct codec of the embedded
// schema (twmb/avro): the bytes goavro writes, at a fraction of its CPU
// (BenchmarkBillingRow). Ingest encodes with it, the stages decode with it,
// so both sides agree field by field. Records of the embedded schema itself
// take a hand-written writer and reader of its layout (appendBillingBody,
// readBillingBody), tested against the struct codec.
type BillingCodec struct {
	s    *serde.Struct[BillingRow]
	bufs sync.Pool
}

// NewBillingCodec compiles the embedded BillingRow schema.
func NewBillingCodec() (*BillingCodec, error) {
	s, err := Codec[BillingRow]()
	if err != nil {
		return nil, err
	}
	c := &BillingCodec{s: s}
	c.bufs.New = func() any { return &billingBuf{extra: map[string]string{}} }
	return c, nil
}

// defaultBillingCodec serves AppendBillingRow: the embedded schema never changes while
// the process runs, so one compiled codec serves every caller.
var defaultBillingCodec = sync.OnceValues(NewBillingCodec)

// AppendBillingRow appends r in the Confluent framing (magic 0, the 4-byte schema
// id, Avro binary of BillingRow) to dst, with the default codec.
func AppendBillingRow(dst []byte, schemaID int, r *records.BillingRow, src BillingSource) ([]byte, error) {
	c, err := defaultBillingCodec()
	if err != nil {
		return dst, err
	}
	return c.Append(dst, schemaID, r, src)
}

// Append is AppendBillingRow with c. Fields the row's layout does not carry are
// written as null, as the goavro mapping before it did.
func (c *BillingCodec) Append(dst []byte, schemaID int, r *records.BillingRow, src BillingSource) ([]byte, error) {
	if framed, err := serde.AppendHeader(dst, schemaID); err == nil {
		if out, ok := appendBillingBody(framed, r, src); ok {
			return out, nil
		}
	}
	return c.appendStruct(dst, schemaID, r, src)
}

// appendStruct is Append through the struct codec: the reference
// appendBillingBody is tested against, and the path of the rows it leaves
// (a layout outside the enum: an error naming file and line).
func (c *BillingCodec) appendStruct(dst []byte, schemaID int, r *records.BillingRow, src BillingSource) ([]byte, error) {
	customer := r.Layout != records.LayoutUsage
	usage := r.Layout != records.LayoutCustomer
	b := c.bufs.Get().(*billingBuf)
	defer c.bufs.Put(b)
	// The pointers point into r: the codec only reads them while encoding.
	w := &b.rec
	*w = BillingRow{
		Utility: src.Utility, Layout: string(r.Layout),
		Source:       SourceRef{File: src.File, Line: r.Line, FileSHA256: src.SHA256},
		CustomerID:   optString(&r.CustomerID),
		PremiseID:    optString(&r.PremiseID),
		SecondaryID:  optString(&r.SecondaryID),
		CCBAccountID: optString(&r.CCBAccountID),
		CustomerType: optString(&r.CustomerType),
		BusinessName: optString(&r.BusinessName),
		AccountID:    optString(&r.AccountID),

		IsAccountDeletion:  r.IsAccountDeletion,
		ReadCycle:          optString(&r.ReadCycle),
		RateCode:           optString(&r.RateCode),
		ServicePointID:     r.ServicePointID,
		ServiceType:        optString(&r.ServiceType),
		ServiceHouseNumber: optString(&r.ServiceHouseNumber),
		ServiceStreetName:  optString(&r.ServiceStreetName),
		ServiceUnit:        optString(&r.ServiceUnit),
		ServiceCity:        optString(&r.ServiceCity),
		ServiceState:       optString(&r.ServiceState),
		ServiceZipCode:     optString(&r.ServiceZipCode),
		MeterType:          optString(&r.MeterType),
		MeterUnit:          optString(&r.MeterUnit),
		Extra:              b.extra,
	}
	if customer {
		w.ActiveDate = &r.ActiveDate
		if r.InactiveDate.Valid {
			w.InactiveDate = &r.InactiveDate.Date
		}
	}
	if r.BldgSqFoot.Valid {
		w.BldgSqFoot = &r.BldgSqFoot.Value
	}
	if usage {
		w.UsageValue, w.DateTo, w.Duration = &r.UsageValue, &r.DateTo, &r.Duration
		if r.UsageCharge.Valid {
			w.UsageCharge = &r.UsageCharge.Value
		}
		est := r.IsEstimate
		if est == 0 {
			est = records.EstimateEstimated
		}
		b.estimate = estimateSymbol(est)
		w.IsEstimate = &b.estimate
	}
	for _, a := range r.Extra {
		b.extra[a.Name] = a.Value
	}
	out, err := c.s.Append(dst, schemaID, w)
	clear(b.extra)
	*w = BillingRow{} // keep no caller strings alive in the pool
	if err != nil {
		return out, fmt.Errorf("%s line %d: %w", src.File, r.Line, err)
	}
	return out, nil
}

func optString(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}

// Decoder reads Confluent-framed BillingRow records of any registered
// schema version: the embedded one directly, others through Avro schema
// resolution, each writer schema fetched from the registry once per id.
// Safe for concurrent use.
type BillingDecoder struct {
	c   *BillingCodec
	res *serde.Resolver[BillingRow]
	err error
	// rows holds the rows given back by Recycle, for the next Decodes.
	rows sync.Pool
}

// NewDecoder reads writer schemas from reg.
func (c *BillingCodec) NewDecoder(reg *serde.Registry) *BillingDecoder {
	return &BillingDecoder{c: c, res: c.s.NewResolver(reg)}
}

// Decode reads one framed BillingRow record. An error names the schema id,
// or says what the record lacks.
//
// A record of a writer schema with the embedded schema's canonical form (the
// id ingest registers: nearly every record) is read by readBillingBody; the
// resolver keeps that answer with the id's decoder. Any other version goes
// through the struct codec, which resolves it.
func (d *BillingDecoder) Decode(ctx context.Context, framed []byte) (*DecodedBillingRow, error) {
	if d.err != nil {
		return nil, d.err
	}
	id, body, dec, err := d.res.Lookup(ctx, framed)
	if err != nil {
		return nil, err
	}
	if dec.Embedded() {
		out, _ := d.rows.Get().(*DecodedBillingRow)
		return d.c.decodeFastInto(id, body, out)
	}
	return d.c.decode(func(w *BillingRow) (int, error) { return id, dec.Decode(body, w) })
}

// Recycle gives back a row Decode returned, once the caller keeps nothing
// that points into the row itself (its strings may be kept: they are
// copies): a later Decode fills it again instead of allocating one. A
// stage decoding a million billing rows allocated 850 MB of rows without.
func (d *BillingDecoder) Recycle(r *DecodedBillingRow) {
	if r != nil {
		d.rows.Put(r)
	}
}

// decodeFast is decode with readBillingBody: the same row, or an error of
// the same poison-ness, for every body (FuzzBillingFastDecode).
func (c *BillingCodec) decodeFast(id int, body []byte) (*DecodedBillingRow, error) {
	return c.decodeFastInto(id, body, nil)
}

// decodeFastInto is decodeFast into out, emptied first (nil: a new row).
func (c *BillingCodec) decodeFastInto(id int, body []byte, out *DecodedBillingRow) (*DecodedBillingRow, error) {
	if out == nil {
		out = &DecodedBillingRow{}
	} else {
		*out = DecodedBillingRow{}
	}
	if err := readBillingBody(body, out); err != nil {
		return nil, quarantine.Poison(fmt.Errorf("decoding %s (%d bytes): %w", c.s.Name(), len(body), err))
	}
	if out.Row.ServicePointID == "" {
		return nil, noServicePoint(id, out)
	}
	return out, nil
}

// decode points the record's optional fields at out's row, so twmb/avro
// writes the values in place, then lets read fill it.
func (c *BillingCodec) decode(read func(*BillingRow) (int, error)) (*DecodedBillingRow, error) {
	out := &DecodedBillingRow{}
	r := &out.Row
	b := c.bufs.Get().(*billingBuf)
	defer c.bufs.Put(b)
	w := &b.rec
	*w = BillingRow{
		CustomerID: &r.CustomerID, PremiseID: &r.PremiseID, SecondaryID: &r.SecondaryID, CCBAccountID: &r.CCBAccountID,
		CustomerType: &r.CustomerType, BusinessName: &r.BusinessName, AccountID: &r.AccountID,
		ActiveDate: &r.ActiveDate, InactiveDate: &r.InactiveDate.Date, ReadCycle: &r.ReadCycle, RateCode: &r.RateCode,
		ServiceType: &r.ServiceType, ServiceHouseNumber: &r.ServiceHouseNumber, ServiceStreetName: &r.ServiceStreetName,
		ServiceUnit: &r.ServiceUnit, ServiceCity: &r.ServiceCity, ServiceState: &r.ServiceState, ServiceZipCode: &r.ServiceZipCode,
		MeterType: &r.MeterType, MeterUnit: &r.MeterUnit, BldgSqFoot: &r.BldgSqFoot.Value, UsageValue: &r.UsageValue, DateTo: &r.DateTo,
		Duration: &r.Duration, IsEstimate: &b.estimate, UsageCharge: &r.UsageCharge.Value, Extra: b.extra,
	}
	id, err := read(w)
	got, est := *w, b.estimate
	*w = BillingRow{}
	b.estimate = ""
	defer clear(b.extra)
	if err != nil {
		return nil, err
	}
	r.Layout = records.Layout(got.Layout)
	out.Source = BillingSource{Utility: got.Utility, File: got.Source.File, SHA256: got.Source.FileSHA256}
	out.Line, r.Line = got.Source.Line, got.Source.Line
	r.IsAccountDeletion = got.IsAccountDeletion
	r.ServicePointID = got.ServicePointID
	// twmb/avro wrote each non-null value in place; a null left its target
	// zero and set the pointer nil, which is what the row's validity flags say.
	r.InactiveDate.Valid = got.InactiveDate != nil
	r.BldgSqFoot.Valid = got.BldgSqFoot != nil
	r.UsageCharge.Valid = got.UsageCharge != nil
	if got.IsEstimate != nil && est != "" {
		r.IsEstimate = records.Estimate(est[0])
	}
	if len(got.Extra) > 0 {
		// Avro maps have no order: by name, so that a row decodes the same
		// every time.
		r.Extra = make([]records.Attribute, 0, len(got.Extra))
		for k, v := range got.Extra {
			r.Extra = append(r.Extra, records.Attribute{Name: k, Value: v})
		}
		slices.SortFunc(r.Extra, func(a, b records.Attribute) int { return strings.Compare(a.Name, b.Name) })
	}
	if r.ServicePointID == "" {
		return nil, noServicePoint(id, out)
	}
	return out, nil
}

// noServicePoint is the error of a row without the key of its topic: no
// stage can place it, and no retry gives it one.
func noServicePoint(id int, d *DecodedBillingRow) error {
	return quarantine.Poison(fmt.Errorf("billing record (schema id %d) of %s line %d without service_point_id", id, d.Source.File, d.Line))
}

// decodeBody reads an unframed body with one writer schema's decoder.
func (c *BillingCodec) decodeBody(d *serde.Decoder[BillingRow], body []byte) (*DecodedBillingRow, error) {
	return c.decode(func(w *BillingRow) (int, error) { return 0, d.Decode(body, w) })
}

// NewBillingDecoder is BillingCodec.NewDecoder with the codec AppendBillingRow uses. If the
// embedded schema did not compile (a broken build), every Decode says so.
func NewBillingDecoder(reg *serde.Registry) *BillingDecoder {
	c, err := defaultBillingCodec()
	if err != nil {
		return &BillingDecoder{err: err}
	}
	return c.NewDecoder(reg)
}
