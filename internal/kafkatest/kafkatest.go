// Package kafkatest starts the embedded stack for tests and reads topics back
// the way a downstream consumer would (read_committed, decoded through the
// registry).
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/usagestream/usagestream/internal/consume"
	"github.com/usagestream/usagestream/internal/embedded"
	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/serde"
	"github.com/usagestream/usagestream/internal/topics"
)

// Env is a running stack with the project's topics created.
type Env struct {
	Kafka  kafkaconf.Config
	Topics topics.Names
}

// Start starts an embedded stack on free ports with its data in a temp dir.
//
// With USAGESTREAM_TEST_BROKERS and USAGESTREAM_TEST_REGISTRY set (see
// scripts/realkafka.sh), it uses that real cluster and registry instead, with
// a topic prefix of its own per test so tests do not see each other's data.
func Start(t testing.TB) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var kc kafkaconf.Config
	if b := os.Getenv("USAGESTREAM_TEST_BROKERS"); b != "" {
		var r [6]byte
		_, _ = rand.Read(r[:])
		kc = kafkaconf.Config{Brokers: strings.Split(b, ","), Registry: os.Getenv("USAGESTREAM_TEST_REGISTRY"),
			TopicPrefix: "t" + hex.EncodeToString(r[:]) + "."}
	} else {
		st, err := embedded.Start(ctx, embedded.Config{DataDir: t.TempDir(), Partitions: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		kc = kafkaconf.Config{Brokers: st.BrokerAddrs(), Registry: st.RegistryURL(), TopicPrefix: "usagestream."}
	}
	names := topics.NewNames(kc.TopicPrefix)
	cl, err := kc.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Every named topic, plain: what a topic carries and its configs are
	// processors/topology's, above this package; the tests need the topics
	// to exist with 3 partitions (the runtime creates changelog and
	// quarantine topics itself).
	var specs []topics.Spec
	for _, name := range names.All() {
		specs = append(specs, topics.Spec{Name: name})
	}
	if err := topics.Ensure(ctx, kadm.NewClient(cl), specs, 3, 1); err != nil {
		t.Fatal(err)
	}
	return &Env{Kafka: kc, Topics: names}
}

// ReadAll returns every committed record of topic, in partition then offset order.
func ReadAll(t testing.TB, kc kafkaconf.Config, topic string) []*kgo.Record {
	t.Helper()
	recs, err := ReadCommitted(context.Background(), kc, topic)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// ReadCommitted reads topic to its end, read_committed.
func ReadCommitted(ctx context.Context, kc kafkaconf.Config, topic string) ([]*kgo.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return consume.All(ctx, kc, topic)
}

// Decode decodes Confluent-framed Avro values through the registry into
// goavro's native form (records as maps, non-null unions as {"branch": v}):
// goavro is the reference the project's own codec (records/avro) is
// checked against, so tests read what was written with it.
func Decode(t testing.TB, kc kafkaconf.Config, recs []*kgo.Record) []map[string]any {
	t.Helper()
	rc, err := kc.NewRegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	reg := serde.NewRegistry(rc)
	codecs := map[int]*goavro.Codec{}
	out := make([]map[string]any, 0, len(recs))
	for _, r := range recs {
		id, body, err := serde.Split(r.Value)
		if err != nil {
			t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		c := codecs[id]
		if c == nil {
			text, err := reg.SchemaText(context.Background(), id)
			if err != nil {
				t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			if c, err = goavro.NewCodec(text); err != nil {
				t.Fatalf("schema id %d: %v", id, err)
			}
			codecs[id] = c
		}
		v, rest, err := c.NativeFromBinary(body)
		m, ok := v.(map[string]any)
		if err != nil || len(rest) > 0 || !ok {
			t.Fatalf("%s/%d@%d: goavro reads %T with %d bytes left: %v", r.Topic, r.Partition, r.Offset, v, len(rest), err)
		}
		out = append(out, m)
	}
	return out
}

// WaitCaughtUp waits until group has processed topic to its end (see
// consume.WaitCaughtUp).
func WaitCaughtUp(t testing.TB, kc kafkaconf.Config, group, topic string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := consume.WaitCaughtUp(ctx, kc, group, topic); err != nil {
		t.Fatal(err)
	}
}
