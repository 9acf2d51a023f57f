package rules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The rule catalogue (docs/rules.md) is what every rule id and code that
// reaches a topic, a report or a message is explained by: a downstream user
// reading a schema or an event is sent there. These tests keep it complete
// and keep every citation pointing at it.

// repoRoot is the module root: the first parent with a go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// skipDir says which folders hold no project text: git's, caches and run
// data (.gitignore), and the registered past schema versions, which keep the
// citations they were released with.
func skipDir(rel string) bool {
	switch rel {
	case ".git", ".cache", "bin", "data", "node_modules", filepath.Join("schemas", "history"):
		return true
	}
	return filepath.Base(rel) == "node_modules"
}

// walkFiles calls fn with the repository-relative path and content of every
// text file of the project.
func walkFiles(t *testing.T, root string, fn func(rel string, b []byte)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && skipDir(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if slices.Contains(b, 0) { // binary
			return nil
		}
		fn(filepath.ToSlash(rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// catalogue is what a document offers to link to and to look up.
type catalogue struct {
	anchors map[string]bool // explicit <a id> anchors and heading slugs
	terms   map[string]bool // every `backticked` word
}

var (
	anchorRe   = regexp.MustCompile(`<a id="([^"]+)"></a>`)
	headingRe  = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)
	backtickRe = regexp.MustCompile("`([^`\\s]+)`")
)

// slug is GitHub's anchor for a heading: lower case, punctuation dropped,
// spaces as hyphens.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readCatalogue(t *testing.T, path string) catalogue {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the catalogue must exist: %v", err)
	}
	c := catalogue{anchors: map[string]bool{}, terms: map[string]bool{}}
	for _, m := range anchorRe.FindAllStringSubmatch(string(b), -1) {
		c.anchors[m[1]] = true
	}
	for _, m := range headingRe.FindAllStringSubmatch(string(b), -1) {
		c.anchors[slug(m[1])] = true
	}
	for _, m := range backtickRe.FindAllStringSubmatch(string(b), -1) {
		c.terms[m[1]] = true
	}
	return c
}

// ruleIDRe is the form of a rule id: a catalogue id (U2) or a data contract
// rule (DC-2.4).
var ruleIDRe = regexp.MustCompile(`^((OV|[UACSI])[0-9]+|DC-[0-9]+(\.[0-9]+)?)$`)

// codeConstRe names the constants whose values are ids and codes that reach
// events, rejected rows and reports.
var codeConstRe = regexp.MustCompile(`^(Reason|Anomaly|Code|Rule|Event|Correction|Program)[A-Z0-9]`)

// emitted collects, from the project's Go code (tests excluded), the rule
// ids it cites (every string literal of that form) and the codes it defines
// (string constants named Reason*, Anomaly*, Code*, Rule*, Event*,
// Correction*, Program*), each with where it was found.
func emitted(t *testing.T, root string) (ruleIDs, codes map[string]string) {
	t.Helper()
	ruleIDs, codes = map[string]string{}, map[string]string{}
	fset := token.NewFileSet()
	walkFiles(t, root, func(rel string, b []byte) {
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "testdata/") {
			return
		}
		f, err := parser.ParseFile(fset, rel, b, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GenDecl:
				if n.Tok != token.CONST {
					return true
				}
				for _, s := range n.Specs {
					vs := s.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i >= len(vs.Values) || !codeConstRe.MatchString(name.Name) {
							continue
						}
						if v, ok := stringLit(vs.Values[i]); ok && v != "" {
							codes[v] = rel + ": " + name.Name
						}
					}
				}
			case *ast.BasicLit:
				if v, ok := stringLit(n); ok && ruleIDRe.MatchString(v) {
					ruleIDs[v] = fset.Position(n.Pos()).String()
				}
			}
			return true
		})
	})
	return ruleIDs, codes
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

// TestCatalogueHasEveryRuleAndCode: every rule id the code cites has its
// anchor in docs/rules.md (so that docs/rules.md#U2 leads somewhere), and
// every code it defines is named there.
func TestCatalogueHasEveryRuleAndCode(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	cat := readCatalogue(t, filepath.Join(root, "docs", "rules.md"))
	ids, codes := emitted(t, root)
	// Guard the scan itself: were it to find nothing, nothing would be checked.
	for _, must := range []string{"U2", "A8", "S1", "I5", "DC-2.4", "DC-3"} {
		if ids[must] == "" {
			t.Errorf("the scan of the code found no rule id %s; is the scan broken?", must)
		}
	}
	for _, must := range []string{ReasonUsageGap, AnomalyStaleFeed, EventSuperseded, "BAD_DATE", "OFF_GRID", "DATE_OUT_OF_RANGE"} {
		if codes[must] == "" {
			t.Errorf("the scan of the code found no code %s; is the scan broken?", must)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if !cat.anchors[id] {
			t.Errorf("rule %s (cited at %s) has no entry in docs/rules.md: add a section with <a id=%q></a>", id, ids[id], id)
		}
	}
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		if ruleIDRe.MatchString(c) {
			if !cat.anchors[c] {
				t.Errorf("rule %s (%s) has no entry in docs/rules.md: add a section with <a id=%q></a>", c, codes[c], c)
			}
			continue
		}
		if !cat.terms[c] {
			t.Errorf("code %s (%s) is not in docs/rules.md: say under its rule what it means, as `%s`", c, codes[c], c)
		}
	}
}

