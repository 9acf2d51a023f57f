package billing

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/producers/filereader"
	"github.com/usagestream/usagestream/records"
)

type want struct{ code, field, rule string }

// TestRejectedRows is the table of malformed data lines (docs/data-contract.md §2.1-2.4,
// rule U9). Each case is a file with one good row, the bad line, one good row:
// the bad line is line 3, and the rows around it must still be read.
func TestRejectedRows(t *testing.T) {
	t.Parallel()
	full := func(over map[string]string) string { return rowLine(records.LayoutFull, over) }
	fullFields := rowLine(records.LayoutFull, nil)
	long := full(map[string]string{"customer_type": strings.Repeat("x", 400)})
	cases := []struct {
		name   string
		layout records.Layout
		opts   Options
		line   string
		want   []want
		raw    string // exact Raw, when set
	}{
		{name: "too few tabs", line: fullFields[:strings.LastIndexByte(fullFields, '\t')],
			want: []want{{records.CodeFieldCount, "", records.RuleFormat}}, raw: "[redacted: 27 fields, "},
		{name: "too many tabs", line: fullFields + "\textra",
			want: []want{{records.CodeFieldCount, "", records.RuleFormat}}, raw: "[redacted: 29 fields, "},
		{name: "one field only", line: "C1001",
			want: []want{{records.CodeFieldCount, "", records.RuleFormat}}, raw: "[redacted: 1 fields, 5 bytes]"},
		{name: "wrong count and invalid UTF-8", line: "C\xff1\tP1",
			want: []want{{records.CodeFieldCount, "", records.RuleFormat}, {records.CodeInvalidUTF8, "", records.RuleFormat}}},
		{name: "invalid UTF-8 in a personal field", line: full(map[string]string{"business_name": "Caf\xe9"}),
			want: []want{{records.CodeInvalidUTF8, "business_name", records.RuleFormat}}},
		{name: "invalid UTF-8 in a typed field", line: full(map[string]string{"usage_value": "1\xc32"}),
			want: []want{{records.CodeInvalidUTF8, "usage_value", records.RuleFormat}}},
		{name: "NA in usage_value", line: full(map[string]string{"usage_value": "NA"}),
			want: []want{{records.CodeNullToken, "usage_value", records.RuleFormat}}},
		{name: "null in active_date", line: full(map[string]string{"active_date": "null"}),
			want: []want{{records.CodeNullToken, "active_date", records.RuleFormat}}},
		{name: `\N in duration`, line: full(map[string]string{"duration": `\N`}),
			want: []want{{records.CodeNullToken, "duration", records.RuleFormat}}},
		{name: "NULL in usage_charge", line: full(map[string]string{"usage_charge": "NULL"}),
			want: []want{{records.CodeNullToken, "usage_charge", records.RuleFormat}}},
		{name: "NA in inactive_date", line: full(map[string]string{"inactive_date": "NA"}),
			want: []want{{records.CodeNullToken, "inactive_date", records.RuleFormat}}},
		{name: "Feb 30", line: full(map[string]string{"date_to": "20240230"}),
			want: []want{{records.CodeBadDate, "date_to", records.RuleBillingColumns}}},
		{name: "Feb 29 of a common year", line: full(map[string]string{"active_date": "20230229"}),
			want: []want{{records.CodeBadDate, "active_date", records.RuleBillingColumns}}},
		{name: "ISO date", line: full(map[string]string{"date_to": "2024-01-31"}),
			want: []want{{records.CodeBadDate, "date_to", records.RuleBillingColumns}}},
		{name: "month 13", line: full(map[string]string{"inactive_date": "20241301"}),
			want: []want{{records.CodeBadDate, "inactive_date", records.RuleBillingColumns}}},
		{name: "inactive before active", line: full(map[string]string{"inactive_date": "20230114"}),
			want: []want{{records.CodeInactiveBeforeActive, "inactive_date", records.RuleBillingColumns}}},
		{name: "duration 0", line: full(map[string]string{"duration": "0"}),
			want: []want{{records.CodeBadDuration, "duration", records.RuleBillingColumns}}},
		{name: "duration negative", line: full(map[string]string{"duration": "-30"}),
			want: []want{{records.CodeBadDuration, "duration", records.RuleBillingColumns}}},
		{name: "duration not an integer", line: full(map[string]string{"duration": "30.5"}),
			want: []want{{records.CodeBadInteger, "duration", records.RuleBillingColumns}}},
		{name: "duration with plus", line: full(map[string]string{"duration": "+30"}),
			want: []want{{records.CodeBadInteger, "duration", records.RuleBillingColumns}}},
		{name: "duration too long", line: full(map[string]string{"duration": "10001"}),
			want: []want{{records.CodeOutOfRange, "duration", records.RuleBillingColumns}}},
		{name: "duration huge", line: full(map[string]string{"duration": "99999999999999999999999"}),
			want: []want{{records.CodeOutOfRange, "duration", records.RuleBillingColumns}}},
		{name: "thousands separator", line: full(map[string]string{"usage_value": "1,234.5"}),
			want: []want{{records.CodeThousandsSeparator, "usage_value", records.RuleBillingColumns}}},
		{name: "thousands separator in charge", line: full(map[string]string{"usage_charge": "1,073"}),
			want: []want{{records.CodeThousandsSeparator, "usage_charge", records.RuleBillingColumns}}},
		{name: "usage above the maximum", line: full(map[string]string{"usage_value": "1000000000"}),
			want: []want{{records.CodeOutOfRange, "usage_value", records.RuleBillingColumns}}},
		{name: "usage below the minimum with net metering", opts: Options{NetMetering: true}, line: full(map[string]string{"usage_value": "-999999999.5"}),
			want: []want{{records.CodeOutOfRange, "usage_value", records.RuleBillingColumns}}},
		{name: "negative usage", line: full(map[string]string{"usage_value": "-5"}),
			want: []want{{records.CodeNegativeUsage, "usage_value", records.RuleU9}}},
		{name: "exponent", line: full(map[string]string{"usage_value": "1e5"}),
			want: []want{{records.CodeBadNumber, "usage_value", records.RuleBillingColumns}}},
		{name: "space in number", line: full(map[string]string{"usage_value": " 12"}),
			want: []want{{records.CodeBadNumber, "usage_value", records.RuleBillingColumns}}},
		{name: "plus sign", line: full(map[string]string{"usage_value": "+12"}),
			want: []want{{records.CodeBadNumber, "usage_value", records.RuleBillingColumns}}},
		{name: "trailing point", line: full(map[string]string{"usage_value": "12."}),
			want: []want{{records.CodeBadNumber, "usage_value", records.RuleBillingColumns}}},
		{name: "huge number", line: full(map[string]string{"usage_charge": "9" + strings.Repeat("0", 400)}),
			want: []want{{records.CodeOutOfRange, "usage_charge", records.RuleBillingColumns}}},
		{name: "negative floor area", line: full(map[string]string{"bldg_sq_foot": "-1"}),
			want: []want{{records.CodeOutOfRange, "bldg_sq_foot", records.RuleBillingColumns}}},
		{name: "unknown is_estimate", line: full(map[string]string{"is_estimate": "X"}),
			want: []want{{records.CodeBadEstimate, "is_estimate", records.RuleBillingColumns}}},
		{name: "unknown service_type", line: full(map[string]string{"service_type": "S"}),
			want: []want{{records.CodeBadServiceType, "service_type", records.RuleBillingColumns}}},
		{name: "service_type outside a configured list", opts: Options{ServiceTypes: []string{"e", " G "}}, line: full(map[string]string{"service_type": "W"}),
			want: []want{{records.CodeBadServiceType, "service_type", records.RuleBillingColumns}}},
		{name: "unknown deletion flag", line: full(map[string]string{"is_account_deletion": "yes"}),
			want: []want{{records.CodeBadFlag, "is_account_deletion", records.RuleBillingColumns}}},
		{name: "state of 3 letters", line: full(map[string]string{"service_state": "ORE"}),
			want: []want{{records.CodeBadState, "service_state", records.RuleBillingColumns}}},
		{name: "state with a digit", line: full(map[string]string{"service_state": "O1"}),
			want: []want{{records.CodeBadState, "service_state", records.RuleBillingColumns}}},
		{name: "zip of 4 digits", line: full(map[string]string{"service_zip_code": "9740"}),
			want: []want{{records.CodeBadZip, "service_zip_code", records.RuleBillingColumns}}},
		{name: "zip+4 cut short", line: full(map[string]string{"service_zip_code": "97403-12"}),
			want: []want{{records.CodeBadZip, "service_zip_code", records.RuleBillingColumns}}},
		{name: "required customer_id empty", line: full(map[string]string{"customer_id": ""}),
			want: []want{{records.CodeRequired, "customer_id", records.RuleBillingColumns}}},
		{name: "required service_point_id only spaces", line: full(map[string]string{"service_point_id": "   "}),
			want: []want{{records.CodeRequired, "service_point_id", records.RuleBillingColumns}}},
		{name: "required usage_value empty", line: full(map[string]string{"usage_value": ""}),
			want: []want{{records.CodeRequired, "usage_value", records.RuleBillingColumns}}},
		{name: "every problem of a row", line: full(map[string]string{"date_to": "20240230", "duration": "0", "service_type": "X", "usage_value": "-1000000000"}),
			want: []want{
				{records.CodeBadServiceType, "service_type", records.RuleBillingColumns},
				{records.CodeOutOfRange, "usage_value", records.RuleBillingColumns},
				{records.CodeNegativeUsage, "usage_value", records.RuleU9},
				{records.CodeBadDate, "date_to", records.RuleBillingColumns},
				{records.CodeBadDuration, "duration", records.RuleBillingColumns},
			}},
		{name: "blank line", line: "",
			want: []want{{records.CodeBlankLine, "", records.RuleFormat}}, raw: ""},
		{name: "CR-only line", line: "\r",
			want: []want{{records.CodeBlankLine, "", records.RuleFormat}}, raw: ""},
		{name: "spaces only line", line: "   ",
			want: []want{{records.CodeFieldCount, "", records.RuleFormat}}},
		{name: "line over the limit", opts: Options{MaxLineBytes: len(long) - 100}, line: long,
			want: []want{{records.CodeLineTooLong, "", records.RuleFormat}}, raw: "C1001\tP2001\tS77\tCCB9\txxxx"},
		{name: "line one byte over the limit", opts: Options{MaxLineBytes: len(long) - 1}, line: long,
			want: []want{{records.CodeLineTooLong, "", records.RuleFormat}}},
		{name: "line one byte over the limit with CRLF", opts: Options{MaxLineBytes: len(long) - 1}, line: long + "\r",
			want: []want{{records.CodeLineTooLong, "", records.RuleFormat}}},
		{name: "customer layout: missing active_date", layout: records.LayoutCustomer, line: rowLine(records.LayoutCustomer, map[string]string{"active_date": ""}),
			want: []want{{records.CodeRequired, "active_date", records.RuleBillingColumns}}},
		{name: "customer layout: usage columns present", layout: records.LayoutCustomer, line: fullFields,
			want: []want{{records.CodeFieldCount, "", records.RuleFormat}}},
		{name: "usage layout: duration 0", layout: records.LayoutUsage, line: rowLine(records.LayoutUsage, map[string]string{"duration": "0"}),
			want: []want{{records.CodeBadDuration, "duration", records.RuleBillingColumns}}},
		{name: "usage layout: bad estimate and date", layout: records.LayoutUsage, line: rowLine(records.LayoutUsage, map[string]string{"is_estimate": "actual", "date_to": "20240431"}),
			want: []want{{records.CodeBadDate, "date_to", records.RuleBillingColumns}, {records.CodeBadEstimate, "is_estimate", records.RuleBillingColumns}}},
	}
	if len(cases) < 35 {
		t.Fatalf("only %d malformed cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := c.layout
			if l == "" {
				l = records.LayoutFull
			}
			good := rowLine(l, nil)
			data := fileText(l, good, c.line, good)
			if c.opts.MaxLineBytes > 0 && c.opts.MaxLineBytes < len(records.HeaderLine(l)) {
				t.Fatal("test limit shorter than the header")
			}
			opts := c.opts
			opts.Layout = l
			r, recs, err := readString(t, "case.tsv", data, opts)
			if err != io.EOF {
				t.Fatalf("file error: %v", err)
			}
			if len(recs) != 3 {
				t.Fatalf("got %d records, want 3", len(recs))
			}
			for i, rec := range []Record{recs[0], recs[2]} {
				if rec.Row == nil {
					t.Fatalf("good row %d rejected: %+v", i, rec.Rejected)
				}
			}
			rej := recs[1].Rejected
			if rej == nil {
				t.Fatalf("line 3 accepted: %+v", recs[1].Row)
			}
			if rej.Line != 3 {
				t.Fatalf("Line = %d, want 3", rej.Line)
			}
			if len(rej.Reasons) != len(c.want) {
				t.Fatalf("reasons %v, want %v", rej.Reasons, c.want)
			}
			for i, w := range c.want {
				got := rej.Reasons[i]
				if got.Code != w.code || got.Field != w.field || got.Rule != w.rule {
					t.Errorf("reason %d = %s/%s/%s, want %s/%s/%s (%s)", i, got.Code, got.Field, got.Rule, w.code, w.field, w.rule, got.Message)
				}
				if got.Field != "" && !strings.Contains(got.Message, got.Field) {
					t.Errorf("message %q does not name field %s", got.Message, got.Field)
				}
				if got.Message == "" {
					t.Errorf("reason %d has no message", i)
				}
			}
			if c.raw != "" || c.line == "" || c.line == "\r" {
				if !strings.HasPrefix(rej.Raw, c.raw) {
					t.Errorf("Raw = %q, want prefix %q", rej.Raw, c.raw)
				}
			}
			assertNoPersonal(t, rej)
			s := r.Stats()
			for _, w := range c.want {
				if s.RejectedByCode[w.code] == 0 {
					t.Errorf("RejectedByCode[%s] = 0", w.code)
				}
			}
		})
	}
}

