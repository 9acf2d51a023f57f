package avro

import (
	"context"
	"fmt"
	"sync"

	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/schemas"
)

// pointer is the constraint of the generic functions below: T is one of the
// record structs of this package (*T implements Record).
type pointer[T any] interface {
	*T
	Record
}

// codecs are the embedded schemas compiled once per process, by schema
// name: each value is a *serde.Struct of the record's struct. They never
// change while the process runs, so one set serves every caller.
var codecs = sync.OnceValues(func() (map[schemas.Name]any, error) {
	m := map[schemas.Name]any{}
	for _, add := range []func(map[schemas.Name]any) error{
		compile[EligibilityChanged], compile[UsageCorrected], compile[AccountEvent], compile[Anomaly],
		compile[RejectedRow], compile[FileEvent], compile[IntervalRead], compile[BillingRow], compile[OperatorAction],
	} {
		if err := add(m); err != nil {
			return nil, err
		}
	}
	return m, nil
})

// byFullName maps the full name of each embedded record schema
// (io.usagestream.v1.Anomaly) to its schema name: a writer schema from the
// registry says by its name which struct its records decode into.
var byFullName = sync.OnceValues(func() (map[string]schemas.Name, error) {
	m, err := codecs()
	if err != nil {
		return nil, err
	}
	out := map[string]schemas.Name{}
	for name, c := range m {
		out[fullName(namedRoot(c), "")] = name
	}
	return out, nil
})

func compile[T any, P pointer[T]](m map[schemas.Name]any) error {
	name := P(nil).Schema()
	s, err := serde.NewStruct[T](schemas.MustText(name))
	if err != nil {
		return fmt.Errorf("schemas/%s.avsc: %w (a broken build)", name, err)
	}
	m[name] = s
	return nil
}

// Codec is the compiled embedded schema of T (EligibilityChanged, ...).
// It fails only in a build whose embedded schemas do not compile.
func Codec[T any, P pointer[T]]() (*serde.Struct[T], error) {
	m, err := codecs()
	if err != nil {
		return nil, err
	}
	return m[P(nil).Schema()].(*serde.Struct[T]), nil
}

// Writer writes records of type T in the Confluent framing, with the id
// their schema has in the registry. Safe for concurrent use.
type Writer[T any] struct {
	ID int
	s  *serde.Struct[T]
}

// NewWriter is a Writer for schema id id (registered by the caller).
func NewWriter[T any, P pointer[T]](id int) (*Writer[T], error) {
	s, err := Codec[T, P]()
	if err != nil {
		return nil, err
	}
	return &Writer[T]{ID: id, s: s}, nil
}

// Register registers T's schema as the value schema of topic
// (TopicNameStrategy) and returns a Writer with its id.
func Register[T any, P pointer[T]](ctx context.Context, reg *serde.Registry, topic string) (*Writer[T], error) {
	id, err := reg.Register(ctx, serde.SubjectFor(topic), schemas.MustText(P(nil).Schema()))
	if err != nil {
		return nil, err
	}
	return NewWriter[T, P](id)
}

// Append appends v, framed, to dst.
func (w *Writer[T]) Append(dst []byte, v *T) ([]byte, error) {
	return w.s.Append(dst, w.ID, v)
}

// NewResolver reads Confluent-framed records of T of any registered
// version from reg: the embedded schema's own, others resolved against it.
func NewResolver[T any, P pointer[T]](reg *serde.Registry) (*serde.Resolver[T], error) {
	s, err := Codec[T, P]()
	if err != nil {
		return nil, err
	}
	return s.NewResolver(reg), nil
}

// Append appends r, framed with schemaID, to dst: Writer.Append for a
// record whose type is known only at run time.
func Append(dst []byte, schemaID int, r Record) ([]byte, error) {
	switch v := r.(type) {
	case *EligibilityChanged:
		return appendWith(dst, schemaID, v)
	case *UsageCorrected:
		return appendWith(dst, schemaID, v)
	case *AccountEvent:
		return appendWith(dst, schemaID, v)
	case *Anomaly:
		return appendWith(dst, schemaID, v)
	case *RejectedRow:
		return appendWith(dst, schemaID, v)
	case *FileEvent:
		return appendWith(dst, schemaID, v)
	case *IntervalRead:
		return appendWith(dst, schemaID, v)
	case *BillingRow:
		return appendWith(dst, schemaID, v)
	case *OperatorAction:
		return appendWith(dst, schemaID, v)
	}
	return dst, fmt.Errorf("%T is not a record of records/avro", r)
}

func appendWith[T any, P pointer[T]](dst []byte, schemaID int, v *T) ([]byte, error) {
	s, err := Codec[T, P]()
	if err != nil {
		return dst, err
	}
	return s.Append(dst, schemaID, v)
}

// DecodeBody reads body, the Avro binary (no framing) of a record of schema
// name written with this build's schema, into its typed record.
func DecodeBody(name schemas.Name, body []byte) (Record, error) {
	switch name {
	case schemas.EligibilityChanged:
		return decodeWith[EligibilityChanged](body)
	case schemas.UsageCorrected:
		return decodeWith[UsageCorrected](body)
	case schemas.AccountEvent:
		return decodeWith[AccountEvent](body)
	case schemas.Anomaly:
		return decodeWith[Anomaly](body)
	case schemas.RejectedRow:
		return decodeWith[RejectedRow](body)
	case schemas.FileEvent:
		return decodeWith[FileEvent](body)
	case schemas.IntervalRead:
		return decodeWith[IntervalRead](body)
	case schemas.BillingRow:
		return decodeWith[BillingRow](body)
	case schemas.OperatorAction:
		return decodeWith[OperatorAction](body)
	}
	return nil, fmt.Errorf("schema %q has no record of records/avro", name)
}

func decodeWith[T any, P pointer[T]](body []byte) (Record, error) {
	s, err := Codec[T, P]()
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := s.Decoder().Decode(body, v); err != nil {
		return nil, err
	}
	return P(v), nil
}