// Citations the project no longer has: the upstream files, and a bare "data
// contract" followed by a section number (the label is
// "docs/data-contract.md §2.5").
var staleCitationRe = regexp.MustCompile(`spec/(rules|data-contract)\.md|(?i:\bdata\s+(//\s*|#\s*)?contract\s+§?[0-9])`)

// TestNoCitationOfTheUpstreamCatalogue: no file points at a catalogue or
// contract that is not in the repository.
func TestNoCitationOfTheUpstreamCatalogue(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	walkFiles(t, root, func(rel string, b []byte) {
		for _, loc := range staleCitationRe.FindAllIndex(b, -1) {
			line := 1 + strings.Count(string(b[:loc[0]]), "\n")
			t.Errorf("%s:%d: %q cites a file that is not in the repository; cite docs/rules.md#<id> or docs/data-contract.md §<section> instead",
				rel, line, b[loc[0]:loc[1]])
		}
	})
}

var linkRe = regexp.MustCompile(`(rules|data-contract)\.md#([A-Za-z0-9_.\-]+)|\]\(#([A-Za-z0-9_.\-]+)\)`)

// TestCatalogueLinksResolve: every link docs/rules.md#<anchor> or
// docs/data-contract.md#<anchor>, from any file, and every link inside those two
// documents, names an anchor that exists.
func TestCatalogueLinksResolve(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	docs := map[string]catalogue{
		"rules":         readCatalogue(t, filepath.Join(root, "docs", "rules.md")),
		"data-contract": readCatalogue(t, filepath.Join(root, "docs", "data-contract.md")),
	}
	links := 0
	walkFiles(t, root, func(rel string, b []byte) {
		for _, m := range linkRe.FindAllSubmatchIndex(b, -1) {
			doc, anchor := "", ""
			switch {
			case m[2] >= 0:
				doc, anchor = string(b[m[2]:m[3]]), string(b[m[4]:m[5]])
			case rel == "docs/rules.md":
				doc, anchor = "rules", string(b[m[6]:m[7]])
			case rel == "docs/data-contract.md":
				doc, anchor = "data-contract", string(b[m[6]:m[7]])
			default:
				continue // an in-page link of another document
			}
			anchor = strings.TrimRight(anchor, ".")
			links++
			if !docs[doc].anchors[anchor] {
				line := 1 + strings.Count(string(b[:m[0]]), "\n")
				t.Errorf("%s:%d: link to docs/%s.md#%s, which has no such anchor", rel, line, doc, anchor)
			}
		}
	})
	if links < 50 {
		t.Errorf("found %d links to the catalogue; is the scan broken?", links)
	}
}

// ruleTestRe is a test named after a rule id: TestU2Gap, TestI1OneLength...
var ruleTestRe = regexp.MustCompile(`^Test((?:OV|[UACSI])[0-9]+)(.*)$`)

// TestRuleTestNames keeps one naming style for rule tests: Test, the rule id
// of docs/rules.md, then what is tested in CamelCase (TestU2Gap), with
// table cases as subtests named in words.
func TestRuleTestNames(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	cat := readCatalogue(t, filepath.Join(root, "docs", "rules.md"))
	fset := token.NewFileSet()
	n := 0
	walkFiles(t, root, func(rel string, b []byte) {
		if !strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "testdata/") {
			return
		}
		f, err := parser.ParseFile(fset, rel, b, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil {
				continue
			}
			m := ruleTestRe.FindStringSubmatch(fd.Name.Name)
			if m == nil {
				continue
			}
			n++
			if !cat.anchors[m[1]] {
				t.Errorf("%s: %s is named after rule %s, which docs/rules.md does not have", fset.Position(fd.Pos()), fd.Name.Name, m[1])
			}
			if m[2] == "" || !unicode.IsUpper(rune(m[2][0])) {
				t.Errorf("%s: %s: name a rule test Test%s<WhatInCamelCase>, like TestU2Gap", fset.Position(fd.Pos()), fd.Name.Name, m[1])
			}
		}
	})
	if n < 30 {
		t.Errorf("found %d rule tests; is the scan broken?", n)
	}
}