func assertNoPersonal(t *testing.T, rej *records.Rejected) {
	t.Helper()
	for col, v := range personalValues {
		if strings.Contains(rej.Raw, v) {
			t.Errorf("Raw shows %s: %q", col, rej.Raw)
		}
		for _, rs := range rej.Reasons {
			if strings.Contains(rs.Message, v) {
				t.Errorf("message shows %s: %q", col, rs.Message)
			}
		}
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	data := fileText(records.LayoutFull, rowLine(records.LayoutFull, map[string]string{"date_to": "20240230", "service_zip_code": "9740"}))
	_, recs, _ := readString(t, fullName, data, Options{})
	rs := recs[0].Rejected.Reasons
	wantMsgs := []string{
		`service_zip_code (redacted, shape "9999") must be NNNNN or NNNNN-NNNN`,
		`date_to "20240230" is not a real calendar date (yyyymmdd)`,
	}
	for i, w := range wantMsgs {
		if rs[i].Message != w {
			t.Errorf("message %d = %q, want %q", i, rs[i].Message, w)
		}
	}
	data = fileText(records.LayoutFull, "a\tb")
	_, recs, _ = readString(t, fullName, data, Options{})
	if m := recs[0].Rejected.Reasons[0].Message; !strings.HasPrefix(m, "2 fields, expected 28") {
		t.Errorf("field count message %q", m)
	}
}

func TestAcceptedRow(t *testing.T) {
	t.Parallel()
	data := fileText(records.LayoutFull, rowLine(records.LayoutFull, map[string]string{
		"inactive_date": "20240229", "is_account_deletion": "T", "service_type": "g",
		"service_state": "or", "service_zip_code": "97403-1234", "usage_charge": "", "is_estimate": "",
		"bldg_sq_foot": "", "usage_value": "-0",
	}))
	_, recs, _ := readString(t, fullName, data, Options{})
	row := recs[0].Row
	if row == nil {
		t.Fatalf("rejected: %+v", recs[0].Rejected)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"layout", row.Layout == records.LayoutFull},
		{"line", row.Line == 2},
		{"ids", row.CustomerID == "C1001" && row.PremiseID == "P2001" && row.AccountID == "A3001" && row.ServicePointID == "SP4001"},
		{"strings", row.SecondaryID == "S77" && row.CCBAccountID == "CCB9" && row.CustomerType == "RES" && row.ReadCycle == "07" && row.RateCode == "R1"},
		{"address", row.BusinessName == personalValues["business_name"] && row.ServiceCity == personalValues["service_city"] && row.ServiceUnit == "Apt 2Q"},
		{"active", row.ActiveDate == dates.MustParse("20230115")},
		{"inactive", row.InactiveDate == records.NullDate{Date: dates.MustParse("20240229"), Valid: true}},
		{"deletion", row.IsAccountDeletion},
		{"service type upper", row.ServiceType == "G"},
		{"state upper", row.ServiceState == "OR"},
		{"zip", row.ServiceZipCode == "97403-1234"},
		{"meter", row.MeterType == "AMI" && row.MeterUnit == "KWH"},
		{"sq foot null", !row.BldgSqFoot.Valid},
		{"usage -0 is 0", row.UsageValue == 0 && !signbit(row.UsageValue)},
		{"date_to", row.DateTo == dates.MustParse("20240131")},
		{"duration", row.Duration == 31},
		{"estimate default", row.IsEstimate == records.EstimateEstimated},
		{"charge null", !row.UsageCharge.Valid},
		{"period start", row.PeriodStart() == dates.MustParse("20240101")},
		{"no extra", row.Extra == nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: row %+v", c.name, row)
		}
	}

	_, recs, _ = readString(t, fullName, fileText(records.LayoutFull, rowLine(records.LayoutFull, nil)), Options{})
	row = recs[0].Row
	if row.UsageValue != 612.5 || row.UsageCharge != (records.NullFloat{Value: 73.19, Valid: true}) || row.BldgSqFoot != (records.NullFloat{Value: 1850, Valid: true}) ||
		row.IsEstimate != records.EstimateActual || row.IsAccountDeletion || row.InactiveDate.Valid {
		t.Errorf("row %+v", row)
	}
}

