package embedded

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// FuzzRestoreSchemas: the embedded registry's persistence file
// (registry.jsonl), as a restart loads it.
//
// Properties: no panic; an error is non-empty and names the file; on
// success, every line that parsed and was restored under its own id is
// found by that id with its schema; the ids the registry hands out next are
// not any restored id; and the schemas restored survive a second restart
// from the same file (loading is deterministic).
func FuzzRestoreSchemas(f *testing.F) {
	line := func(p persisted) string {
		b, _ := json.Marshal(p)
		return string(b) + "\n"
	}
	const s1 = `{"type":"record","name":"A","fields":[{"name":"x","type":"string"}]}`
	const s2 = `{"type":"record","name":"A","fields":[{"name":"x","type":"string"},{"name":"y","type":"int","default":0}]}`
	a := line(persisted{Subject: "a-value", Version: 1, ID: 1, Schema: s1, Type: "AVRO"})
	b := line(persisted{Subject: "a-value", Version: 2, ID: 2, Schema: s2, Type: "AVRO"})
	c := line(persisted{Subject: "b-value", Version: 1, ID: 1, Schema: s1, Type: "AVRO"})
	f.Add([]byte(a + b + c))
	f.Add([]byte(a + b[:len(b)/2]))
	f.Add([]byte(a + a))
	f.Add([]byte(a + line(persisted{Subject: "b-value", Version: 1, ID: 1, Schema: s2})))
	f.Add([]byte(line(persisted{Subject: "a-value", Version: 1, ID: 2147483647, Schema: s1})))
	f.Add([]byte(line(persisted{Subject: "a-value", Version: 1, ID: 9223372036854775807, Schema: s1})))
	f.Add([]byte(line(persisted{Subject: "a-value", Version: -1, ID: -5, Schema: s1})))
	f.Add([]byte(line(persisted{Subject: "", Version: 0, ID: 0, Schema: "nope"})))
	f.Add([]byte("\n\n{}\n[1]\n"))
	path := filepath.Join(f.TempDir(), "registry.jsonl") // one per worker process
	f.Fuzz(func(t *testing.T, file []byte) {
		if len(file) > 1<<14 {
			return
		}
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Stack{registry: srfake.NewRegistry(), logPath: path, log: slog.New(slog.DiscardHandler)}
		err := s.restoreSchemas()
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, path) {
				t.Fatalf("error does not name the file: %q", msg)
			}
			return
		}
		// Every line seeded under its own id is found by it.
		seeded := map[int]bool{}
		type sv struct {
			subject string
			version int
		}
		found := map[sv]sr.SubjectSchema{}
		sc := bufio.NewScanner(bytes.NewReader(file))
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for sc.Scan() {
			var p persisted
			if json.Unmarshal(sc.Bytes(), &p) != nil {
				continue
			}
			ss, ok := s.registry.GetSchema(p.Subject, p.Version)
			if !ok {
				continue // restored under another version: the same schema under a second subject
			}
			found[sv{p.Subject, p.Version}] = ss
			if ss.ID == p.ID && !seeded[p.ID] {
				seeded[p.ID] = true
				if ss.Schema.Schema != p.Schema {
					t.Fatalf("id %d restored with another schema", p.ID)
				}
			}
		}
		for id := range seeded {
			if id <= 0 || id > 1<<31-1 {
				t.Fatalf("restored schema id %d, which no record can carry (4-byte framing)", id)
			}
		}
		// The next id handed out is new.
		id, _, err := s.registry.RegisterSchema("fuzz-new-value", sr.Schema{Schema: `{"type":"record","name":"FuzzNew","fields":[]}`, Type: sr.TypeAvro})
		if err == nil && (seeded[id] || id <= 0) {
			t.Fatalf("after restoring, a new schema got id %d", id)
		}
		// A second restart from the same file restores the same.
		s2 := &Stack{registry: srfake.NewRegistry(), logPath: path, log: slog.New(slog.DiscardHandler)}
		if err := s2.restoreSchemas(); err != nil {
			t.Fatalf("second restore: %v", err)
		}
		for k, a := range found {
			b, ok := s2.registry.GetSchema(k.subject, k.version)
			if !ok || a.ID != b.ID || a.Schema.Schema != b.Schema.Schema {
				t.Fatalf("%s v%d restored differently: %+v / %+v", k.subject, k.version, a, b)
			}
		}
	})
}
