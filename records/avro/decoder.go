package avro

import (
	"context"
	"fmt"
	"sync"

	twavro "github.com/twmb/avro"

	"github.com/usagestream/usagestream/internal/quarantine"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/schemas"
)

// Decoder reads Confluent-framed records of any schema id in the registry,
// as sinks and tools see them (a sink decodes whatever topic it is given):
// into the typed record of this package the writer schema's name says
// (Decode), or as JSON (AppendJSON). It fetches each writer schema once and
// keeps what it compiled from it per id. Safe for concurrent use.
//
// Every error is poison (quarantine.IsPoison) except a registry that cannot
// be reached, which a retry fixes.
type Decoder struct {
	reg *serde.Registry

	mu   sync.RWMutex
	byID map[int]*writer
}

// writer is what one writer schema compiles to.
type writer struct {
	name   string // the record's full name
	json   *JSONSchema
	decode func(body []byte) (Record, error) // nil: not a record of this package
	err    error                             // why decode is nil for a record of ours
}

// NewDecoder reads writer schemas from reg.
func NewDecoder(reg *serde.Registry) *Decoder {
	return &Decoder{reg: reg, byID: map[int]*writer{}}
}

// Decode reads a framed record into its typed record and returns its schema
// id. A record of a schema this package has no struct for is an error.
func (d *Decoder) Decode(ctx context.Context, framed []byte) (Record, int, error) {
	id, body, w, err := d.writer(ctx, framed)
	if err != nil {
		return nil, id, err
	}
	if w.decode == nil {
		if w.err != nil {
			return nil, id, quarantine.Poison(fmt.Errorf("schema id %d: %w", id, w.err))
		}
		return nil, id, quarantine.Poison(fmt.Errorf("schema id %d is %s, not a record usagestream reads", id, w.name))
	}
	r, err := w.decode(body)
	if err != nil {
		return nil, id, fmt.Errorf("schema id %d: %w", id, err)
	}
	return r, id, nil
}

// AppendJSON appends the JSON rendering (JSONSchema) of a framed value of
// any Avro schema to dst, and returns its schema id.
func (d *Decoder) AppendJSON(ctx context.Context, dst, framed []byte) ([]byte, int, error) {
	id, body, w, err := d.writer(ctx, framed)
	if err != nil {
		return dst, id, err
	}
	out, err := w.json.AppendBody(dst, body)
	if err != nil {
		return dst, id, quarantine.Poison(fmt.Errorf("decoding Avro with schema id %d (%d bytes): %w", id, len(body), err))
	}
	return out, id, nil
}

func (d *Decoder) writer(ctx context.Context, framed []byte) (int, []byte, *writer, error) {
	id, body, err := serde.Split(framed)
	if err != nil {
		return 0, nil, nil, err
	}
	d.mu.RLock()
	w := d.byID[id]
	d.mu.RUnlock()
	if w != nil {
		return id, body, w, nil
	}
	text, err := d.reg.SchemaText(ctx, id)
	if err != nil {
		return id, nil, nil, err
	}
	s, err := twavro.Parse(text)
	if err != nil {
		return id, nil, nil, quarantine.Poison(fmt.Errorf("schema id %d from the registry does not compile: %w", id, err))
	}
	w = &writer{json: NewJSONSchema(s)}
	root := s.Root()
	w.name = fullName(root, "")
	if names, err := byFullName(); err != nil {
		w.err = err
	} else if name, ok := names[w.name]; ok {
		w.decode, w.err = decoderFor(name, text)
	}
	d.mu.Lock()
	d.byID[id] = w
	d.mu.Unlock()
	return id, body, w, nil
}

// namedRoot is the root node of a compiled embedded schema.
func namedRoot(c any) *twavro.SchemaNode {
	return c.(interface{ Schema() *twavro.Schema }).Schema().Root()
}

func decoderFor(name schemas.Name, writerSchema string) (func([]byte) (Record, error), error) {
	switch name {
	case schemas.EligibilityChanged:
		return typedDecoder[EligibilityChanged](writerSchema)
	case schemas.UsageCorrected:
		return typedDecoder[UsageCorrected](writerSchema)
	case schemas.AccountEvent:
		return typedDecoder[AccountEvent](writerSchema)
	case schemas.Anomaly:
		return typedDecoder[Anomaly](writerSchema)
	case schemas.RejectedRow:
		return typedDecoder[RejectedRow](writerSchema)
	case schemas.FileEvent:
		return typedDecoder[FileEvent](writerSchema)
	case schemas.IntervalRead:
		return typedDecoder[IntervalRead](writerSchema)
	case schemas.BillingRow:
		return typedDecoder[BillingRow](writerSchema)
	case schemas.OperatorAction:
		return typedDecoder[OperatorAction](writerSchema)
	}
	return nil, fmt.Errorf("schema %s has no record struct (a broken build)", name)
}

func typedDecoder[T any, P pointer[T]](writerSchema string) (func([]byte) (Record, error), error) {
	s, err := Codec[T, P]()
	if err != nil {
		return nil, err
	}
	dec, err := s.NewDecoder(writerSchema)
	if err != nil {
		return nil, err
	}
	return func(body []byte) (Record, error) {
		v := new(T)
		if err := dec.Decode(body, v); err != nil {
			return nil, err
		}
		return P(v), nil
	}, nil
}
