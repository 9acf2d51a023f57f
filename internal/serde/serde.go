// Package serde is the Confluent wire framing (magic byte 0, 4-byte
// big-endian schema id, Avro binary) and the schema registry plumbing, so
// any Kafka client with a Confluent-compatible registry (Confluent,
// Apicurio ccompat, Redpanda) can read what usagestream writes. It knows no
// record type: records/avro holds the project's records and their codecs.
package serde

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/usagestream/usagestream/internal/quarantine"
)

// Registry registers schemas and fetches writer schemas by id, caching both:
// a schema id names the same schema for ever, so one fetch per id and
// process is enough.
type Registry struct {
	client *sr.Client

	mu     sync.Mutex
	bySubj map[string]int
	byID   map[int]string
}

// NewRegistry wraps a registry client.
func NewRegistry(client *sr.Client) *Registry {
	return &Registry{client: client, bySubj: map[string]int{}, byID: map[int]string{}}
}

// Client is the underlying registry client.
func (r *Registry) Client() *sr.Client { return r.client }

// SubjectFor is the TopicNameStrategy subject of a topic's values.
func SubjectFor(topic string) string { return topic + "-value" }

// Register registers schemaText under subject (idempotent: the registry
// returns the existing id for a schema it already has) and returns its id.
func (r *Registry) Register(ctx context.Context, subject, schemaText string) (int, error) {
	r.mu.Lock()
	id, ok := r.bySubj[subject]
	r.mu.Unlock()
	if ok {
		return id, nil
	}
	if _, err := avro.Parse(schemaText); err != nil {
		return 0, fmt.Errorf("schema for %s does not compile: %w", subject, err)
	}
	ss, err := r.client.CreateSchema(ctx, subject, sr.Schema{Schema: schemaText, Type: sr.TypeAvro})
	if err != nil {
		return 0, fmt.Errorf("registering the schema of %s in the schema registry: %w (is the registry reachable, and does the change keep BACKWARD compatibility?)", subject, err)
	}
	r.mu.Lock()
	r.bySubj[subject] = ss.ID
	r.byID[ss.ID] = schemaText
	r.mu.Unlock()
	return ss.ID, nil
}

// SchemaText is the text of the schema registered as id, fetched from the
// registry the first time. A registry that does not know id makes the error
// poison (see SchemaFetchError).
func (r *Registry) SchemaText(ctx context.Context, id int) (string, error) {
	text, err := r.fetch(ctx, id)
	if err != nil {
		return "", SchemaFetchError(id, err)
	}
	return text, nil
}

// fetch is SchemaText with the registry's error as it is.
func (r *Registry) fetch(ctx context.Context, id int) (string, error) {
	r.mu.Lock()
	text, ok := r.byID[id]
	r.mu.Unlock()
	if ok {
		return text, nil
	}
	s, err := r.client.SchemaByID(ctx, id)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.byID[id] = s.Schema
	r.mu.Unlock()
	return s.Schema, nil
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

// Binding asks for Schema to be registered as the value schema of Topic and
// its id to be stored in *Dst.
type Binding struct {
	Topic  string
	Schema string
	Dst    *int
}

// RegisterAll registers every binding's schema (TopicNameStrategy subject).
func (r *Registry) RegisterAll(ctx context.Context, bs ...Binding) error {
	for _, b := range bs {
		id, err := r.Register(ctx, SubjectFor(b.Topic), b.Schema)
		if err != nil {
			return err
		}
		*b.Dst = id
	}
	return nil
}

// AppendHeader appends the framing of a value written with schema id to dst.
func AppendHeader(dst []byte, id int) ([]byte, error) {
	var h sr.ConfluentHeader
	out, err := h.AppendEncode(dst, id, nil)
	if err != nil {
		return dst, fmt.Errorf("framing a record of schema id %d: %w", id, err)
	}
	return out, nil
}

// Split reads the framing of a value: its schema id and the Avro body. A
// value without it is poison (it was not written by a registry serializer).
func Split(framed []byte) (id int, body []byte, err error) {
	var h sr.ConfluentHeader
	id, body, err = h.DecodeID(framed)
	if err != nil {
		return 0, nil, quarantine.Poison(fmt.Errorf("a value of %d bytes is not Confluent-framed Avro (magic byte 0 and a schema id: %w); the producer must use a schema registry serializer", len(framed), err))
	}
	return id, body, nil
}
