package pipeline

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usagestream/usagestream/internal/kafkaconf"
	"github.com/usagestream/usagestream/internal/kafkatest"
	"github.com/usagestream/usagestream/internal/topics"
	"github.com/usagestream/usagestream/processors/rules"
	"github.com/usagestream/usagestream/producers/billing"
	"github.com/usagestream/usagestream/producers/ingest"
	"github.com/usagestream/usagestream/records"
)

var update = flag.Bool("update", false, "rewrite the golden files of the scenario tests")

// row is one billing row of a scenario; empty fields take defaults.
type row struct {
	sp, typ, cust, prem, acct, active, inactive, rate, del, sec string
	to                                                          string // date_to
	dur                                                         int
	val                                                         string
}

func (r row) line() string {
	v := map[string]string{
		"customer_id": r.cust, "premise_id": r.prem, "account_id": r.acct, "active_date": r.active,
		"inactive_date": r.inactive, "rate_code": r.rate, "service_point_id": r.sp, "service_type": r.typ,
		"date_to": r.to, "duration": fmt.Sprint(r.dur), "usage_value": r.val, "is_estimate": "A",
		"is_account_deletion": r.del, "secondary_id": r.sec, "service_street_name": "Personal Street",
	}
	defaults := map[string]string{"customer_id": "C1", "premise_id": "P1", "account_id": "A1", "active_date": "20230101",
		"rate_code": "R1", "service_point_id": "SP1", "service_type": "E", "usage_value": "500"}
	parts := make([]string, len(records.BillingColumns()))
	for i, c := range records.BillingColumns() {
		x := v[c.Name]
		if x == "" {
			x = defaults[c.Name]
		}
		parts[i] = x
	}
	return strings.Join(parts, "\t")
}

// months returns monthly rows for a service point from the month of start
// for n months (calendar months: periods chain).
func months(base row, start string, n int) []row {
	var out []row
	t, _ := time.Parse("20060102", start)
	for i := 0; i < n; i++ {
		from := t.AddDate(0, i, 0)
		to := from.AddDate(0, 1, -1)
		r := base
		r.to = to.Format("20060102")
		r.dur = int(to.Sub(from).Hours()/24) + 1
		if r.val == "" {
			r.val = fmt.Sprint(400 + 10*i)
		}
		out = append(out, r)
	}
	return out
}

func cat(rs ...[]row) []row {
	var out []row
	for _, r := range rs {
		out = append(out, r...)
	}
	return out
}

func with(rs []row, f func(*row)) []row {
	out := append([]row(nil), rs...)
	for i := range out {
		f(&out[i])
	}
	return out
}

type scenario struct {
	name   string
	files  [][]row // each file is ingested by its own ingest run, in this order
	policy func(*rules.Policy)
	// month is the yyyymm of the files' name timestamps (day: the file's
	// number); default 202401. A bill cannot end after its file was made
	// (DATE_AFTER_FILE): scenarios whose usage runs into 2024 are stamped later.
	month string
}

var electric = row{sp: "SP1", cust: "C1", prem: "P1", acct: "A1", active: "20230101"}