func signbit(f float64) bool { return 1/f < 0 }

func TestFlagsAndEstimates(t *testing.T) {
	t.Parallel()
	for in, wantDel := range map[string]bool{"true": true, "TRUE": true, "1": true, "t": true, "T": true, "false": false, "0": false, "f": false, "F": false, "": false} {
		_, recs, _ := readString(t, fullName, fileText(records.LayoutFull, rowLine(records.LayoutFull, map[string]string{"is_account_deletion": in})), Options{})
		if recs[0].Row == nil || recs[0].Row.IsAccountDeletion != wantDel {
			t.Errorf("is_account_deletion %q: %+v", in, recs[0])
		}
	}
	for in, w := range map[string]records.Estimate{"A": records.EstimateActual, "a": records.EstimateActual, "E": records.EstimateEstimated, "e": records.EstimateEstimated, "U": records.EstimateUser, "u": records.EstimateUser, "": records.EstimateEstimated} {
		_, recs, _ := readString(t, usageName, fileText(records.LayoutUsage, rowLine(records.LayoutUsage, map[string]string{"is_estimate": in})), Options{})
		if recs[0].Row == nil || recs[0].Row.IsEstimate != w {
			t.Errorf("is_estimate %q: %+v", in, recs[0])
		}
	}
}

func TestU9NetMetering(t *testing.T) {
	t.Parallel()
	line := rowLine(records.LayoutFull, map[string]string{"usage_value": "-42.5", "usage_charge": "-3.10"})
	_, recs, _ := readString(t, fullName, fileText(records.LayoutFull, line), Options{})
	if rej := recs[0].Rejected; rej == nil || !slices.Equal(codes(rej.Reasons), []string{records.CodeNegativeUsage}) || rej.Reasons[0].Field != "usage_value" {
		t.Fatalf("without net metering: %+v", recs[0])
	}
	_, recs, _ = readString(t, fullName, fileText(records.LayoutFull, line), Options{NetMetering: true})
	if row := recs[0].Row; row == nil || row.UsageValue != -42.5 || row.UsageCharge.Value != -3.10 {
		t.Fatalf("with net metering: %+v", recs[0])
	}
}

