// The import-layer test lives at the module root, in a package of its own
// with no code: it reads the import graph through `go list` and imports no
// package of the module, so it can create no cycle, and at the root it
// belongs to no layer it judges. It runs with `go test ./...` like every
// other test.
package usagestream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/usagestream/usagestream"

// The layers, from the bottom (design.md, "Layout"). An import never
// climbs: a package imports only packages of its own layer or below.
//
// processors/ and sinks/ are one layer: both read topics that producers
// write, neither imports the other today, and the design puts them side by
// side; the test lets either use the other's types rather than inventing an
// order between them.
var layers = []struct {
	name     string
	prefixes []string // import paths below the module, "x" meaning x and x/...
}{
	{"internal", []string{"internal"}},
	{"records and schemas", []string{"records", "schemas"}},
	{"producers", []string{"producers"}},
	{"processors and sinks", []string{"processors", "sinks"}},
	{"cmd", []string{"cmd"}},
}

// domainFree are the packages that must know nothing of the domain: they
// import no record type, schema, reader, rule or topic, directly or through
// another package. internal/ is plumbing (framing, config, the embedded
// broker); the runtime moves records, state and transactions without
// knowing what they mean (design.md: the rules apart from the runtime).
var domainFree = []string{"internal", "processors/runtime"}

// pure are packages that may import only the two bottom layers: the rules
// are pure functions of state and input (design.md), so that the same rules
// run in the streaming runtime and in offline validation.
var pure = []string{"processors/rules"}

// pending are violations that other work of issue 15 removes: each says who
// removes it. An entry that is no longer a violation fails the test, so the
// list only shrinks; never add one to let a new violation in.
var pending = []edge{}

// edge is an import, both ends relative to the module ("internal/serde").
type edge struct{ from, to string }

func (e edge) String() string { return e.from + " -> " + e.to }

// pkg is what the test needs of `go list -json`: a package's own imports,
// not its tests'. Tests may take inputs from any layer (real schemas, the
// generator) as long as Go accepts them; they add nothing to what a user
// of the package imports.
type pkg struct {
	ImportPath string
	Imports    []string
}

func under(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func layerOf(path string) int {
	for i, l := range layers {
		if under(path, l.prefixes) {
			return i
		}
	}
	return -1
}

// violation is a broken rule: the import and why it may not be.
type violation struct {
	edge
	why string
}

// check returns every import between packages of the module that breaks a
// rule. Paths in pkgs are full import paths.
func check(pkgs []pkg) ([]violation, error) {
	imports := map[string][]string{} // module-relative
	for _, p := range pkgs {
		from, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			continue // the root: this test
		}
		if layerOf(from) < 0 {
			return nil, fmt.Errorf("package %s is in no layer: add its folder to the layers of this test (design.md, Layout)", from)
		}
		for _, imp := range p.Imports {
			if to, ok := strings.CutPrefix(imp, module+"/"); ok {
				imports[from] = append(imports[from], to)
			}
		}
	}

	// knows says whether a package knows the domain: it is not one of the
	// domain-free ones, or it imports, at any depth, one that is not.
	known := map[string]bool{}
	var knows func(string, map[string]bool) bool
	knows = func(p string, seen map[string]bool) bool {
		if k, ok := known[p]; ok {
			return k
		}
		if !under(p, domainFree) {
			known[p] = true
			return true
		}
		if seen[p] {
			return false // a cycle: Go refuses it anyway
		}
		seen[p] = true
		k := slices.ContainsFunc(imports[p], func(q string) bool { return knows(q, seen) })
		known[p] = k
		return k
	}

	var vs []violation
	for from, tos := range imports {
		for _, to := range tos {
			e := edge{from, to}
			lf, lt := layerOf(from), layerOf(to)
			switch {
			case lt > lf:
				vs = append(vs, violation{e, fmt.Sprintf("the %s layer imports from the %s layer above it", layers[lf].name, layers[lt].name)})
			case under(from, pure) && lt > 1 && !under(to, pure):
				vs = append(vs, violation{e, "the rules are pure: they import only internal/, records and schemas"})
			case under(from, domainFree) && knows(to, map[string]bool{}):
				vs = append(vs, violation{e, "a domain-free package imports one that knows the domain (records, schemas, topics, readers or rules, directly or through another package)"})
			}
		}
	}
	slices.SortFunc(vs, func(a, b violation) int { return strings.Compare(a.String(), b.String()) })
	return vs, nil
}

// goList lists every package of the module with its own imports.
func goList(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding go list's output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; run the test from the module root", len(pkgs))
	}
	return pkgs
}

// TestImportLayers holds the line of design.md: no import climbs a layer,
// the domain-free packages know no domain, the rules stay pure.
func TestImportLayers(t *testing.T) {
	vs, err := check(goList(t))
	if err != nil {
		t.Fatal(err)
	}
	found := map[edge]bool{}
	for _, v := range vs {
		if slices.Contains(pending, v.edge) {
			found[v.edge] = true
			continue
		}
		t.Errorf("%s: %s; move the code to the layer where it belongs, or what it needs below it", v, v.why)
	}
	for _, e := range pending {
		if !found[e] {
			t.Errorf("pending %s is no longer a violation: remove it from the list", e)
		}
	}
}

// TestImportLayerRules: each rule catches what it is for, and lets through
// what the layers allow.
func TestImportLayerRules(t *testing.T) {
	p := func(path string, imports ...string) pkg {
		for i := range imports {
			imports[i] = module + "/" + imports[i]
		}
		return pkg{ImportPath: module + "/" + path, Imports: append(imports, "fmt")}
	}
	vs, err := check([]pkg{
		p("internal/dates"),
		p("internal/serde", "internal/dates"),
		p("internal/names", "schemas"),            // knows the domain
		p("internal/uses", "internal/names"),      // through another package
		p("internal/climbs", "producers/billing"), // climbs two layers
		p("schemas"),
		p("records", "internal/dates", "schemas"),
		p("producers/billing", "records", "internal/serde"),
		p("producers/gen", "producers/billing"),
		p("producers/up", "processors/rules"), // climbs
		p("processors/rules", "records", "producers/billing"),
		p("processors/runtime", "internal/serde", "records"),
		p("processors/query", "processors/rules", "producers/billing", "internal/names"),
		p("sinks/jsonl", "processors/rules"), // one layer
		p("sinks/down", "cmd/usagestream"),   // climbs
		p("cmd/usagestream", "sinks/jsonl", "processors/query"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.String())
	}
	want := []string{
		"internal/climbs -> producers/billing",
		"internal/names -> schemas",
		"internal/uses -> internal/names",
		"processors/rules -> producers/billing",
		"processors/runtime -> records",
		"producers/up -> processors/rules",
		"sinks/down -> cmd/usagestream",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := check([]pkg{p("tools/x")}); err == nil {
		t.Fatal("a package in no layer passed")
	}
}