func scenarios() []scenario {
	gas := row{sp: "SPG1", typ: "G", cust: "C1", prem: "P1", acct: "AG1", active: "20230101"}
	year := months(electric, "20230101", 12)
	gap := append(append([]row{}, year[:5]...), year[7:]...)
	overlapRow := year[6]
	overlapRow.dur += 10 // starts 10 days inside the previous period
	exact := year[3]
	exact.val = "999"
	u5 := row{sp: "SP1", cust: "C1", prem: "P1", acct: "A1", active: "20230101", to: "20240131", dur: 92, val: "2400"}
	superseded := cat(year[:6], with(year[6:], func(r *row) { r.cust, r.acct, r.active = "C2", "A2", "20230701" }))
	activeChanged := cat(year[:6], with(year[6:], func(r *row) { r.active = "20230601" }))
	terminated := cat(year[:5], with(year[5:6], func(r *row) { r.inactive = r.to }))
	reactivated := cat(year[:5], with(year[5:6], func(r *row) { r.inactive = r.to }), year[6:])
	badReactivation := cat(year[:5], with(year[5:6], func(r *row) { r.inactive = r.to }), with(year[6:], func(r *row) { r.active = "20230701" }))
	rate := cat(year[:4], with(year[4:8], func(r *row) { r.rate = "MED1" }), year[8:])
	deleted := cat(year[:11], with(year[11:], func(r *row) { r.del = "true" }))
	badDelete := cat(superseded, with(year[11:], func(r *row) { r.del = "t" }))
	lastWins := cat(year, with(year[11:], func(r *row) { r.rate = "R2"; r.val = "450" }))
	// The file's last row for the account is for November and restores the
	// allowed rate that December's row left: within one file the last row wins.
	lastOfFile := cat(year[:11], with(year[11:], func(r *row) { r.rate = "MED1" }), year[10:11])
	pm := func(prem, sp string) []row {
		return months(row{sp: sp, cust: "PM", prem: prem, acct: "A" + sp, active: "20230101"}, "20230101", 6)
	}
	pmDrop := cat(pm("P1", "S1"), pm("P2", "S2"), pm("P3", "S3"),
		with(pm("P3", "S3")[5:], func(r *row) { r.inactive = r.to }))
	// The meter is exchanged on June 15, mid-cycle: the old one's last bill
	// runs to June 30 (S1 all the same).
	midCycle := cat(year[:6], months(row{sp: "SP1B", cust: "C1", prem: "P1", acct: "A1B", active: "20230615"}, "20230615", 6))
	replacement := cat(year[:6], months(row{sp: "SP1B", cust: "C1", prem: "P1", acct: "A1B", active: "20230701"}, "20230701", 6))
	// A customer moves out (terminated in June) and another moves in in July
	// on a new service point: the meter exchange wrongly changed the id.
	// S1 is the premise's, so it blocks the newcomer until twelve months.
	newcomer := cat(year[:5], with(year[5:6], func(r *row) { r.inactive = r.to }),
		months(row{sp: "SP2", cust: "C2", prem: "P1", acct: "A2", active: "20230701"}, "20230701", 13))
	dual := cat(year, months(gas, "20230101", 12))
	// A gap in Nov-Dec 2021; it blocks until a period ends more than 730 days
	// after the gap (after 2023-12-31), which the Jan and Feb 2024 rows do.
	history := months(row{sp: "SP1", cust: "C1", prem: "P1", acct: "A1", active: "20210101"}, "20210101", 38)
	agesOut := cat(history[:10], history[12:])
	net := cat(year, with(year[5:6], func(r *row) { r.val = "-120" }))
	// The same customer gets a new account number at the same premise after
	// a gap: the gap is the subject's (C1) and blocks it.
	// A historical file after later incrementals, June 2020 missing: the gap
	// is past the horizon when found, and named all the same.
	old := months(row{sp: "SP1", cust: "C1", prem: "P1", acct: "A1", active: "20200101"}, "20200101", 12)
	agedHistory := cat(old[:5], old[6:])
	// The service point's rows name another premise from July, and gas (S3).
	moved := cat(year[:6], with(year[6:], func(r *row) { r.prem = "P2" }))
	refueled := cat(year[:6], with(year[6:], func(r *row) { r.typ = "G" }))
	// One 400-day row (U11) among monthly bills: kept, and one overlap (U6).
	long := cat(year[:6], []row{{sp: "SP1", cust: "C1", prem: "P1", acct: "A1", active: "20230101", to: "20230630", dur: 400, val: "9000"}})
	// C2 moves in on the electric in July; the gas stays C1's until C2's
	// gas account starts in September: two customers active at P1 (C4).
	gasYear := months(gas, "20230101", 12)
	twoActive := cat(year[:6], gasYear[:8], with(year[6:], func(r *row) { r.cust, r.acct, r.active = "C2", "A2", "20230701" }),
		with(gasYear[8:], func(r *row) { r.cust, r.acct, r.active = "C2", "AG2", "20230901" }))
	newAccount := cat(year[:5], with(year[7:], func(r *row) { r.acct, r.active = "A2", "20230801" }))
	return []scenario{
		{name: "U1_chain", files: [][]row{year}},
		{name: "U2_gap", files: [][]row{gap}},
		{name: "U2_gap_ages_out_after_two_years", files: [][]row{agesOut}, month: "202403"},
		{name: "U2_gap_across_a_new_account_of_the_same_customer", files: [][]row{newAccount}},
		{name: "U2_gap_found_already_past_the_horizon", files: [][]row{with(year, func(r *row) { r.active = "20200101" }), agedHistory}},
		{name: "U3_overlap", files: [][]row{cat(year[:6], []row{overlapRow}, year[7:])}},
		{name: "U4_exact_overwrite", files: [][]row{cat(year, []row{exact})}},
		{name: "U5_overlapping_overwrite", files: [][]row{cat(year, []row{u5})}, month: "202402"},
		{name: "U7_zero_usage_lapse", files: [][]row{with(year, func(r *row) {
			if r.to >= "20230501" && r.to <= "20230731" {
				r.val = "0"
			}
		})}},
		{name: "U8_historical_after_incrementals", files: [][]row{year[6:], year[:6]}},
		{name: "U9_net_metering_second_row", files: [][]row{net}, policy: func(p *rules.Policy) { p.NetMetering = true }},
		{name: "A2_customer_moves_out_new_one_moves_in", files: [][]row{superseded}},
		{name: "A3_active_date_changed", files: [][]row{activeChanged}},
		{name: "A4_termination", files: [][]row{terminated}},
		{name: "A5_reactivation", files: [][]row{reactivated}},
		{name: "A5_invalid_reactivation", files: [][]row{badReactivation}},
		{name: "A7_rate_not_allowed_and_back", files: [][]row{rate}},
		{name: "A8_deletion", files: [][]row{deleted}},
		{name: "A8_deletion_of_an_older_account_refused", files: [][]row{badDelete}},
		{name: "A9_last_row_wins", files: [][]row{lastWins}},
		{name: "A9_last_row_of_the_file_wins_whatever_its_period", files: [][]row{lastOfFile}},
		{name: "C2_property_manager_drops_to_two", files: [][]row{pmDrop}},
		{name: "C3_secondary_id", files: [][]row{with(year[:3], func(r *row) { r.sec = "DISPLAY-7" })}},
		{name: "C4_two_customers_active_at_one_premise", files: [][]row{twoActive}},
		{name: "S1_meter_exchange_changes_service_point_id", files: [][]row{replacement}},
		{name: "S1_meter_exchanged_mid_cycle", files: [][]row{midCycle}},
		{name: "S1_new_customer_on_a_new_service_point", files: [][]row{newcomer}, month: "202408"},
		{name: "S3_service_point_moves_to_another_premise", files: [][]row{moved}},
		{name: "S3_service_point_changes_fuel", files: [][]row{refueled}},
		{name: "U11_period_of_implausible_length", files: [][]row{long}},
		{name: "S2_dual_fuel", files: [][]row{dual}},
	}
}