// TestU9NegativeChargeIsACredit: U9 restricts usage_value only; a negative
// usage_charge on positive usage is a credit and the row stands with its
// usage (issue 16 item 7).
func TestU9NegativeChargeIsACredit(t *testing.T) {
	t.Parallel()
	for _, nm := range []bool{false, true} {
		line := rowLine(records.LayoutFull, map[string]string{"usage_value": "120", "usage_charge": "-3.10"})
		_, recs, _ := readString(t, fullName, fileText(records.LayoutFull, line), Options{NetMetering: nm})
		if row := recs[0].Row; row == nil || row.UsageValue != 120 || !row.UsageCharge.Valid || row.UsageCharge.Value != -3.10 {
			t.Errorf("net metering %v: %+v", nm, recs[0])
		}
	}
}

func TestCustomerAndUsageLayouts(t *testing.T) {
	t.Parallel()
	_, recs, err := readString(t, customerName, fileText(records.LayoutCustomer, rowLine(records.LayoutCustomer, nil)), Options{})
	if err != io.EOF || len(recs) != 1 || recs[0].Row == nil {
		t.Fatalf("customer: %v %+v", err, recs)
	}
	c := recs[0].Row
	if c.Layout != records.LayoutCustomer || c.CustomerID != "C1001" || c.ServicePointID != "SP4001" || c.ServiceType != "E" ||
		c.UsageValue != 0 || c.DateTo != 0 || c.Duration != 0 || c.IsEstimate != 0 || c.UsageCharge.Valid {
		t.Errorf("customer row %+v", c)
	}

	_, recs, err = readString(t, usageName, fileText(records.LayoutUsage, rowLine(records.LayoutUsage, nil)), Options{})
	if err != io.EOF || len(recs) != 1 || recs[0].Row == nil {
		t.Fatalf("usage: %v %+v", err, recs)
	}
	u := recs[0].Row
	want := records.BillingRow{Layout: records.LayoutUsage, Line: 2, ServicePointID: "SP4001", UsageValue: 612.5, DateTo: dates.MustParse("20240131"),
		Duration: 31, IsEstimate: records.EstimateActual, UsageCharge: records.NullFloat{Value: 73.19, Valid: true}}
	if u.CustomerID != "" || u.ServiceType != "" || u.ActiveDate != 0 || u.Line != want.Line || u.ServicePointID != want.ServicePointID ||
		u.UsageValue != want.UsageValue || u.DateTo != want.DateTo || u.Duration != want.Duration || u.IsEstimate != want.IsEstimate || u.UsageCharge != want.UsageCharge {
		t.Errorf("usage row %+v, want %+v", u, want)
	}
}

