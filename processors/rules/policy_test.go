package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultPolicyFile(t *testing.T) {
	p, err := LoadPolicy("default-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, DefaultPolicy()) {
		t.Errorf("default-policy.yaml loads to\n%+v\nDefaultPolicy() is\n%+v", p, DefaultPolicy())
	}
	if b, _ := os.ReadFile("default-policy.yaml"); string(b) != DefaultPolicyYAML() {
		t.Error("DefaultPolicyYAML differs from the file")
	}
	if err := DefaultPolicy().Validate(); err != nil {
		t.Error(err)
	}
}

func TestLoadPolicy(t *testing.T) {
	write := func(text string) string {
		path := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("missing keys keep defaults", func(t *testing.T) {
		p, err := LoadPolicy(write("net_metering: true\ngap_horizon_days: 365\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultPolicy()
		want.NetMetering, want.GapHorizonDays = true, 365
		if !reflect.DeepEqual(p, want) {
			t.Errorf("got %+v", p)
		}
	})
	t.Run("a list replaces the default list", func(t *testing.T) {
		p, err := LoadPolicy(write("rate_allowlist: [R9]\n"))
		if err != nil || !reflect.DeepEqual(p.RateAllowlist, []string{"R9"}) {
			t.Errorf("%v %v", p.RateAllowlist, err)
		}
		p, err = LoadPolicy(write("rate_allowlist: []\n"))
		if err != nil || len(p.RateAllowlist) != 0 || !p.RateAllowed("MED1") {
			t.Errorf("empty list: %v %v", p.RateAllowlist, err)
		}
	})
	t.Run("validation keys left out keep their defaults", func(t *testing.T) {
		p, err := LoadPolicy(write("validation:\n  min_history_share: 0.5\n  max_findings_per_rule: {U2: 3, DC-2.4: 0}\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultPolicy()
		want.Validation.MinHistoryShare = 0.5
		want.Validation.MaxFindingsPerRule = map[string]int64{"U2": 3, "DC-2.4": 0}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("got %+v", p.Validation)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		p, err := LoadPolicy(write(""))
		if err != nil || !reflect.DeepEqual(p, DefaultPolicy()) {
			t.Errorf("%+v %v", p, err)
		}
	})
	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":        {"net_meterin: true\n", "net_meterin"},
		"wrong type":         {"gap_horizon_days: two years\n", "gap_horizon_days"},
		"negative horizon":   {"gap_horizon_days: -1\n", "gap_horizon_days"},
		"zero managers":      {"property_manager_premises: 0\n", "property_manager_premises"},
		"empty rate":         {"rate_allowlist: [R1, '']\n", "rate_allowlist"},
		"two documents":      {"net_metering: true\n---\nnet_metering: false\n", "more than one"},
		"negative tolerance": {"sum_tolerance_pct: -2\n", "sum_tolerance"},
		"validation typo":    {"validation:\n  max_rejected_rows: 0.1\n", "validation.max_rejected_rows"},
		"validation share":   {"validation:\n  min_history_share: 90\n", "min_history_share"},
		"validation type":    {"validation:\n  history_months: a year\n", "validation.history_months"},
		"negative rule cap":  {"validation:\n  max_findings_per_rule: {U2: -1}\n", "max_findings_per_rule.U2"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadPolicy(write(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
	if _, err := LoadPolicy(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestRateAllowed(t *testing.T) {
	p := DefaultPolicy()
	for code, want := range map[string]bool{"R1": true, "R2": true, "TOU1": true, "MED1": false, "": true} {
		if got := p.RateAllowed(code); got != want {
			t.Errorf("%q: %v", code, got)
		}
	}
}