// TestScenarios runs each scenario's billing files (real file format) through
// ingest and every stage on the embedded broker and compares every output
// event with testdata/scenarios/<name>.golden (go test -run TestScenarios
// -update rewrites them; review the diff).
func TestScenarios(t *testing.T) {
	env := kafkatest.Start(t)
	for i, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			kc := env.Kafka
			kc.TopicPrefix = env.Kafka.TopicPrefix + fmt.Sprintf("s%02d.", i)
			policy := rules.DefaultPolicy()
			if sc.policy != nil {
				sc.policy(&policy)
			}
			got := runScenario(t, kc, sc, policy)
			golden := filepath.Join("testdata", "scenarios", sc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != got {
				t.Fatalf("events differ from %s:\n--- want\n%s\n--- got\n%s", golden, want, got)
			}
		})
	}
}

func runScenario(t *testing.T, kc kafkaconf.Config, sc scenario, policy rules.Policy) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	names := topics.NewNames(kc.TopicPrefix)
	// One partition per topic (a golden pins transient states too, such as
	// a customer active at three premises for a while). The stages run
	// while the files come, and each file is taken to the end of the stages
	// before the next is ingested: a file is one ingest transaction (it is
	// far under --chunk-rows), so one poll and one transaction of each
	// stage, and the events of each file are its net changes
	// (runtime.Coalesce) whatever the timing.
	st := startOnOnePartition(t, kc, policy)
	in, err := ingest.New(ctx, kc, ingest.Config{Topics: names, Reader: billing.Options{NetMetering: policy.NetMetering}})
	if err != nil {
		t.Fatal(err)
	}
	for n, rows := range sc.files {
		lines := []string{records.HeaderLine(records.LayoutFull)}
		for _, r := range rows {
			lines = append(lines, r.line())
		}
		month := sc.month
		if month == "" {
			month = "202401"
		}
		name := fmt.Sprintf("opwr_tst_res_v1-19-0_full_%s0%d000000.tsv", month, n+1)
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := in.Run(ctx, []string{path})
		if err != nil || res[0].Status != ingest.Completed {
			t.Fatalf("ingest %s: %+v %v", name, res, err)
		}
		st.wait(t, 2*time.Minute)
	}
	st.stop(t)
	var out []string
	for _, topic := range []string{names.Corrections, names.Anomalies, names.AccountEvents, names.Eligibility} {
		recs := kafkatest.ReadAll(t, kc, topic)
		events := kafkatest.Decode(t, kc, recs)
		var lines []string
		for i, m := range events {
			lines = append(lines, fmt.Sprintf("%s %s %04d %s", strings.TrimPrefix(topic, kc.TopicPrefix), recs[i].Key, i, goldenLine(m)))
		}
		// Per key, the order is the partition's; across keys, by key.
		slices.SortStableFunc(lines, func(a, b string) int {
			return cmp.Compare(strings.SplitN(a, " ", 3)[1], strings.SplitN(b, " ", 3)[1])
		})
		for _, l := range lines {
			f := strings.SplitN(l, " ", 4)
			out = append(out, f[0]+" "+f[1]+" "+f[3])
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// goldenLine renders an event without what depends on Kafka offsets (event
// ids, partitions, offsets): what it says and the file line that caused it.
func goldenLine(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "event_id" && k != "utility" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+render(m[k]))
	}
	return strings.Join(parts, " ")
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case time.Time:
		return x.Format("20060102")
	case []any:
		var s []string
		for _, e := range x {
			s = append(s, render(e))
		}
		return "[" + strings.Join(s, "; ") + "]"
	case map[string]any:
		if len(x) == 1 { // a union
			for _, inner := range x {
				return render(inner)
			}
		}
		if _, ok := x["topic"]; ok { // a cause: keep file and line
			return render(x["file"]) + ":" + render(x["line"])
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var s []string
		for _, k := range keys {
			s = append(s, k+"="+render(x[k]))
		}
		return "{" + strings.Join(s, " ") + "}"
	default:
		return fmt.Sprint(x)
	}
}
