package serde

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/avro"

	"github.com/usagestream/usagestream/internal/quarantine"
)

// Struct encodes and decodes records of one schema as Go structs of type T
// (fields tagged `avro:"name"`) with github.com/twmb/avro: a codec compiled
// once, in the bytes goavro and the Java library write (no map or array
// block byte sizes), so readers of the registry's schema text see no
// difference. Safe for concurrent use.
//
// Decoding bounds what a record may claim: twmb/avro refuses a map or array
// block count larger than the bytes left could hold, and a string or bytes
// length beyond them, before it allocates (FuzzResolverDecode).
type Struct[T any] struct {
	schema *avro.Schema
	name   string
}

// NewStruct compiles schemaText (an embedded .avsc) for T.
func NewStruct[T any](schemaText string) (*Struct[T], error) {
	s, err := avro.Parse(schemaText)
	if err != nil {
		return nil, fmt.Errorf("an embedded schema does not compile: %w", err)
	}
	return &Struct[T]{schema: s, name: schemaName(s)}, nil
}

func schemaName(s *avro.Schema) string {
	if n := s.Root(); n.Name != "" {
		return n.Name
	}
	return "Avro value"
}

// Name is the record's name, for messages.
func (c *Struct[T]) Name() string { return c.name }

// Schema is the embedded schema.
func (c *Struct[T]) Schema() *avro.Schema { return c.schema }

// Append appends v in the Confluent framing (magic 0, the 4-byte schemaID,
// Avro binary) to dst.
func (c *Struct[T]) Append(dst []byte, schemaID int, v *T) ([]byte, error) {
	dst, err := AppendHeader(dst, schemaID)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", c.name, err)
	}
	out, err := c.schema.AppendEncode(dst, v)
	if err != nil {
		return dst, fmt.Errorf("encoding %s: %w", c.name, err)
	}
	return out, nil
}

// Decoder reads records written with one writer schema into T.
type Decoder[T any] struct {
	c      *Struct[T]
	schema *avro.Schema
}

// Decoder is the decoder of records written with the embedded schema itself.
func (c *Struct[T]) Decoder() *Decoder[T] { return &Decoder[T]{c: c, schema: c.schema} }

// NewDecoder returns a decoder for records written with writerSchema (a
// schema text from the registry), resolved against the embedded one by
// Avro's rules (fields added with defaults, promotions, fields only the
// writer has skipped); the embedded schema itself when both have the same
// canonical form.
func (c *Struct[T]) NewDecoder(writerSchema string) (*Decoder[T], error) {
	w, err := avro.Parse(writerSchema)
	if err != nil {
		return nil, fmt.Errorf("a writer schema of %s does not compile: %w", c.name, err)
	}
	resolved, err := avro.Resolve(w, c.schema)
	if err != nil {
		return nil, fmt.Errorf("%s records written with this schema cannot be read by this build (%w); upgrade usagestream or register a compatible schema", c.name, err)
	}
	return &Decoder[T]{c: c, schema: resolved}, nil
}

// Schema is the schema the decoder reads with: the embedded one, or the
// writer schema resolved against it.
func (d *Decoder[T]) Schema() *avro.Schema { return d.schema }

// Embedded reports whether d reads with the embedded schema itself: the
// writer schema had its canonical form (avro.Resolve then returns the reader
// as it is), so a body is laid out exactly as the embedded schema says and a
// hand-written reader of that layout reads it as d would.
func (d *Decoder[T]) Embedded() bool { return d.schema == d.c.schema }

// Decode reads body (the Avro binary after the framing) into v. Strings are
// copied out of body. Bytes after the record are an error: the record is
// then not what its schema id says.
func (d *Decoder[T]) Decode(body []byte, v *T) error {
	rest, err := d.schema.Decode(body, v)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes left after the record", len(rest))
	}
	if err != nil {
		return quarantine.Poison(fmt.Errorf("decoding %s (%d bytes): %w", d.c.name, len(body), err))
	}
	return nil
}

// Resolver decodes Confluent-framed records of any registered schema id
// into T: it fetches each writer schema from the registry once and keeps
// one decoder per id.
type Resolver[T any] struct {
	c      *Struct[T]
	schema func(ctx context.Context, id int) (string, error)

	mu   sync.RWMutex
	byID map[int]*Decoder[T]
}

// NewResolver reads writer schemas from reg.
func (c *Struct[T]) NewResolver(reg *Registry) *Resolver[T] {
	return c.NewResolverFunc(reg.fetch)
}

// NewResolverFunc reads writer schemas with schema; its errors go through
// SchemaFetchError (a 404 is poison, anything else an outage).
func (c *Struct[T]) NewResolverFunc(schema func(ctx context.Context, id int) (string, error)) *Resolver[T] {
	return &Resolver[T]{c: c, schema: schema, byID: map[int]*Decoder[T]{}}
}

// Decode reads a framed record into v and returns its schema id.
func (r *Resolver[T]) Decode(ctx context.Context, framed []byte, v *T) (int, error) {
	id, body, d, err := r.Lookup(ctx, framed)
	if err != nil {
		return id, err
	}
	return id, d.Decode(body, v)
}

// Lookup splits a framed record into its schema id and body and returns the
// decoder of that id, so that a caller can read the body another way when
// the decoder is Embedded.
func (r *Resolver[T]) Lookup(ctx context.Context, framed []byte) (id int, body []byte, d *Decoder[T], err error) {
	id, body, err = Split(framed)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", r.c.name, err)
	}
	r.mu.RLock()
	d = r.byID[id]
	r.mu.RUnlock()
	if d == nil {
		if d, err = r.decoderFor(ctx, id); err != nil {
			return id, nil, nil, err
		}
	}
	return id, body, d, nil
}

func (r *Resolver[T]) decoderFor(ctx context.Context, id int) (*Decoder[T], error) {
	text, err := r.schema(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.c.name, SchemaFetchError(id, err))
	}
	d, err := r.c.NewDecoder(text)
	if err != nil {
		return nil, quarantine.Poison(fmt.Errorf("schema id %d: %w", id, err))
	}
	r.mu.Lock()
	r.byID[id] = d
	r.mu.Unlock()
	return d, nil
}
