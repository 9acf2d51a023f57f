package billing

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/usagestream/usagestream/internal/dates"
)

type want struct{ code, field, rule string }

// TestRejectedRows is the table of malformed data lines (docs/data-contract.md §2.1-2.4,
// rule U9). Each case is a file with one good row, the bad line, one good row:
// the bad line is line 3, and the rows around it must still be read.
func TestRejectedRows(t *testing.T) {
	full := func(over map[string]string) string { return rowLine(LayoutFull, over) }
	fullFields := rowLine(LayoutFull, nil)
	long := full(map[string]string{"customer_type": strings.Repeat("x", 400)})
	cases := []struct {
		name   string
		layout Layout
		opts   Options
		line   string
		want   []want
		raw    string // exact Raw, when set
	}{
		{name: "too few tabs", line: fullFields[:strings.LastIndexByte(fullFields, '\t')],
			want: []want{{CodeFieldCount, "", RuleFormat}}, raw: "[redacted: 27 fields, "},
		{name: "too many tabs", line: fullFields + "\textra",
			want: []want{{CodeFieldCount, "", RuleFormat}}, raw: "[redacted: 29 fields, "},
		{name: "one field only", line: "C1001",
			want: []want{{CodeFieldCount, "", RuleFormat}}, raw: "[redacted: 1 fields, 5 bytes]"},
		{name: "wrong count and invalid UTF-8", line: "C\xff1\tP1",
			want: []want{{CodeFieldCount, "", RuleFormat}, {CodeInvalidUTF8, "", RuleFormat}}},
		{name: "invalid UTF-8 in a personal field", line: full(map[string]string{"business_name": "Caf\xe9"}),
			want: []want{{CodeInvalidUTF8, "business_name", RuleFormat}}},
		{name: "invalid UTF-8 in a typed field", line: full(map[string]string{"usage_value": "1\xc32"}),
			want: []want{{CodeInvalidUTF8, "usage_value", RuleFormat}}},
		{name: "NA in usage_value", line: full(map[string]string{"usage_value": "NA"}),
			want: []want{{CodeNullToken, "usage_value", RuleFormat}}},
		{name: "null in active_date", line: full(map[string]string{"active_date": "null"}),
			want: []want{{CodeNullToken, "active_date", RuleFormat}}},
		{name: `\N in duration`, line: full(map[string]string{"duration": `\N`}),
			want: []want{{CodeNullToken, "duration", RuleFormat}}},
		{name: "NULL in usage_charge", line: full(map[string]string{"usage_charge": "NULL"}),
			want: []want{{CodeNullToken, "usage_charge", RuleFormat}}},
		{name: "NA in inactive_date", line: full(map[string]string{"inactive_date": "NA"}),
			want: []want{{CodeNullToken, "inactive_date", RuleFormat}}},
		{name: "Feb 30", line: full(map[string]string{"date_to": "20240230"}),
			want: []want{{CodeBadDate, "date_to", RuleColumns}}},
		{name: "Feb 29 of a common year", line: full(map[string]string{"active_date": "20230229"}),
			want: []want{{CodeBadDate, "active_date", RuleColumns}}},
		{name: "ISO date", line: full(map[string]string{"date_to": "2024-01-31"}),
			want: []want{{CodeBadDate, "date_to", RuleColumns}}},
		{name: "month 13", line: full(map[string]string{"inactive_date": "20241301"}),
			want: []want{{CodeBadDate, "inactive_date", RuleColumns}}},
		{name: "inactive before active", line: full(map[string]string{"inactive_date": "20230114"}),
			want: []want{{CodeInactiveBeforeActive, "inactive_date", RuleColumns}}},
		{name: "duration 0", line: full(map[string]string{"duration": "0"}),
			want: []want{{CodeBadDuration, "duration", RuleColumns}}},
		{name: "duration negative", line: full(map[string]string{"duration": "-30"}),
			want: []want{{CodeBadDuration, "duration", RuleColumns}}},
		{name: "duration not an integer", line: full(map[string]string{"duration": "30.5"}),
			want: []want{{CodeBadInteger, "duration", RuleColumns}}},
		{name: "duration with plus", line: full(map[string]string{"duration": "+30"}),
			want: []want{{CodeBadInteger, "duration", RuleColumns}}},
		{name: "duration too long", line: full(map[string]string{"duration": "10001"}),
			want: []want{{CodeOutOfRange, "duration", RuleColumns}}},
		{name: "duration huge", line: full(map[string]string{"duration": "99999999999999999999999"}),
			want: []want{{CodeOutOfRange, "duration", RuleColumns}}},
		{name: "thousands separator", line: full(map[string]string{"usage_value": "1,234.5"}),
			want: []want{{CodeThousandsSeparator, "usage_value", RuleColumns}}},
		{name: "thousands separator in charge", line: full(map[string]string{"usage_charge": "1,073"}),
			want: []want{{CodeThousandsSeparator, "usage_charge", RuleColumns}}},
		{name: "usage above the maximum", line: full(map[string]string{"usage_value": "1000000000"}),
			want: []want{{CodeOutOfRange, "usage_value", RuleColumns}}},
		{name: "usage below the minimum with net metering", opts: Options{NetMetering: true}, line: full(map[string]string{"usage_value": "-999999999.5"}),
			want: []want{{CodeOutOfRange, "usage_value", RuleColumns}}},
		{name: "negative usage", line: full(map[string]string{"usage_value": "-5"}),
			want: []want{{CodeNegativeUsage, "usage_value", RuleU9}}},
		{name: "negative charge", line: full(map[string]string{"usage_charge": "-3.10"}),
			want: []want{{CodeNegativeUsage, "usage_charge", RuleU9}}},
		{name: "exponent", line: full(map[string]string{"usage_value": "1e5"}),
			want: []want{{CodeBadNumber, "usage_value", RuleColumns}}},
		{name: "space in number", line: full(map[string]string{"usage_value": " 12"}),
			want: []want{{CodeBadNumber, "usage_value", RuleColumns}}},
		{name: "plus sign", line: full(map[string]string{"usage_value": "+12"}),
			want: []want{{CodeBadNumber, "usage_value", RuleColumns}}},
		{name: "trailing point", line: full(map[string]string{"usage_value": "12."}),
			want: []want{{CodeBadNumber, "usage_value", RuleColumns}}},
		{name: "huge number", line: full(map[string]string{"usage_charge": "9" + strings.Repeat("0", 400)}),
			want: []want{{CodeOutOfRange, "usage_charge", RuleColumns}}},
		{name: "negative floor area", line: full(map[string]string{"bldg_sq_foot": "-1"}),
			want: []want{{CodeOutOfRange, "bldg_sq_foot", RuleColumns}}},
		{name: "unknown is_estimate", line: full(map[string]string{"is_estimate": "X"}),
			want: []want{{CodeBadEstimate, "is_estimate", RuleColumns}}},
		{name: "unknown service_type", line: full(map[string]string{"service_type": "S"}),
			want: []want{{CodeBadServiceType, "service_type", RuleColumns}}},
		{name: "service_type outside a configured list", opts: Options{ServiceTypes: []string{"e", " G "}}, line: full(map[string]string{"service_type": "W"}),
			want: []want{{CodeBadServiceType, "service_type", RuleColumns}}},
		{name: "unknown deletion flag", line: full(map[string]string{"is_account_deletion": "yes"}),
			want: []want{{CodeBadFlag, "is_account_deletion", RuleColumns}}},
		{name: "state of 3 letters", line: full(map[string]string{"service_state": "ORE"}),
			want: []want{{CodeBadState, "service_state", RuleColumns}}},
		{name: "state with a digit", line: full(map[string]string{"service_state": "O1"}),
			want: []want{{CodeBadState, "service_state", RuleColumns}}},
		{name: "zip of 4 digits", line: full(map[string]string{"service_zip_code": "9740"}),
			want: []want{{CodeBadZip, "service_zip_code", RuleColumns}}},
		{name: "zip+4 cut short", line: full(map[string]string{"service_zip_code": "97403-12"}),
			want: []want{{CodeBadZip, "service_zip_code", RuleColumns}}},
		{name: "required customer_id empty", line: full(map[string]string{"customer_id": ""}),
			want: []want{{CodeRequired, "customer_id", RuleColumns}}},
		{name: "required service_point_id only spaces", line: full(map[string]string{"service_point_id": "   "}),
			want: []want{{CodeRequired, "service_point_id", RuleColumns}}},
		{name: "required usage_value empty", line: full(map[string]string{"usage_value": ""}),
			want: []want{{CodeRequired, "usage_value", RuleColumns}}},
		{name: "every problem of a row", line: full(map[string]string{"date_to": "20240230", "duration": "0", "service_type": "X", "usage_value": "-1000000000"}),
			want: []want{
				{CodeBadServiceType, "service_type", RuleColumns},
				{CodeOutOfRange, "usage_value", RuleColumns},
				{CodeNegativeUsage, "usage_value", RuleU9},
				{CodeBadDate, "date_to", RuleColumns},
				{CodeBadDuration, "duration", RuleColumns},
			}},
		{name: "blank line", line: "",
			want: []want{{CodeBlankLine, "", RuleFormat}}, raw: ""},
		{name: "CR-only line", line: "\r",
			want: []want{{CodeBlankLine, "", RuleFormat}}, raw: ""},
		{name: "spaces only line", line: "   ",
			want: []want{{CodeFieldCount, "", RuleFormat}}},
		{name: "line over the limit", opts: Options{MaxLineBytes: len(long) - 100}, line: long,
			want: []want{{CodeLineTooLong, "", RuleFormat}}, raw: "C1001\tP2001\tS77\tCCB9\txxxx"},
		{name: "line one byte over the limit", opts: Options{MaxLineBytes: len(long) - 1}, line: long,
			want: []want{{CodeLineTooLong, "", RuleFormat}}},
		{name: "line one byte over the limit with CRLF", opts: Options{MaxLineBytes: len(long) - 1}, line: long + "\r",
			want: []want{{CodeLineTooLong, "", RuleFormat}}},
		{name: "customer layout: missing active_date", layout: LayoutCustomer, line: rowLine(LayoutCustomer, map[string]string{"active_date": ""}),
			want: []want{{CodeRequired, "active_date", RuleColumns}}},
		{name: "customer layout: usage columns present", layout: LayoutCustomer, line: fullFields,
			want: []want{{CodeFieldCount, "", RuleFormat}}},
		{name: "usage layout: duration 0", layout: LayoutUsage, line: rowLine(LayoutUsage, map[string]string{"duration": "0"}),
			want: []want{{CodeBadDuration, "duration", RuleColumns}}},
		{name: "usage layout: bad estimate and date", layout: LayoutUsage, line: rowLine(LayoutUsage, map[string]string{"is_estimate": "actual", "date_to": "20240431"}),
			want: []want{{CodeBadDate, "date_to", RuleColumns}, {CodeBadEstimate, "is_estimate", RuleColumns}}},
	}
	if len(cases) < 35 {
		t.Fatalf("only %d malformed cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := c.layout
			if l == "" {
				l = LayoutFull
			}
			good := rowLine(l, nil)
			data := fileText(l, good, c.line, good)
			if c.opts.MaxLineBytes > 0 && c.opts.MaxLineBytes < len(HeaderLine(l)) {
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

func assertNoPersonal(t *testing.T, rej *Rejected) {
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
	data := fileText(LayoutFull, rowLine(LayoutFull, map[string]string{"date_to": "20240230", "service_zip_code": "9740"}))
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
	data = fileText(LayoutFull, "a\tb")
	_, recs, _ = readString(t, fullName, data, Options{})
	if m := recs[0].Rejected.Reasons[0].Message; !strings.HasPrefix(m, "2 fields, expected 28") {
		t.Errorf("field count message %q", m)
	}
}

func TestAcceptedRow(t *testing.T) {
	data := fileText(LayoutFull, rowLine(LayoutFull, map[string]string{
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
		{"layout", row.Layout == LayoutFull},
		{"line", row.Line == 2},
		{"ids", row.CustomerID == "C1001" && row.PremiseID == "P2001" && row.AccountID == "A3001" && row.ServicePointID == "SP4001"},
		{"strings", row.SecondaryID == "S77" && row.CCBAccountID == "CCB9" && row.CustomerType == "RES" && row.ReadCycle == "07" && row.RateCode == "R1"},
		{"address", row.BusinessName == personalValues["business_name"] && row.ServiceCity == personalValues["service_city"] && row.ServiceUnit == "Apt 2Q"},
		{"active", row.ActiveDate == dates.MustParse("20230115")},
		{"inactive", row.InactiveDate == NullDate{Date: dates.MustParse("20240229"), Valid: true}},
		{"deletion", row.IsAccountDeletion},
		{"service type upper", row.ServiceType == "G"},
		{"state upper", row.ServiceState == "OR"},
		{"zip", row.ServiceZipCode == "97403-1234"},
		{"meter", row.MeterType == "AMI" && row.MeterUnit == "KWH"},
		{"sq foot null", !row.BldgSqFoot.Valid},
		{"usage -0 is 0", row.UsageValue == 0 && !signbit(row.UsageValue)},
		{"date_to", row.DateTo == dates.MustParse("20240131")},
		{"duration", row.Duration == 31},
		{"estimate default", row.IsEstimate == EstimateEstimated},
		{"charge null", !row.UsageCharge.Valid},
		{"period start", row.PeriodStart() == dates.MustParse("20240101")},
		{"no extra", row.Extra == nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: row %+v", c.name, row)
		}
	}

	_, recs, _ = readString(t, fullName, fileText(LayoutFull, rowLine(LayoutFull, nil)), Options{})
	row = recs[0].Row
	if row.UsageValue != 612.5 || row.UsageCharge != (NullFloat{73.19, true}) || row.BldgSqFoot != (NullFloat{1850, true}) ||
		row.IsEstimate != EstimateActual || row.IsAccountDeletion || row.InactiveDate.Valid {
		t.Errorf("row %+v", row)
	}
}

func signbit(f float64) bool { return 1/f < 0 }

func TestFlagsAndEstimates(t *testing.T) {
	for in, wantDel := range map[string]bool{"true": true, "TRUE": true, "1": true, "t": true, "T": true, "false": false, "0": false, "f": false, "F": false, "": false} {
		_, recs, _ := readString(t, fullName, fileText(LayoutFull, rowLine(LayoutFull, map[string]string{"is_account_deletion": in})), Options{})
		if recs[0].Row == nil || recs[0].Row.IsAccountDeletion != wantDel {
			t.Errorf("is_account_deletion %q: %+v", in, recs[0])
		}
	}
	for in, w := range map[string]Estimate{"A": EstimateActual, "a": EstimateActual, "E": EstimateEstimated, "e": EstimateEstimated, "U": EstimateUser, "u": EstimateUser, "": EstimateEstimated} {
		_, recs, _ := readString(t, usageName, fileText(LayoutUsage, rowLine(LayoutUsage, map[string]string{"is_estimate": in})), Options{})
		if recs[0].Row == nil || recs[0].Row.IsEstimate != w {
			t.Errorf("is_estimate %q: %+v", in, recs[0])
		}
	}
}

func TestU9NetMetering(t *testing.T) {
	line := rowLine(LayoutFull, map[string]string{"usage_value": "-42.5", "usage_charge": "-3.10"})
	_, recs, _ := readString(t, fullName, fileText(LayoutFull, line), Options{})
	if rej := recs[0].Rejected; rej == nil || !slices.Equal(codes(rej.Reasons), []string{CodeNegativeUsage, CodeNegativeUsage}) {
		t.Fatalf("without net metering: %+v", recs[0])
	}
	_, recs, _ = readString(t, fullName, fileText(LayoutFull, line), Options{NetMetering: true})
	if row := recs[0].Row; row == nil || row.UsageValue != -42.5 || row.UsageCharge.Value != -3.10 {
		t.Fatalf("with net metering: %+v", recs[0])
	}
}

func TestCustomerAndUsageLayouts(t *testing.T) {
	_, recs, err := readString(t, customerName, fileText(LayoutCustomer, rowLine(LayoutCustomer, nil)), Options{})
	if err != io.EOF || len(recs) != 1 || recs[0].Row == nil {
		t.Fatalf("customer: %v %+v", err, recs)
	}
	c := recs[0].Row
	if c.Layout != LayoutCustomer || c.CustomerID != "C1001" || c.ServicePointID != "SP4001" || c.ServiceType != "E" ||
		c.UsageValue != 0 || c.DateTo != 0 || c.Duration != 0 || c.IsEstimate != 0 || c.UsageCharge.Valid {
		t.Errorf("customer row %+v", c)
	}

	_, recs, err = readString(t, usageName, fileText(LayoutUsage, rowLine(LayoutUsage, nil)), Options{})
	if err != io.EOF || len(recs) != 1 || recs[0].Row == nil {
		t.Fatalf("usage: %v %+v", err, recs)
	}
	u := recs[0].Row
	want := Row{Layout: LayoutUsage, Line: 2, ServicePointID: "SP4001", UsageValue: 612.5, DateTo: dates.MustParse("20240131"),
		Duration: 31, IsEstimate: EstimateActual, UsageCharge: NullFloat{73.19, true}}
	if u.CustomerID != "" || u.ServiceType != "" || u.ActiveDate != 0 || u.Line != want.Line || u.ServicePointID != want.ServicePointID ||
		u.UsageValue != want.UsageValue || u.DateTo != want.DateTo || u.Duration != want.Duration || u.IsEstimate != want.IsEstimate || u.UsageCharge != want.UsageCharge {
		t.Errorf("usage row %+v, want %+v", u, want)
	}
}

func TestExtraColumns(t *testing.T) {
	header := HeaderLine(LayoutFull) + "\tmail_address\t Phone "
	good := rowLine(LayoutFull, nil) + "\t1 Mailbox Lane\t555-0100"
	bad := rowLine(LayoutFull, map[string]string{"duration": "0"}) + "\t2 Mailbox Lane\t555-0199"
	data := header + "\n" + good + "\n" + bad + "\n"
	r, recs, err := readString(t, fullName, data, Options{})
	if err != io.EOF {
		t.Fatal(err)
	}
	if got := r.ExtraColumns(); !slices.Equal(got, []string{"mail_address", "Phone"}) {
		t.Fatalf("ExtraColumns = %q", got)
	}
	row := recs[0].Row
	if !slices.Equal(row.Extra, []Attribute{{"mail_address", "1 Mailbox Lane"}, {"Phone", "555-0100"}}) {
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
	good := rowLine(LayoutFull, nil)
	cases := map[string]string{
		"CRLF":              HeaderLine(LayoutFull) + "\r\n" + good + "\r\n" + good + "\r\n",
		"BOM":               "\xEF\xBB\xBF" + HeaderLine(LayoutFull) + "\n" + good + "\n" + good + "\n",
		"BOM and CRLF":      "\xEF\xBB\xBF" + HeaderLine(LayoutFull) + "\r\n" + good + "\r\n" + good,
		"no final line end": HeaderLine(LayoutFull) + "\n" + good + "\n" + good,
		"header in capitals with spaces": strings.ToUpper(strings.ReplaceAll(HeaderLine(LayoutFull), "\t", " \t ")) +
			"\n" + good + "\n" + good + "\n",
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
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
	// Only the final line end is free: an empty line before EOF is a blank line.
	_, recs, _ := readString(t, fullName, fileText(LayoutFull, good, ""), Options{})
	if len(recs) != 2 || recs[1].Rejected == nil || recs[1].Rejected.Reasons[0].Code != CodeBlankLine || recs[1].Rejected.Line != 3 {
		t.Fatalf("trailing blank line: %+v", recs)
	}
	// A header alone is a file with no rows.
	_, recs, err := readString(t, fullName, HeaderLine(LayoutFull)+"\n", Options{})
	if err != io.EOF || len(recs) != 0 {
		t.Fatalf("header only: %v %d", err, len(recs))
	}
}

func TestRedaction(t *testing.T) {
	bad := map[string]string{"duration": "0"}
	lines := []string{
		rowLine(LayoutFull, bad),
		rowLine(LayoutFull, bad) + "\tx", // field count
		strings.Replace(rowLine(LayoutFull, bad), "Evergreen", "Evergreen\xff", 1), // invalid UTF-8
	}
	_, recs, _ := readString(t, fullName, fileText(LayoutFull, lines...), Options{})
	for _, rec := range recs {
		assertNoPersonal(t, rec.Rejected)
	}
	if want := "C1001\tP2001\tS77\tCCB9\tRES\t[redacted]\tA3001\t20230115\t\t\t07\tR1\tSP4001\tE\t[redacted]\t[redacted]\t[redacted]\t[redacted]\tOR\t[redacted]\tAMI\tKWH\t1850\t612.5\t20240131\t0\tA\t73.19"; recs[0].Rejected.Raw != want {
		t.Errorf("Raw = %q\nwant %q", recs[0].Rejected.Raw, want)
	}

	_, recs, _ = readString(t, fullName, fileText(LayoutFull, lines...), Options{KeepPersonal: true})
	if recs[0].Rejected.Raw != lines[0] || recs[1].Rejected.Raw != lines[1] {
		t.Errorf("KeepPersonal changed Raw: %q", recs[0].Rejected.Raw)
	}
	if raw := recs[2].Rejected.Raw; !strings.Contains(raw, "Evergreen\uFFFD") {
		t.Errorf("KeepPersonal Raw of invalid UTF-8 = %q", raw)
	}
	_, recs, _ = readString(t, fullName, fileText(LayoutFull, rowLine(LayoutFull, map[string]string{"service_zip_code": "9740"})), Options{KeepPersonal: true})
	if m := recs[0].Rejected.Reasons[0].Message; !strings.Contains(m, `"9740"`) {
		t.Errorf("KeepPersonal message %q", m)
	}
}

func TestStatsByCode(t *testing.T) {
	data := fileText(LayoutFull,
		rowLine(LayoutFull, nil),
		rowLine(LayoutFull, map[string]string{"usage_value": "-1", "usage_charge": "-1"}),
		rowLine(LayoutFull, map[string]string{"duration": "0"}),
		"",
	)
	r, _, _ := readString(t, fullName, data, Options{})
	s := r.Stats()
	want := Stats{Lines: 4, Accepted: 1, Rejected: 3, RejectedByCode: map[string]int64{CodeNegativeUsage: 1, CodeBadDuration: 1, CodeBlankLine: 1}}
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
	if len(Columns) != numColumns {
		t.Fatalf("%d columns, the parser knows %d", len(Columns), numColumns)
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
		if Columns[i].Name != name {
			t.Errorf("Columns[%d] = %s, parser expects %s", i, Columns[i].Name, name)
		}
	}
}

func TestLongDecimals(t *testing.T) {
	line := rowLine(LayoutFull, map[string]string{"usage_value": "123456789.1234567891", "usage_charge": "0.00000000000000000001"})
	_, recs, _ := readString(t, fullName, fileText(LayoutFull, line), Options{})
	if row := recs[0].Row; row == nil || row.UsageValue != 123456789.1234567891 || row.UsageCharge.Value != 1e-20 {
		t.Fatalf("%+v", recs[0])
	}
}
