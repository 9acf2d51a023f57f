package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/processors/topology"
	"github.com/usagestream/usagestream/schemas"
)

// externalScenarios cover every output topic: anomalies and eligibility
// reasons with an end date (U2), both kinds of correction (U4, U5), and
// account events of a move (A2).
var externalScenarios = []string{"U2_gap", "U4_exact_overwrite", "U5_overlapping_overwrite", "A2_customer_moves_out_new_one_moves_in"}

// externalEvent is one record as the Python client must see it.
type externalEvent struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     any    `json:"value"`
}

// TestExternalPythonClient: a consumer built on clients nobody here wrote
// (confluent-kafka's librdkafka and schema-registry client, fastavro; see
// scripts/pyclient/check_events.py) reads the output topics of a few golden
// scenarios from a real Kafka through Apicurio's Confluent-compatible API and
// must decode exactly the events the Go side decodes (and the goldens hold),
// field by field, at the same offsets, with the same keys and counts.
func TestExternalPythonClient(t *testing.T) {
	py := os.Getenv("USAGESTREAM_TEST_PYTHON")
	if py == "" || os.Getenv("USAGESTREAM_TEST_BROKERS") == "" {
		t.Skip("needs USAGESTREAM_TEST_PYTHON (the venv python with scripts/pyclient/requirements.txt) and a real cluster " +
			"(USAGESTREAM_TEST_BROKERS, USAGESTREAM_TEST_REGISTRY); scripts/test.d/60-realkafka.sh sets them")
	}
	env := kafkatest.Start(t)
	byName := map[string]scenario{}
	for _, sc := range scenarios() {
		byName[sc.name] = sc
	}
	expected := map[string][]externalEvent{}
	for i, name := range externalScenarios {
		sc, ok := byName[name]
		if !ok {
			t.Fatalf("scenario %s is gone from scenarios(): choose another for externalScenarios", name)
		}
		kc := env.Kafka
		kc.TopicPrefix = env.Kafka.TopicPrefix + fmt.Sprintf("x%02d.", i)
		policy := rules.DefaultPolicy()
		if sc.policy != nil {
			sc.policy(&policy)
		}
		got := runScenario(t, kc, sc, policy)
		golden := filepath.Join("testdata", "scenarios", sc.name+".golden")
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != got {
			t.Fatalf("%s: the Go side already differs from %s:\n--- want\n%s\n--- got\n%s", name, golden, want, got)
		}
		topo := topology.New(kc.TopicPrefix)
		for _, name := range topo.OfKind(topology.Event) {
			x, _ := topo.Topic(name)
			expected[name] = expectedEvents(t, kc, x)
		}
	}
	total, perKind := 0, map[string]int{}
	for topic, evs := range expected {
		perKind[topic[strings.LastIndex(topic[:len(topic)-len(".v1")], ".")+1:]] += len(evs)
		total += len(evs)
	}
	for _, kind := range []string{"eligibility.v1", "corrections.v1", "anomalies.v1", "account-events.v1"} {
		if perKind[kind] == 0 {
			t.Fatalf("no %s events: the scenarios %v no longer exercise that topic (%v)", kind, externalScenarios, perKind)
		}
	}

	dir := t.TempDir()
	file := writeExpected(t, dir, "expected.json", expected)
	out, err := runPyClient(t, py, env.Kafka, file)
	if err != nil {
		t.Fatalf("the Python client disagrees with the Go test (%v):\n%s", err, out)
	}
	t.Logf("%d events in %d topics: %s", total, len(expected), strings.TrimSpace(out))
	if !strings.Contains(out, fmt.Sprintf("pyclient: %d events", total)) {
		t.Fatalf("the Python client did not report %d events:\n%s", total, out)
	}

	// The comparison itself must catch a difference: one changed field of one
	// eligibility event, and one event too many.
	tampered := map[string][]externalEvent{}
	var eligTopic string
	for topic, evs := range expected {
		tampered[topic] = append(make([]externalEvent, 0, len(evs)+1), evs...)
		if strings.HasSuffix(topic, "eligibility.v1") && eligTopic == "" {
			eligTopic = topic
		}
	}
	first := tampered[eligTopic][0]
	v := first.Value.(map[string]any)
	changed := map[string]any{}
	for k, x := range v {
		changed[k] = x
	}
	changed["eligible"] = !v["eligible"].(bool)
	first.Value = changed
	tampered[eligTopic][0] = first
	extra := first
	extra.Offset = 1 << 40
	tampered[eligTopic] = append(tampered[eligTopic], extra)
	out, err = runPyClient(t, py, env.Kafka, writeExpected(t, dir, "tampered.json", tampered))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("tampered expectations: want exit status 1, got %v:\n%s", err, out)
	}
	for _, must := range []string{
		fmt.Sprintf("%s/%d@%d.eligible: got %v, want %v", eligTopic, first.Partition, first.Offset, v["eligible"], changed["eligible"]),
		fmt.Sprintf("%s: %d records read, the Go test expects %d", eligTopic, len(expected[eligTopic]), len(expected[eligTopic])+1),
	} {
		if !strings.Contains(out, must) {
			t.Errorf("tampered expectations: the Python client's report lacks %q:\n%s", must, out)
		}
	}
}

