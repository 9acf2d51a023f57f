package httpin

import (
	"reflect"
	"testing"

	"github.com/usagestream/usagestream/internal/openapitest"
)

// TestOpenAPIDocumentsTheEndpoint: docs/openapi.yaml documents POST
// /v1/intervals with every status the handler answers, and for the line
// and every answer type exactly the fields the code reads and writes
// (names and required ones), so the document cannot drift from the code.
func TestOpenAPIDocumentsTheEndpoint(t *testing.T) {
	doc := openapitest.Load(t, "../../docs/openapi.yaml")
	op := doc.Operation(Path, "post")
	if op == nil {
		t.Fatalf("POST %s is not documented", Path)
	}
	body, _ := op["requestBody"].(map[string]any)
	content, _ := body["content"].(map[string]any)
	if _, ok := content["application/x-ndjson"]; !ok {
		t.Errorf("the request body is not documented as application/x-ndjson")
	}
	responses, _ := op["responses"].(map[string]any)
	for _, code := range []string{"200", "400", "401", "405", "413", "503"} {
		if _, ok := responses[code]; !ok {
			t.Errorf("status %s is answered but not documented", code)
		}
	}
	// A line's pointer fields are the required keys; an answer's fields
	// without omitempty are always written.
	doc.CheckSchema(t, "IntervalLine", line{}, func(f reflect.StructField, _ string) bool { return f.Type.Kind() == reflect.Pointer })
	for name, v := range map[string]any{"IntervalsResponse": Response{}, "IntervalResult": Result{}, "IntervalLineError": LineFail{}} {
		doc.CheckSchema(t, name, v, openapitest.Written)
	}
}
