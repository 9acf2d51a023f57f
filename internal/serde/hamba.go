package serde

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/usagestream/usagestream/internal/quarantine"
)

// Struct encodes and decodes records of one schema embedded in this build
// as Go structs of type T (fields tagged `avro:"name"`) with hamba/avro: a
// codec compiled once, instead of goavro's native maps, which cost more CPU
// than the rest of ingest and of the processors for the hot record types.
// The bytes are those goavro writes, so readers of the registry's schema
// text see no difference. Safe for concurrent use.
type Struct[T any] struct {
	api     avro.API
	schema  avro.Schema
	name    string
	writers sync.Pool
	readers sync.Pool
}

// hambaConfig writes maps and arrays as goavro and the Java library do: a
// block count without the optional byte size, so the bytes are the same
// whichever library wrote them.
//
// MaxSliceAllocSize bounds the items of an array a record may claim: hamba
// grows the slice to the block count before reading an item, so without it
// 18 bytes claiming 2^33 strings allocate 160 GB (FuzzResolverDecode). No
// record of ours carries anywhere near this many items.
var hambaConfig = avro.Config{DisableBlockSizeHeader: true, MaxSliceAllocSize: maxArrayItems}

const maxArrayItems = 1 << 16

// NewStruct compiles schemaText (an embedded .avsc) for T.
func NewStruct[T any](schemaText string) (*Struct[T], error) {
	// A cache of its own: the process-wide default cache would let another
	// version of the same named types (a schema history test, a writer
	// schema from the registry) interfere.
	s, err := avro.ParseWithCache(schemaText, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("an embedded schema does not compile: %w", err)
	}
	c := &Struct[T]{api: hambaConfig.Freeze(), schema: s, name: schemaName(s)}
	c.writers.New = func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(c.api)) }
	c.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(c.api)) }
	return c, nil
}

func schemaName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.Name()
	}
	return string(s.Type())
}

// Name is the record's name, for messages.
func (c *Struct[T]) Name() string { return c.name }

// Append appends v in the Confluent framing (magic 0, the 4-byte schemaID,
// Avro binary) to dst.
func (c *Struct[T]) Append(dst []byte, schemaID int, v *T) ([]byte, error) {
	var h sr.ConfluentHeader
	dst, err := h.AppendEncode(dst, schemaID, nil)
	if err != nil {
		return dst, fmt.Errorf("framing %s: %w", c.name, err)
	}
	w := c.writers.Get().(*avro.Writer)
	defer c.writers.Put(w)
	w.Reset(nil)
	w.Error = nil
	w.WriteVal(c.schema, v)
	if err := w.Error; err != nil {
		return dst, fmt.Errorf("encoding %s: %w", c.name, err)
	}
	return append(dst, w.Buffer()...), nil
}

// Decoder reads records written with one writer schema into T.
type Decoder[T any] struct {
	c      *Struct[T]
	schema avro.Schema
}

// Decoder is the decoder of records written with the embedded schema itself.
func (c *Struct[T]) Decoder() *Decoder[T] { return &Decoder[T]{c: c, schema: c.schema} }

// NewDecoder returns a decoder for records written with writerSchema (a
// schema text from the registry): the embedded schema's own decoder when
// both have the same canonical form, else the writer schema resolved
// against the embedded one by Avro's rules (fields added with defaults,
// promotions, fields only the writer has skipped).
func (c *Struct[T]) NewDecoder(writerSchema string) (*Decoder[T], error) {
	w, err := avro.ParseWithCache(writerSchema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("a writer schema of %s does not compile: %w", c.name, err)
	}
	if w.Fingerprint() == c.schema.Fingerprint() {
		return c.Decoder(), nil
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(c.schema, w)
	if err != nil {
		return nil, fmt.Errorf("%s records written with this schema cannot be read by this build (%w); upgrade usagestream or register a compatible schema", c.name, err)
	}
	return &Decoder[T]{c: c, schema: resolved}, nil
}

// Schema is the schema the decoder reads with: the embedded one, or the
// writer schema resolved against it.
func (d *Decoder[T]) Schema() avro.Schema { return d.schema }

// Schema is the embedded schema.
func (c *Struct[T]) Schema() avro.Schema { return c.schema }

// Decode reads body (the Avro binary after the framing) into v. Strings are
// copied out of body. Bytes after the record are an error: the record is
// then not what its schema id says.
func (d *Decoder[T]) Decode(body []byte, v *T) error {
	rd := d.c.readers.Get().(*avro.Reader)
	defer d.c.readers.Put(rd)
	rd.Reset(body)
	rd.Error = nil
	rd.ReadVal(d.schema, v)
	if rd.Error == nil {
		var one [1]byte
		if rd.Read(one[:]); rd.Error == nil {
			rd.Error = errors.New("bytes left after the record")
		} else {
			rd.Error = nil
		}
	}
	err := rd.Error
	rd.Reset(nil)
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
	return c.newResolver(func(ctx context.Context, id int) (string, error) {
		s, err := reg.Client().SchemaByID(ctx, id)
		return s.Schema, err
	})
}

func (c *Struct[T]) newResolver(schema func(ctx context.Context, id int) (string, error)) *Resolver[T] {
	return &Resolver[T]{c: c, schema: schema, byID: map[int]*Decoder[T]{}}
}

// Decode reads a framed record into v and returns its schema id.
func (r *Resolver[T]) Decode(ctx context.Context, framed []byte, v *T) (int, error) {
	var h sr.ConfluentHeader
	id, body, err := h.DecodeID(framed)
	if err != nil {
		return 0, quarantine.Poison(fmt.Errorf("%s of %d bytes lacks the Confluent framing (magic byte 0 and a schema id: %w); the producer must use a schema registry serializer", r.c.name, len(framed), err))
	}
	r.mu.RLock()
	d := r.byID[id]
	r.mu.RUnlock()
	if d == nil {
		if d, err = r.decoderFor(ctx, id); err != nil {
			return id, err
		}
	}
	return id, d.Decode(body, v)
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
