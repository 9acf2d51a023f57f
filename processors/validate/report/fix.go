package report

import "github.com/usagestream/usagestream/records"

// fixes says, per reject code, how the sender fixes the row: the
// reader's message says what is wrong with the value; this is the general
// remedy, for a list sent back to the utility.
var fixes = map[string]string{
	records.CodeFieldCount:           "send every row with as many tab-separated fields as the header; no tab or newline inside a value",
	records.CodeBlankLine:            "remove blank lines",
	records.CodeLineTooLong:          "send the row at its normal length; a missing newline joins rows",
	records.CodeInvalidUTF8:          "encode the file as UTF-8",
	records.CodeRequired:             "fill in the required field",
	records.CodeNullToken:            "leave a field empty for null; do not write NA, null or \\N",
	records.CodeBadDate:              "write a real calendar date as yyyyMMdd",
	records.CodeInactiveBeforeActive: "make inactive_date the same as or after active_date",
	records.CodeBadNumber:            "write a plain decimal number with '.' for decimals",
	records.CodeThousandsSeparator:   "write numbers without thousands separators",
	records.CodeOutOfRange:           "check the value: it is beyond the plausible range",
	records.CodeNegativeUsage:        "send usage as a positive number, or agree net metering (policy net_metering)",
	records.CodeBadInteger:           "write a whole number",
	records.CodeBadDuration:          "write the period's length in days, 1 or more",
	records.CodeBadEstimate:          "write the estimate flag as the data contract lists (A, E or U)",
	records.CodeBadServiceType:       "use one of the agreed service_type codes (E, G, W)",
	records.CodeBadFlag:              "write the flag as Y or N",
	records.CodeBadState:             "write the state as its two-letter code",
	records.CodeBadZip:               "write the ZIP code as 5 digits or ZIP+4",
	records.CodeDateAfterFile:        "dates may not lie after the file's timestamp; check the date or the file name",
	records.CodeBadTime:              "write the interval's end time as HHmm from 0000 to 2359",
	records.CodeOffGrid:              "send intervals of another length in a file of their own (interval<mm> in its name)",
	records.CodeBadUnits:             "use one of the agreed units",
	records.CodeBadOffset:            "write UTC_offset as ±HHMM, like -0500",
	records.CodeMissingUTCOffset:     "send UTC_offset on the days the clocks change",
	records.CodeControlChar:          "remove control characters from ids",
	records.CodeTooLong:              "shorten the id to the agreed length",
	records.CodeDateOutOfWindow:      "check the date: it lies outside the plausible window",
}

// FixFor is how to fix a row rejected with code under rule, for the
// export of rejected rows.
func FixFor(code, rule string) string {
	if f, ok := fixes[code]; ok {
		return f
	}
	return "see docs/rules.md#" + rule
}
