// Package openapitest holds docs/openapi.yaml to the code: the tests of
// each HTTP package load the document once and check that the schemas of
// their request and answer types name exactly the JSON fields the Go types
// have, so the document cannot drift from the code.
package openapitest

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Doc is the part of an OpenAPI 3 document the checks read.
type Doc struct {
	OpenAPI string `yaml:"openapi"`
	// Paths: path, then method (or "parameters"), then the operation as
	// decoded YAML.
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]Schema `yaml:"schemas"`
	} `yaml:"components"`
}

// Schema is a component schema's field names.
type Schema struct {
	Required   []string       `yaml:"required"`
	Properties map[string]any `yaml:"properties"`
}

// Load reads the OpenAPI document at path (from a package's tests,
// "../../docs/openapi.yaml").
func Load(t testing.TB, path string) *Doc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d Doc
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &d
}

// Operation is the operation of method on path as decoded YAML, or nil.
func (d *Doc) Operation(path, method string) map[string]any {
	op, _ := d.Paths[path][method].(map[string]any)
	return op
}

// CheckSchema fails t unless schema name documents exactly the JSON fields
// of v's type (the struct v is) and requires exactly those required says
// are (given each field and its json tag's options).
func (d *Doc) CheckSchema(t testing.TB, name string, v any, required func(f reflect.StructField, opts string) bool) {
	t.Helper()
	s, ok := d.Components.Schemas[name]
	if !ok {
		t.Errorf("schema %s is missing", name)
		return
	}
	var fields, req []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		tag := rt.Field(i).Tag.Get("json")
		if tag == "" || tag == "-" {
			continue
		}
		n, opts, _ := strings.Cut(tag, ",")
		fields = append(fields, n)
		if required(rt.Field(i), opts) {
			req = append(req, n)
		}
	}
	var documented []string
	for p := range s.Properties {
		documented = append(documented, p)
	}
	documentedReq := slices.Clone(s.Required)
	for _, l := range [][]string{fields, req, documented, documentedReq} {
		slices.Sort(l)
	}
	if !slices.Equal(fields, documented) {
		t.Errorf("schema %s documents %v; the code has %v", name, documented, fields)
	}
	if !slices.Equal(req, documentedReq) {
		t.Errorf("schema %s requires %v; the code requires %v", name, documentedReq, req)
	}
}

// Written is the required rule of an answer: a field without omitempty
// is always written.
func Written(_ reflect.StructField, opts string) bool { return !strings.Contains(opts, "omitempty") }