func TestExtraColumns(t *testing.T) {
	t.Parallel()
	header := records.HeaderLine(records.LayoutFull) + "\tmail_address\t Phone "
	good := rowLine(records.LayoutFull, nil) + "\t1 Mailbox Lane\t555-0100"
	bad := rowLine(records.LayoutFull, map[string]string{"duration": "0"}) + "\t2 Mailbox Lane\t555-0199"
	data := header + "\n" + good + "\n" + bad + "\n"
	r, recs, err := readString(t, fullName, data, Options{})
	if err != io.EOF {
		t.Fatal(err)
	}
	if got := r.ExtraColumns(); !slices.Equal(got, []string{"mail_address", "Phone"}) {
		t.Fatalf("ExtraColumns = %q", got)
	}
	row := recs[0].Row
	if !slices.Equal(row.Extra, []records.Attribute{{Name: "mail_address", Value: "1 Mailbox Lane"}, {Name: "Phone", Value: "555-0100"}}) {
		t.Fatalf("Extra = %+v", row.Extra)
	}
	rej := recs[1].Rejected
	if strings.Contains(rej.Raw, "Mailbox") || strings.Contains(rej.Raw, "555-0199") || !strings.HasSuffix(rej.Raw, "\t[redacted]\t[redacted]") {
		t.Fatalf("extra columns not redacted: %q", rej.Raw)
	}
	if rej.ServicePointID != "SP4001" {
		t.Errorf("ServicePointID = %q", rej.ServicePointID)
	}
}

