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
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"

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
		return 0, fmt.Errorf("registering the schema of %s in the schema registry: %w", subject, ExplainRegistryError(err))
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

// ExplainRegistryError says what a registry call's error means and what to
// do: an incompatible schema, a URL that is not a registry's, refused
// credentials, a registry that cannot be reached or does not answer HTTP.
// The error stays in the chain (errors.Is, errors.As).
func ExplainRegistryError(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusConflict || re.ErrorCode == 409:
			return fmt.Errorf("%w: the schema is not compatible with the versions registered before; a change must keep BACKWARD compatibility (schemas/schemas.go)", err)
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: the registry refused the credentials (HTTP %d): check --registry-user and USAGESTREAM_REGISTRY_PASSWORD", err, re.StatusCode)
		case re.StatusCode == http.StatusNotFound && re.ErrorCode/100 != 404:
			// A registry's own 404s carry error codes 40401-40403; a bare
			// 404 is a path the server does not serve.
			return fmt.Errorf("%w: HTTP 404 at %s: the URL is not a schema registry's API; check the path of --registry (Apicurio: http://HOST:PORT/apis/ccompat/v7)", err, re.URL)
		case re.StatusCode >= 500:
			return fmt.Errorf("%w: the registry failed (HTTP %d); see its logs, then try again", err, re.StatusCode)
		}
		return err
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing listens at the registry's address: start the registry (usagestream run serves one) or check --registry", err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: the registry did not answer in time: check that --registry is a schema registry's URL (not a Kafka broker's) and that it is up", err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "malformed HTTP"):
		return fmt.Errorf("%w: the server at --registry does not speak HTTP as a schema registry does (a Kafka broker's port?)", err)
	}
	return err
}
