package schemas

import (
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/avro"
)

// releasedVersions returns history/<name>/v*.avsc sorted by version number.
func releasedVersions(t *testing.T, n Name) []string {
	t.Helper()
	entries, err := fs.ReadDir(files, "history/"+string(n))
	if err != nil {
		t.Fatalf("schema %s has no released history: add history/%s/v1.avsc: %v", n, n, err)
	}
	var versions []int
	for _, e := range entries {
		v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "v"), ".avsc"))
		if err != nil {
			t.Fatalf("history/%s/%s: file names must be v<N>.avsc", n, e.Name())
		}
		versions = append(versions, v)
	}
	slices.Sort(versions)
	out := make([]string, 0, len(versions))
	for _, v := range versions {
		b, err := fs.ReadFile(files, fmt.Sprintf("history/%s/v%d.avsc", n, v))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// compatible says whether reader reads what writer wrote (twmb/avro's
// check, which the stages' schema resolution applies too).
func compatible(reader, writer *avro.Schema) error {
	return avro.CheckCompatibility(writer, reader)
}

func parse(t *testing.T, what, text string) *avro.Schema {
	t.Helper()
	s, err := avro.Parse(text)
	if err != nil {
		t.Fatalf("%s does not parse: %v", what, err)
	}
	return s
}

// TestSchemasParseWithGoavro: goavro is the reference the project's codec
// is checked against (and what many consumers use); every schema must
// compile there too.
func TestSchemasParseWithGoavro(t *testing.T) {
	for _, n := range All() {
		if _, err := goavro.NewCodec(MustText(n)); err != nil {
			t.Errorf("%s: goavro rejects the schema: %v", n, err)
		}
	}
}

// TestSchemasBackwardCompatible is what a registry with BACKWARD compatibility
// demands: the current schema reads data written with the newest released
// one, and each released version reads the one before it.
func TestSchemasBackwardCompatible(t *testing.T) {
	for _, n := range All() {
		history := releasedVersions(t, n)
		current := parse(t, string(n)+".avsc", MustText(n))
		newest := parse(t, fmt.Sprintf("history/%s/v%d.avsc", n, len(history)), history[len(history)-1])
		if err := compatible(current, newest); err != nil {
			t.Errorf("%s.avsc is not backward compatible with released v%d: %v", n, len(history), err)
		}
		for i := 1; i < len(history); i++ {
			older := parse(t, "older", history[i-1])
			newer := parse(t, "newer", history[i])
			if err := compatible(newer, older); err != nil {
				t.Errorf("history of %s: v%d cannot read v%d: %v", n, i+1, i, err)
			}
		}
	}
}

// TestSchemaChangesAreReleased: a changed schema must be recorded as a new
// released version, so that the compatibility test above compares against it
// from then on.
func TestSchemaChangesAreReleased(t *testing.T) {
	for _, n := range All() {
		history := releasedVersions(t, n)
		cur := parse(t, "current", MustText(n)).Fingerprint(avro.NewRabin())
		last := parse(t, "newest", history[len(history)-1]).Fingerprint(avro.NewRabin())
		if string(cur) != string(last) {
			t.Errorf("%s.avsc differs from history/%s/v%d.avsc: copy it to history/%s/v%d.avsc once it is released",
				n, n, len(history), n, len(history)+1)
		}
	}
}

// TestCompatibilityCheckerCatchesBreaks guards the guard: a change that a
// BACKWARD registry refuses must fail the check above.
func TestCompatibilityCheckerCatchesBreaks(t *testing.T) {
	old := parse(t, "old", `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`)
	added := parse(t, "added", `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"long"}]}`)
	if err := compatible(added, old); err == nil {
		t.Fatal("a new field without a default must break BACKWARD compatibility")
	}
	withDefault := parse(t, "withDefault", `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"long","default":0}]}`)
	if err := compatible(withDefault, old); err != nil {
		t.Fatalf("a new field with a default is backward compatible: %v", err)
	}
}

// TestEveryRecordCarriesTheUtility: the issue demands the utility code on
// every record.
func TestEveryRecordCarriesTheUtility(t *testing.T) {
	for _, n := range All() {
		if !strings.Contains(MustText(n), `"name": "utility"`) {
			t.Errorf("%s has no utility field", n)
		}
	}
}
