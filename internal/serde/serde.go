// Package serde encodes and decodes Avro records with the Confluent wire
// framing (magic byte 0, 4-byte big-endian schema id, Avro binary), so any
// Kafka client with a Confluent-compatible registry (Confluent, Apicurio
// ccompat, Redpanda) can read what usagestream writes.
package serde

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/usagestream/usagestream/internal/quarantine"
)

func init() {
	// goavro sizes a map or an array by the block count a record claims,
	// before reading an item (up to 2^31 by default): 8 bytes claiming 2^31
	// map entries took 24 GB and 15 minutes to refuse. Records come from
	// any producer; none of ours has anywhere near this many items.
	goavro.MaxBlockCount = maxArrayItems
}

// Codec encodes records of one registered schema. It is safe for concurrent
// use: goavro codecs are immutable once built.
type Codec struct {
	ID      int
	Subject string
	avro    *goavro.Codec
}

// Append appends the framed encoding of native (goavro's native form: a
// map[string]any with goavro.Union values for non-null unions) to dst.
func (c *Codec) Append(dst []byte, native map[string]any) ([]byte, error) {
	var h sr.ConfluentHeader
	dst, err := h.AppendEncode(dst, c.ID, nil)
	if err != nil {
		return nil, fmt.Errorf("framing a %s record: %w", c.Subject, err)
	}
	out, err := c.avro.BinaryFromNative(dst, native)
	if err != nil {
		return nil, fmt.Errorf("encoding a %s record (schema id %d): %w", c.Subject, c.ID, err)
	}
	return out, nil
}

// Registry registers schemas and resolves schema ids for decoding, caching both.
type Registry struct {
	client *sr.Client

	mu     sync.Mutex
	byID   map[int]*goavro.Codec
	bySubj map[string]*Codec
}

// NewRegistry wraps a registry client.
func NewRegistry(client *sr.Client) *Registry {
	return &Registry{client: client, byID: map[int]*goavro.Codec{}, bySubj: map[string]*Codec{}}
}

// Client is the underlying registry client.
func (r *Registry) Client() *sr.Client { return r.client }

// SubjectFor is the TopicNameStrategy subject of a topic's values.
func SubjectFor(topic string) string { return topic + "-value" }

// Register registers schemaText under subject (idempotent: the registry
// returns the existing id for a schema it already has) and returns a codec.
func (r *Registry) Register(ctx context.Context, subject, schemaText string) (*Codec, error) {
	r.mu.Lock()
	if c, ok := r.bySubj[subject]; ok {
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()

	codec, err := goavro.NewCodec(schemaText)
	if err != nil {
		return nil, fmt.Errorf("schema for %s does not compile: %w", subject, err)
	}
	ss, err := r.client.CreateSchema(ctx, subject, sr.Schema{Schema: schemaText, Type: sr.TypeAvro})
	if err != nil {
		return nil, fmt.Errorf("registering the schema of %s in the schema registry: %w (is the registry reachable, and does the change keep BACKWARD compatibility?)", subject, err)
	}
	c := &Codec{ID: ss.ID, Subject: subject, avro: codec}
	r.mu.Lock()
	r.bySubj[subject] = c
	r.byID[ss.ID] = codec
	r.mu.Unlock()
	return c, nil
}

// Decode reads a Confluent-framed value into goavro's native form, fetching
// the writer schema by id from the registry the first time it is seen.
func (r *Registry) Decode(ctx context.Context, b []byte) (native map[string]any, schemaID int, err error) {
	_, v, id, err := r.decode(ctx, b)
	if err != nil {
		return nil, id, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, id, quarantine.Poison(fmt.Errorf("schema id %d is not a record schema", id))
	}
	return m, id, nil
}

// DecodeJSON is Decode rendered as Avro JSON (unions as {"type": value}).
func (r *Registry) DecodeJSON(ctx context.Context, b []byte) ([]byte, int, error) {
	codec, v, id, err := r.decode(ctx, b)
	if err != nil {
		return nil, id, err
	}
	js, err := codec.TextualFromNative(nil, v)
	if err != nil {
		return nil, id, fmt.Errorf("rendering schema id %d as JSON: %w", id, err)
	}
	return js, id, nil
}

func (r *Registry) decode(ctx context.Context, b []byte) (*goavro.Codec, any, int, error) {
	var h sr.ConfluentHeader
	id, rest, err := h.DecodeID(b)
	if err != nil {
		return nil, nil, 0, quarantine.Poison(fmt.Errorf("value is not Confluent-framed Avro: %w", err))
	}
	codec, err := r.codecByID(ctx, id)
	if err != nil {
		return nil, nil, id, err
	}
	v, _, err := codec.NativeFromBinary(rest)
	if err != nil {
		return nil, nil, id, quarantine.Poison(fmt.Errorf("decoding Avro with schema id %d: %w", id, err))
	}
	return codec, v, id, nil
}

func (r *Registry) codecByID(ctx context.Context, id int) (*goavro.Codec, error) {
	r.mu.Lock()
	c, ok := r.byID[id]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	s, err := r.client.SchemaByID(ctx, id)
	if err != nil {
		return nil, SchemaFetchError(id, err)
	}
	c, err = goavro.NewCodec(s.Schema)
	if err != nil {
		return nil, quarantine.Poison(fmt.Errorf("schema id %d from the registry does not compile: %w", id, err))
	}
	r.mu.Lock()
	r.byID[id] = c
	r.mu.Unlock()
	return c, nil
}

// SchemaFetchError wraps a failed schema lookup. A registry that answered
// "no such schema" says the record names an id it never issued: the record is
// poison. Anything else (no answer, a 5xx) is an outage that a retry fixes.
func SchemaFetchError(id int, err error) error {
	err = fmt.Errorf("fetching schema id %d from the registry: %w", id, err)
	if re := (*sr.ResponseError)(nil); errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return quarantine.Poison(err)
	}
	return err
}

// Helpers for building goavro native values. Empty strings are the file
// format's null (docs/data-contract.md §2.1), so they map to Avro null.

// OptString is a ["null","string"] union value.
func OptString(s string) any {
	if s == "" {
		return nil
	}
	return goavro.Union("string", s)
}

// Union wraps a non-null value of a union branch.
func Union(branch string, v any) any { return goavro.Union(branch, v) }

// Binding asks for Schema to be registered as the value schema of Topic and
// the codec to be stored in *Dst.
type Binding struct {
	Topic  string
	Schema string
	Dst    **Codec
}

// RegisterAll registers every binding's schema (TopicNameStrategy subject).
func (r *Registry) RegisterAll(ctx context.Context, bs ...Binding) error {
	for _, b := range bs {
		c, err := r.Register(ctx, SubjectFor(b.Topic), b.Schema)
		if err != nil {
			return err
		}
		*b.Dst = c
	}
	return nil
}
