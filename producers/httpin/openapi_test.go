package httpin

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIDocumentsTheEndpoint: docs/openapi.yaml documents POST
// /v1/intervals with every status the handler answers, and for the line
// and every answer type exactly the fields the code reads and writes
// (names and required ones), so the document cannot drift from the code.
func TestOpenAPIDocumentsTheEndpoint(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]any `yaml:"content"`
			} `yaml:"requestBody"`
			Responses map[string]any `yaml:"responses"`
		} `yaml:"paths"`
		Components struct {
			Schemas map[string]struct {
				Required   []string       `yaml:"required"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	op, ok := doc.Paths[Path]["post"]
	if !ok {
		t.Fatalf("POST %s is not documented", Path)
	}
	if _, ok := op.RequestBody.Content["application/x-ndjson"]; !ok {
		t.Errorf("the request body is not documented as application/x-ndjson")
	}
	for _, code := range []string{"200", "400", "401", "405", "413", "503"} {
		if _, ok := op.Responses[code]; !ok {
			t.Errorf("status %s is answered but not documented", code)
		}
	}
	for name, v := range map[string]any{"IntervalLine": line{}, "IntervalsResponse": Response{}, "IntervalResult": Result{}, "IntervalLineError": LineFail{}} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var fields, required []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag := rt.Field(i).Tag.Get("json")
			if tag == "" || tag == "-" {
				continue
			}
			n, opts, _ := strings.Cut(tag, ",")
			fields = append(fields, n)
			// A line's pointer fields are the required keys; an answer's
			// fields without omitempty are always written.
			if name == "IntervalLine" && rt.Field(i).Type.Kind() == reflect.Pointer || name != "IntervalLine" && !strings.Contains(opts, "omitempty") {
				required = append(required, n)
			}
		}
		var documented []string
		for p := range s.Properties {
			documented = append(documented, p)
		}
		slices.Sort(fields)
		slices.Sort(documented)
		slices.Sort(required)
		req := slices.Clone(s.Required)
		slices.Sort(req)
		if !slices.Equal(fields, documented) {
			t.Errorf("schema %s documents %v; the code has %v", name, documented, fields)
		}
		if !slices.Equal(required, req) {
			t.Errorf("schema %s requires %v; the code %v", name, req, required)
		}
	}
}
