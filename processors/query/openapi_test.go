package query

import (
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/openapitest"
)

// TestOpenAPIMatchesTheCode: docs/openapi.yaml documents every path this
// API serves and, for every answer type, exactly the fields the code writes
// (names and required ones), so the document cannot drift from the code.
func TestOpenAPIMatchesTheCode(t *testing.T) {
	doc := openapitest.Load(t, "../../docs/openapi.yaml")
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
		doc.CheckSchema(t, name, v, openapitest.Written)
	}
}