func TestLineEndsAndBOM(t *testing.T) {
	t.Parallel()
	good := rowLine(records.LayoutFull, nil)
	cases := map[string]string{
		"CRLF":              records.HeaderLine(records.LayoutFull) + "\r\n" + good + "\r\n" + good + "\r\n",
		"BOM":               "\xEF\xBB\xBF" + records.HeaderLine(records.LayoutFull) + "\n" + good + "\n" + good + "\n",
		"BOM and CRLF":      "\xEF\xBB\xBF" + records.HeaderLine(records.LayoutFull) + "\r\n" + good + "\r\n" + good,
		"no final line end": records.HeaderLine(records.LayoutFull) + "\n" + good + "\n" + good,
		"header in capitals with spaces": strings.ToUpper(strings.ReplaceAll(records.HeaderLine(records.LayoutFull), "\t", " \t ")) +
			"\n" + good + "\n" + good + "\n",
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, recs, err := readString(t, fullName, data, Options{})
			if err != io.EOF {
				t.Fatal(err)
			}
			if len(recs) != 2 {
				t.Fatalf("%d records", len(recs))
			}
			for i, rec := range recs {
				if rec.Row == nil {
					t.Fatalf("row %d rejected: %+v", i, rec.Rejected)
				}
				if rec.Row.Line != int64(i+2) || rec.Row.UsageCharge.Value != 73.19 {
					t.Fatalf("row %d: %+v", i, rec.Row)
				}
			}
		})
	}
	// An empty line that ends the file is no row (DC-2.1); two are one blank
	// line and the file's end.
	_, recs, _ := readString(t, fullName, fileText(records.LayoutFull, good, ""), Options{})
	if len(recs) != 1 || recs[0].Row == nil {
		t.Fatalf("trailing empty line: %+v", recs)
	}
	_, recs, _ = readString(t, fullName, fileText(records.LayoutFull, good, "", ""), Options{})
	if len(recs) != 2 || recs[1].Rejected == nil || recs[1].Rejected.Reasons[0].Code != records.CodeBlankLine || recs[1].Rejected.Line != 3 {
		t.Fatalf("two trailing empty lines: %+v", recs)
	}
	// A header alone is a file with no rows.
	_, recs, err := readString(t, fullName, records.HeaderLine(records.LayoutFull)+"\n", Options{})
	if err != io.EOF || len(recs) != 0 {
		t.Fatalf("header only: %v %d", err, len(recs))
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	bad := map[string]string{"duration": "0"}
	lines := []string{
		rowLine(records.LayoutFull, bad),
		rowLine(records.LayoutFull, bad) + "\tx",                                           // field count
		strings.Replace(rowLine(records.LayoutFull, bad), "Evergreen", "Evergreen\xff", 1), // invalid UTF-8
	}
	_, recs, _ := readString(t, fullName, fileText(records.LayoutFull, lines...), Options{})
	for _, rec := range recs {
		assertNoPersonal(t, rec.Rejected)
	}
	if want := "C1001\tP2001\tS77\tCCB9\tRES\t[redacted]\tA3001\t20230115\t\t\t07\tR1\tSP4001\tE\t[redacted]\t[redacted]\t[redacted]\t[redacted]\tOR\t[redacted]\tAMI\tKWH\t1850\t612.5\t20240131\t0\tA\t73.19"; recs[0].Rejected.Raw != want {
		t.Errorf("Raw = %q\nwant %q", recs[0].Rejected.Raw, want)
	}

	_, recs, _ = readString(t, fullName, fileText(records.LayoutFull, lines...), Options{KeepPersonal: true})
	if recs[0].Rejected.Raw != lines[0] || recs[1].Rejected.Raw != lines[1] {
		t.Errorf("KeepPersonal changed Raw: %q", recs[0].Rejected.Raw)
	}
	if raw := recs[2].Rejected.Raw; !strings.Contains(raw, "Evergreen\uFFFD") {
		t.Errorf("KeepPersonal Raw of invalid UTF-8 = %q", raw)
	}
	_, recs, _ = readString(t, fullName, fileText(records.LayoutFull, rowLine(records.LayoutFull, map[string]string{"service_zip_code": "9740"})), Options{KeepPersonal: true})
	if m := recs[0].Rejected.Reasons[0].Message; !strings.Contains(m, `"9740"`) {
		t.Errorf("KeepPersonal message %q", m)
	}
}

