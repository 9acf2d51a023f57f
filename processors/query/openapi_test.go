package query

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesTheCode: docs/openapi.yaml documents every path this
// API serves and, for every answer type, exactly the fields the code writes
// (names and required ones), so the document cannot drift from the code.
func TestOpenAPIMatchesTheCode(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string         `yaml:"openapi"`
		Paths      map[string]any `yaml:"paths"`
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
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	for _, p := range []string{"/v1/service-points/{service_point_id}", "/v1/customers/{customer_id}", "/v1/customers/{customer_id}/premises/{premise_id}", "/v1/overrides",
		"/v1/service-points/{service_point_id}/corrections", "/v1/service-points/{service_point_id}/intervals", "/v1/premises/{premise_id}", "/v1/files", "/v1/stages"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("path %s is served but not documented", p)
		}
	}
	// Other endpoints on the same server (POST /v1/intervals, say) may be
	// documented here too; only this package's are checked.
	types := map[string]any{
		"Error": Error{}, "Owner": Owner{}, "Source": Source{}, "Period": Period{}, "Account": Account{},
		"Anomaly": Anomaly{}, "ServicePoint": ServicePoint{}, "Reason": Reason{}, "Program": Program{},
		"Membership": Membership{}, "Premise": Premise{}, "PremiseSummary": PremiseSummary{}, "Customer": Customer{},
		"OverrideRequest": OverrideRequest{}, "Override": Override{}, "Overrides": Overrides{},
		"FileEvent": FileEvent{}, "Files": Files{}, "Correction": Correction{}, "Corrections": Corrections{},
		"DayCoverage": DayCoverage{}, "ChannelCoverage": ChannelCoverage{}, "Coverage": Coverage{},
		"PremiseMember": PremiseMember{}, "PremiseSite": PremiseSite{}, "StageStatus": StageStatus{}, "SinkStatus": SinkStatus{}, "Stages": Stages{},
	}
	for name, v := range types {
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
			if !strings.Contains(opts, "omitempty") {
				required = append(required, n)
			}
		}
		var documented []string
		for p := range s.Properties {
			documented = append(documented, p)
		}
		slices.Sort(fields)
		slices.Sort(documented)
		if !slices.Equal(fields, documented) {
			t.Errorf("schema %s documents %v; the code writes %v", name, documented, fields)
		}
		for _, r := range required {
			if !slices.Contains(s.Required, r) {
				t.Errorf("schema %s: %s is always written but not required", name, r)
			}
		}
		for _, r := range s.Required {
			if !slices.Contains(required, r) {
				t.Errorf("schema %s requires %s, which the code may leave out", name, r)
			}
		}
	}
}
