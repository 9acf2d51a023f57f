package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultPolicyFile(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Run("intervals keys left out keep their defaults", func(t *testing.T) {
		p, err := LoadPolicy(write("intervals:\n  stale_after: 36h\n  zero_run: 90m\n  spike_ratio: 4.5\n  retention_days: 500\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultPolicy()
		want.Intervals.StaleAfter = 36 * time.Hour
		want.Intervals.ZeroRunMinutes = 90
		want.Intervals.SpikeRatio = 4.5
		want.Intervals.RetentionDays = 500
		if !reflect.DeepEqual(p, want) {
			t.Errorf("got %+v", p.Intervals)
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
		"intervals typo":     {"intervals:\n  stale_afer: 72h\n", "line 2: unknown key intervals.stale_afer; the known keys are detail_days, estimate_run,"},
		"intervals twice":    {"intervals:\n  spike_ratio: 3\n  spike_ratio: 4\n", "intervals.spike_ratio given twice"},
		"intervals a list":   {"intervals: [72h]\n", "intervals must be a mapping"},
		"duration a number":  {"intervals:\n  stale_after: 72\n", "intervals.stale_after: line 2: cannot unmarshal !!int `72` into time.Duration (give a duration such as 72h or 90m)"},
		"duration a word":    {"intervals:\n  estimate_run: two days\n", "intervals.estimate_run"},
		"count a word":       {"intervals:\n  detail_days: forty\n", "intervals.detail_days"},
		"stale too soon":     {"intervals:\n  stale_after: 30m\n", "intervals.stale_after is 30m0s; give a duration from 1h0m0s to 2160h0m0s"},
		"stale too late":     {"intervals:\n  stale_after: 2161h\n", "intervals.stale_after"},
		"seconds in a run":   {"intervals:\n  zero_run: 90s\n", "intervals.zero_run is 1m30s; give whole minutes"},
		"zero run":           {"intervals:\n  estimate_run: 0s\n", "intervals.estimate_run is 0 minutes"},
		"run over a year":    {"intervals:\n  zero_run: 8785h\n", "intervals.zero_run is 527100 minutes"},
		"no detail":          {"intervals:\n  detail_days: 0\n", "intervals.detail_days is 0"},
		"detail over a year": {"intervals:\n  detail_days: 367\n  retention_days: 800\n", "intervals.detail_days is 367"},
		"retention < detail": {"intervals:\n  detail_days: 40\n  retention_days: 39\n", "intervals.retention_days is 39; give from detail_days (40)"},
		"retention too long": {"intervals:\n  retention_days: 3661\n", "intervals.retention_days is 3661"},
		"retention < I5":     {"interval_history_months: 13\nintervals:\n  retention_days: 396\n", "intervals.retention_days is 396, too short for interval_history_months 13; keep at least 397 days"},
		"spike ratio 1":      {"intervals:\n  spike_ratio: 1\n", "intervals.spike_ratio is 1; give a ratio above 1"},
		"spike ratio NaN":    {"intervals:\n  spike_ratio: .nan\n", "intervals.spike_ratio is NaN"},
		"negative minimum":   {"intervals:\n  spike_minimum: -1\n", "intervals.spike_minimum is -1"},
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
	t.Parallel()
	p := DefaultPolicy()
	for code, want := range map[string]bool{"R1": true, "R2": true, "TOU1": true, "MED1": false, "": true} {
		if got := p.RateAllowed(code); got != want {
			t.Errorf("%q: %v", code, got)
		}
	}
}