func TestStatsByCode(t *testing.T) {
	t.Parallel()
	data := fileText(records.LayoutFull,
		rowLine(records.LayoutFull, nil),
		rowLine(records.LayoutFull, map[string]string{"usage_value": "-1", "usage_charge": "-1"}),
		"",
		rowLine(records.LayoutFull, map[string]string{"duration": "0"}),
	)
	r, _, _ := readString(t, fullName, data, Options{})
	s := r.Stats()
	want := filereader.Stats{Lines: 4, Accepted: 1, Rejected: 3, RejectedByCode: map[string]int64{records.CodeNegativeUsage: 1, records.CodeBadDuration: 1, records.CodeBlankLine: 1}}
	if s.Lines != want.Lines || s.Accepted != want.Accepted || s.Rejected != want.Rejected || !mapsEqual(s.RejectedByCode, want.RejectedByCode) {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	s.RejectedByCode["X"] = 1
	if _, ok := r.Stats().RejectedByCode["X"]; ok {
		t.Fatal("Stats must return a copy")
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestColumnIndexes(t *testing.T) {
	t.Parallel()
	if len(records.BillingColumns()) != numColumns {
		t.Fatalf("%d columns, the parser knows %d", len(records.BillingColumns()), numColumns)
	}
	named := map[int]string{
		cCustomerID: "customer_id", cPremiseID: "premise_id", cSecondaryID: "secondary_id", cCCBAccountID: "ccb_account_id",
		cCustomerType: "customer_type", cBusinessName: "business_name", cAccountID: "account_id", cActiveDate: "active_date",
		cInactiveDate: "inactive_date", cIsAccountDeletion: "is_account_deletion", cReadCycle: "read_cycle", cRateCode: "rate_code",
		cServicePointID: "service_point_id", cServiceType: "service_type", cServiceHouseNumber: "service_house_number",
		cServiceStreetName: "service_street_name", cServiceUnit: "service_unit", cServiceCity: "service_city",
		cServiceState: "service_state", cServiceZipCode: "service_zip_code", cMeterType: "meter_type", cMeterUnit: "meter_unit",
		cBldgSqFoot: "bldg_sq_foot", cUsageValue: "usage_value", cDateTo: "date_to", cDuration: "duration",
		cIsEstimate: "is_estimate", cUsageCharge: "usage_charge",
	}
	for i, name := range named {
		if records.BillingColumn(i).Name != name {
			t.Errorf("Columns[%d] = %s, parser expects %s", i, records.BillingColumn(i).Name, name)
		}
	}
}

func TestLongDecimals(t *testing.T) {
	t.Parallel()
	line := rowLine(records.LayoutFull, map[string]string{"usage_value": "123456789.1234567891", "usage_charge": "0.00000000000000000001"})
	_, recs, _ := readString(t, fullName, fileText(records.LayoutFull, line), Options{})
	if row := recs[0].Row; row == nil || row.UsageValue != 123456789.1234567891 || row.UsageCharge.Value != 1e-20 {
		t.Fatalf("%+v", recs[0])
	}
}

// TestDC24DateAfterFile: a date_to or an inactive_date after the timestamp
// of the file's name, beyond the tolerance, is rejected with
// DATE_AFTER_FILE; the file here was made 2024-03-01 (issue 16 item 3).
func TestDC24DateAfterFile(t *testing.T) {
	t.Parallel()
	days := func(n int) *int { return &n }
	cases := []struct {
		name string
		file string
		opts Options
		over map[string]string
		want []want // nil: accepted
	}{
		{name: "a typo year in date_to", over: map[string]string{"date_to": "22040731"},
			want: []want{{records.CodeDateAfterFile, "date_to", records.RuleBillingColumns}}},
		{name: "date_to the day after the file, within the default tolerance", over: map[string]string{"date_to": "20240302", "duration": "31"}},
		{name: "date_to two days after the file", over: map[string]string{"date_to": "20240303", "duration": "31"},
			want: []want{{records.CodeDateAfterFile, "date_to", records.RuleBillingColumns}}},
		{name: "inactive_date in the future of the file", over: map[string]string{"inactive_date": "20240601"},
			want: []want{{records.CodeDateAfterFile, "inactive_date", records.RuleBillingColumns}}},
		{name: "both", over: map[string]string{"inactive_date": "20240601", "date_to": "20240630"},
			want: []want{{records.CodeDateAfterFile, "inactive_date", records.RuleBillingColumns}, {records.CodeDateAfterFile, "date_to", records.RuleBillingColumns}}},
		{name: "a tolerance of 0 days", opts: Options{FutureDays: days(0)}, over: map[string]string{"date_to": "20240302", "duration": "31"},
			want: []want{{records.CodeDateAfterFile, "date_to", records.RuleBillingColumns}}},
		{name: "a tolerance of 121 days", opts: Options{FutureDays: days(121)}, over: map[string]string{"date_to": "20240630", "duration": "30"}},
		{name: "no check", opts: Options{FutureDays: days(-1)}, over: map[string]string{"date_to": "22040731"}},
		{name: "a name without a timestamp has no check", file: "legacy-export.tsv", opts: Options{Layout: records.LayoutFull},
			over: map[string]string{"date_to": "22040731"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := tc.file
			if name == "" {
				name = fullName
			}
			_, recs, _ := readString(t, name, fileText(records.LayoutFull, rowLine(records.LayoutFull, tc.over)), tc.opts)
			rej := recs[0].Rejected
			if tc.want == nil {
				if rej != nil {
					t.Fatalf("rejected: %+v", rej.Reasons)
				}
				return
			}
			if rej == nil {
				t.Fatalf("accepted: %+v", recs[0].Row)
			}
			var got []want
			for _, r := range rej.Reasons {
				got = append(got, want{r.Code, r.Field, r.Rule})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("reasons %+v, want %+v", rej.Reasons, tc.want)
			}
		})
	}
	_, recs, _ := readString(t, fullName, fileText(records.LayoutFull, rowLine(records.LayoutFull, map[string]string{"date_to": "22040731"})), Options{})
	if m := recs[0].Rejected.Reasons[0].Message; m != "date_to 22040731 is 65895 days after the file was made (2024-03-01, from its name); a bill cannot end after the file was made: check the date" {
		t.Errorf("message: %s", m)
	}
}