// expectedEvents reads topic back in Go and renders each value in plain JSON
// terms, guided by its Avro schema.
func expectedEvents(t *testing.T, kc kafkaconf.Config, sp topology.Topic) []externalEvent {
	t.Helper()
	recs := kafkatest.ReadAll(t, kc, sp.Name)
	values := kafkatest.Decode(t, kc, recs)
	schema := parseSchema(t, sp.Schema)
	out := make([]externalEvent, 0, len(recs))
	for i, r := range recs {
		v, err := schema.plain(schema.root, values[i])
		if err != nil {
			t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, externalEvent{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: v})
	}
	return out
}

func writeExpected(t *testing.T, dir, name string, topics map[string][]externalEvent) string {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"topics": topics}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runPyClient(t *testing.T, py string, kc kafkaconf.Config, expected string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := filepath.Join("..", "..", "scripts", "pyclient", "check_events.py")
	cmd := exec.CommandContext(ctx, py, script, "--brokers", strings.Join(kc.Brokers, ","),
		"--registry", kc.RegistryURL(), "compare", "--expected", expected)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// avroSchema renders goavro's native values as plain JSON: unions
// unwrapped, dates as YYYY-MM-DD, timestamps as epoch milliseconds; the way
// any other client's decoded values read once written as JSON.
type avroSchema struct {
	root  any
	named map[string]any
}

func parseSchema(t *testing.T, n schemas.Name) *avroSchema {
	t.Helper()
	var root any
	if err := json.Unmarshal([]byte(schemas.MustText(n)), &root); err != nil {
		t.Fatalf("schema %s: %v", n, err)
	}
	s := &avroSchema{root: root, named: map[string]any{}}
	s.define(root, "")
	return s
}

// define records every named type, so a reference by name resolves even
// when no value so far went through its definition (an empty array's items).
func (s *avroSchema) define(schema any, ns string) {
	switch sc := schema.(type) {
	case []any:
		for _, b := range sc {
			s.define(b, ns)
		}
	case map[string]any:
		if name, ok := sc["name"].(string); ok {
			// Without a namespace of its own, a name takes the enclosing one.
			if own, ok := sc["namespace"].(string); ok {
				ns = own
			}
			s.named[name] = sc
			s.named[ns+"."+name] = sc
		}
		if fields, ok := sc["fields"].([]any); ok {
			for _, f := range fields {
				s.define(f.(map[string]any)["type"], ns)
			}
		}
		for _, k := range []string{"items", "values"} {
			if x, ok := sc[k]; ok {
				s.define(x, ns)
			}
		}
		if inner, ok := sc["type"].(map[string]any); ok {
			s.define(inner, ns)
		}
	}
}

func (s *avroSchema) plain(schema, v any) (any, error) {
	switch sc := schema.(type) {
	case string:
		if def, ok := s.named[sc]; ok {
			return s.plain(def, v)
		}
		return primitive(sc, v)
	case []any: // a union
		if v == nil {
			return nil, nil
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("union value %v is not goavro's one-branch map", v)
		}
		var branches []any
		for _, b := range sc {
			if b != "null" {
				branches = append(branches, b)
			}
		}
		if len(branches) != 1 {
			return nil, fmt.Errorf("union %v: only [null, T] unions are rendered here", sc)
		}
		for _, inner := range m {
			return s.plain(branches[0], inner)
		}
	case map[string]any:
		typ, _ := sc["type"].(string)
		switch {
		case sc["logicalType"] == "date":
			d, ok := v.(time.Time)
			if !ok {
				return nil, fmt.Errorf("date %v is %T, not time.Time", v, v)
			}
			return d.UTC().Format("2006-01-02"), nil
		case sc["logicalType"] == "timestamp-millis":
			ts, ok := v.(time.Time)
			if !ok {
				return nil, fmt.Errorf("timestamp %v is %T, not time.Time", v, v)
			}
			return ts.UnixMilli(), nil
		case typ == "record":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %s is %T", sc["name"], v)
			}
			out := map[string]any{}
			fields, _ := sc["fields"].([]any)
			for _, f := range fields {
				fm := f.(map[string]any)
				name := fm["name"].(string)
				x, err := s.plain(fm["type"], m[name])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				out[name] = x
			}
			return out, nil
		case typ == "array":
			xs, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("array is %T", v)
			}
			out := make([]any, len(xs))
			for i, x := range xs {
				y, err := s.plain(sc["items"], x)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				out[i] = y
			}
			return out, nil
		case typ == "map":
			xs, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("map is %T", v)
			}
			out := map[string]any{}
			for k, x := range xs {
				y, err := s.plain(sc["values"], x)
				if err != nil {
					return nil, fmt.Errorf("[%q]: %w", k, err)
				}
				out[k] = y
			}
			return out, nil
		case typ == "enum":
			return primitive("string", v)
		default:
			return s.plain(sc["type"], v)
		}
	}
	return nil, fmt.Errorf("unsupported schema %v", schema)
}

func primitive(typ string, v any) (any, error) {
	ok := false
	switch typ {
	case "null":
		ok = v == nil
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "int", "long":
		switch v.(type) {
		case int32, int64, int:
			ok = true
		}
	case "float", "double":
		switch v.(type) {
		case float32, float64:
			ok = true
		}
	}
	if !ok {
		return nil, fmt.Errorf("value %v (%T) is not an Avro %s", v, v, typ)
	}
	return v, nil
}
