package embedded

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// TestRestartKeepsRecordsAndSchemaIDs: the embedded default is persistent:
// after a restart on the same data directory the records are still there and
// the registry still resolves the schema id they carry.
func TestRestartKeepsRecordsAndSchemaIDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	st, err := Start(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := sr.NewClient(sr.URLs(st.RegistryURL()))
	if err != nil {
		t.Fatal(err)
	}
	schemaA := `{"type":"record","name":"A","fields":[{"name":"a","type":"string"}]}`
	schemaB := `{"type":"record","name":"B","fields":[{"name":"b","type":"long"}]}`
	if _, err := reg.CreateSchema(ctx, "a-value", sr.Schema{Schema: schemaA, Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	ssB, err := reg.CreateSchema(ctx, "b-value", sr.Schema{Schema: schemaB, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(st.BrokerAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	st.Close()

	st2, err := Start(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer st2.Close()
	reg2, _ := sr.NewClient(sr.URLs(st2.RegistryURL()))
	got, err := reg2.SchemaByID(ctx, ssB.ID)
	if err != nil || got.Schema == "" {
		t.Fatalf("schema id %d lost across restart: %v", ssB.ID, err)
	}
	again, err := reg2.CreateSchema(ctx, "b-value", sr.Schema{Schema: schemaB, Type: sr.TypeAvro})
	if err != nil || again.ID != ssB.ID {
		t.Fatalf("re-registering after restart gave id %d (%v), want %d", again.ID, err, ssB.ID)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(st2.BrokerAddrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	fs := cl2.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "kept" {
		t.Fatalf("records after restart: %v", recs)
	}
}

func TestPortInUseSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	st, err := Start(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = Start(ctx, Config{DataDir: t.TempDir(), RegistryPort: st.ln.Addr().(*net.TCPAddr).Port})
	if err == nil || !strings.Contains(err.Error(), "another 'usagestream run'") {
		t.Fatalf("want a clear port-in-use error, got %v", err)
	}
}
