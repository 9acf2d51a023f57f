package billing

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usagestream/usagestream/internal/dates"
	"github.com/usagestream/usagestream/records"
)

// Indexes into records.BillingColumns(); TestColumnIndexes keeps them in step with the catalogue.
// The row parser switches on them instead of comparing names on every field.
const (
	cCustomerID = iota
	cPremiseID
	cSecondaryID
	cCCBAccountID
	cCustomerType
	cBusinessName
	cAccountID
	cActiveDate
	cInactiveDate
	cIsAccountDeletion
	cReadCycle
	cRateCode
	cServicePointID
	cServiceType
	cServiceHouseNumber
	cServiceStreetName
	cServiceUnit
	cServiceCity
	cServiceState
	cServiceZipCode
	cMeterType
	cMeterUnit
	cBldgSqFoot
	cUsageValue
	cDateTo
	cDuration
	cIsEstimate
	cUsageCharge
	numColumns
)

// Limits of docs/data-contract.md §2.4 and the project's decisions.
const (
	maxUsageValue = 999999999
	maxDuration   = 10000 // days; a longer billing period is a typing error
)

func columnIndex(name string) int {
	for i, c := range records.BillingColumns() {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func (r *Reader) add(id int, code, rule, msg string) {
	r.reasons = append(r.reasons, records.Reason{Field: records.BillingColumn(id).Name, Code: code, Rule: rule, Message: msg})
}

// parseFields fills row from the fields of one line and appends a Reason for
// every problem, so the sender sees all of a row's faults at once.
func (r *Reader) parseFields(row *records.BillingRow, f []string, validUTF8 bool) {
	if r.layout != records.LayoutCustomer {
		row.IsEstimate = records.EstimateEstimated // docs/data-contract.md §2.4: empty is_estimate means E
	}
	activeOK, inactiveOK := false, false
	for pos, id := range r.ids {
		v := f[pos]
		col := &r.cols[pos]
		if !validUTF8 && !utf8.ValidString(v) {
			r.add(id, records.CodeInvalidUTF8, records.RuleFormat, fmt.Sprintf("%s is not valid UTF-8 (bad byte at offset %d of the field); send the file encoded as UTF-8", col.Name, badUTF8Offset(v)))
			continue
		}
		if v == "" {
			if col.Required {
				r.add(id, records.CodeRequired, records.RuleBillingColumns, col.Name+" is empty; it is required, so fill it in")
			}
			continue
		}
		if col.Type != records.TypeString {
			if isNullToken(v) {
				r.add(id, records.CodeNullToken, records.RuleFormat, fmt.Sprintf("%s %q is not a null; leave the field empty for null", col.Name, v))
				continue
			}
		} else if col.Required && isBlank(v) {
			// A blank id would key a Kafka record by spaces and join nothing.
			r.add(id, records.CodeRequired, records.RuleBillingColumns, fmt.Sprintf("%s holds only spaces (%d bytes); it is required, so fill it in", col.Name, len(v)))
			continue
		}

		switch id {
		case cCustomerID:
			row.CustomerID = v
		case cPremiseID:
			row.PremiseID = v
		case cSecondaryID:
			row.SecondaryID = v
		case cCCBAccountID:
			row.CCBAccountID = v
		case cCustomerType:
			row.CustomerType = v
		case cBusinessName:
			row.BusinessName = v
		case cAccountID:
			row.AccountID = v
		case cActiveDate:
			row.ActiveDate, activeOK = r.date(id, v)
		case cInactiveDate:
			row.InactiveDate.Date, inactiveOK = r.date(id, v)
			row.InactiveDate.Valid = inactiveOK
			if inactiveOK {
				r.notAfterFile(id, row.InactiveDate.Date, "an account cannot be closed in the future of the file saying so")
			}
		case cIsAccountDeletion:
			row.IsAccountDeletion = r.flag(id, v)
		case cReadCycle:
			row.ReadCycle = v
		case cRateCode:
			row.RateCode = v
		case cServicePointID:
			row.ServicePointID = v
		case cServiceType:
			row.ServiceType = r.serviceType(id, v)
		case cServiceHouseNumber:
			row.ServiceHouseNumber = v
		case cServiceStreetName:
			row.ServiceStreetName = v
		case cServiceUnit:
			row.ServiceUnit = v
		case cServiceCity:
			row.ServiceCity = v
		case cServiceState:
			row.ServiceState = r.state(id, v)
		case cServiceZipCode:
			row.ServiceZipCode = r.zip(id, v)
		case cMeterType:
			row.MeterType = v
		case cMeterUnit:
			row.MeterUnit = v
		case cBldgSqFoot:
			if x, ok := r.number(id, v); ok {
				if x < 0 {
					r.add(id, records.CodeOutOfRange, records.RuleBillingColumns, fmt.Sprintf("%s %q is below 0; a floor area cannot be negative", col.Name, clip(v)))
				}
				row.BldgSqFoot = records.NullFloat{Value: x, Valid: true}
			}
		case cUsageValue:
			if x, ok := r.number(id, v); ok {
				if x > maxUsageValue || x < -maxUsageValue {
					r.add(id, records.CodeOutOfRange, records.RuleBillingColumns, fmt.Sprintf("%s %q is beyond ±%d, the largest value allowed", col.Name, clip(v), maxUsageValue))
				}
				r.negative(id, x, v)
				row.UsageValue = x
			}
		case cDateTo:
			var ok bool
			if row.DateTo, ok = r.date(id, v); ok {
				r.notAfterFile(id, row.DateTo, "a bill cannot end after the file was made")
			}
		case cDuration:
			row.Duration = r.duration(id, v)
		case cIsEstimate:
			row.IsEstimate = r.estimate(id, v)
		case cUsageCharge:
			// U9 restricts usage_value only: a negative charge is a credit,
			// allowed with or without net metering.
			if x, ok := r.number(id, v); ok {
				row.UsageCharge = records.NullFloat{Value: x, Valid: true}
			}
		}
	}
	if activeOK && inactiveOK && row.InactiveDate.Date < row.ActiveDate {
		r.add(cInactiveDate, records.CodeInactiveBeforeActive, records.RuleBillingColumns, fmt.Sprintf("inactive_date %s is before active_date %s; an account cannot end before it starts",
			row.InactiveDate.Date, row.ActiveDate))
	}
}

func (r *Reader) date(id int, v string) (dates.Date, bool) {
	d, err := dates.Parse(v)
	if err != nil {
		r.add(id, records.CodeBadDate, records.RuleBillingColumns, fmt.Sprintf("%s %s is not a real calendar date (yyyymmdd)", records.BillingColumn(id).Name, r.show(id, v)))
		return 0, false
	}
	return d, true
}

// notAfterFile rejects a date later than the file's timestamp allows
// (DATE_AFTER_FILE): a typo such as 22040731 would otherwise become the
// service point's newest date and age every gap out at once.
func (r *Reader) notAfterFile(id int, d dates.Date, why string) {
	if r.latest == 0 || d <= r.latest {
		return
	}
	r.add(id, records.CodeDateAfterFile, records.RuleBillingColumns, fmt.Sprintf("%s %s is %d days after the file was made (%s, from its name); %s: check the date",
		records.BillingColumn(id).Name, d, int(d-dates.FromTime(r.name.Timestamp)), r.name.Timestamp.Format("2006-01-02"), why))
}

// number reads an N field: optional '-', digits, optional '.' and digits.
func (r *Reader) number(id int, v string) (float64, bool) {
	if !isDecimal(v) {
		name := records.BillingColumn(id).Name
		if strings.IndexByte(v, ',') >= 0 && onlyNumberChars(v) {
			r.add(id, records.CodeThousandsSeparator, records.RuleBillingColumns, fmt.Sprintf("%s %s has a ',': no thousands separators, and '.' is the decimal point", name, r.show(id, v)))
		} else {
			r.add(id, records.CodeBadNumber, records.RuleBillingColumns, fmt.Sprintf("%s %s is not a decimal number: use digits with an optional leading '-' and '.' decimals, like 1234.5", name, r.show(id, v)))
		}
		return 0, false
	}
	x, ok := fastDecimal(v)
	if ok {
		return x, true
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil { // only a range error is possible after isDecimal
		r.add(id, records.CodeOutOfRange, records.RuleBillingColumns, fmt.Sprintf("%s %s is too large to be a number", records.BillingColumn(id).Name, r.show(id, v)))
		return 0, false
	}
	if x == 0 {
		x = 0 // "-0" would otherwise keep its sign bit
	}
	return x, true
}

// negative applies rule U9: negative usage_value needs net metering.
func (r *Reader) negative(id int, x float64, v string) {
	if x < 0 && !r.netMetering {
		r.add(id, records.CodeNegativeUsage, records.RuleU9, fmt.Sprintf("%s %s is negative, which is allowed only when net metering is enabled", records.BillingColumn(id).Name, r.show(id, v)))
	}
}

func (r *Reader) duration(id int, v string) int32 {
	neg := v[0] == '-'
	digits := v
	if neg {
		digits = v[1:]
	}
	if !isDigits(digits) {
		r.add(id, records.CodeBadInteger, records.RuleBillingColumns, fmt.Sprintf("duration %s is not a whole number of days", r.show(id, v)))
		return 0
	}
	n := 0
	for i := 0; i < len(digits) && n <= maxDuration; i++ {
		n = n*10 + int(digits[i]-'0')
	}
	switch {
	case neg || n == 0:
		r.add(id, records.CodeBadDuration, records.RuleBillingColumns, fmt.Sprintf("duration %s must be more than 0 days", r.show(id, v)))
		return 0
	case n > maxDuration:
		r.add(id, records.CodeOutOfRange, records.RuleBillingColumns, fmt.Sprintf("duration %s is over %d days; a billing period is a few weeks", r.show(id, v), maxDuration))
		return 0
	}
	return int32(n)
}

func (r *Reader) estimate(id int, v string) records.Estimate {
	if len(v) == 1 {
		switch v[0] | 0x20 {
		case 'a':
			return records.EstimateActual
		case 'e':
			return records.EstimateEstimated
		case 'u':
			return records.EstimateUser
		}
	}
	r.add(id, records.CodeBadEstimate, records.RuleBillingColumns, fmt.Sprintf("is_estimate %s must be A, E or U (or empty for E)", r.show(id, v)))
	return records.EstimateEstimated
}

func (r *Reader) serviceType(id int, v string) string {
	for _, t := range r.serviceTypes {
		if strings.EqualFold(v, t) {
			return t
		}
	}
	r.add(id, records.CodeBadServiceType, records.RuleBillingColumns, fmt.Sprintf("service_type %s is not one of the allowed codes %s", r.show(id, v), strings.Join(r.serviceTypes, ", ")))
	return ""
}

func (r *Reader) flag(id int, v string) bool {
	switch {
	case strings.EqualFold(v, "true") || v == "1" || strings.EqualFold(v, "t"):
		return true
	case strings.EqualFold(v, "false") || v == "0" || strings.EqualFold(v, "f"):
		return false
	}
	r.add(id, records.CodeBadFlag, records.RuleBillingColumns, fmt.Sprintf("is_account_deletion %s must be true, 1 or t to delete, false, 0, f or empty to keep", r.show(id, v)))
	return false
}

func (r *Reader) state(id int, v string) string {
	if len(v) == 2 && isLetter(v[0]) && isLetter(v[1]) {
		return strings.ToUpper(v) // no copy when already upper-case
	}
	r.add(id, records.CodeBadState, records.RuleBillingColumns, fmt.Sprintf("service_state %s must be a 2-letter state code, like CA", r.show(id, v)))
	return ""
}

func (r *Reader) zip(id int, v string) string {
	ok := (len(v) == 5 && isDigits(v)) ||
		(len(v) == 10 && v[5] == '-' && isDigits(v[:5]) && isDigits(v[6:]))
	if !ok {
		r.add(id, records.CodeBadZip, records.RuleBillingColumns, fmt.Sprintf("service_zip_code %s must be NNNNN or NNNNN-NNNN", r.show(id, v)))
		return ""
	}
	return v
}

// isDecimal is the N syntax: -?[0-9]+(\.[0-9]+)?
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		frac := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == frac {
			return false
		}
	}
	return i == len(s)
}

// fastDecimal converts a checked decimal of at most 15 digits exactly as
// strconv.ParseFloat does (Clinger's fast path: mantissa and power of ten are
// both exact, so one division rounds correctly) at a fraction of its cost.
func fastDecimal(s string) (float64, bool) {
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var m uint64
	digits, frac := 0, -1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			frac = 0
			continue
		}
		m = m*10 + uint64(s[i]-'0')
		digits++
		if frac >= 0 {
			frac++
		}
	}
	if digits > 15 {
		return 0, false
	}
	x := float64(m)
	if frac > 0 {
		p := 1.0
		for range frac {
			p *= 10
		}
		x /= p
	}
	if neg && x != 0 {
		x = -x
	}
	return x, true
}

// onlyNumberChars tells "1,234.5" (a thousands separator) from "1 234" or "1e3" (not a number).
func onlyNumberChars(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == ',', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

func isNullToken(s string) bool {
	if len(s) != 2 && len(s) != 4 { // most values: no EqualFold at all
		return false
	}
	return strings.EqualFold(s, "null") || strings.EqualFold(s, "na") || s == `\N`
}

func isLetter(c byte) bool {
	c |= 0x20
	return c >= 'a' && c <= 'z'
}

func isBlank(s string) bool {
	if s != "" && s[0] > ' ' && s[0] < utf8.RuneSelf { // most values: no trim
		return false
	}
	return strings.TrimSpace(s) == ""
}

func badUTF8Offset(s string) int {
	for i := 0; i < len(s); {
		c, n := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(s)
}
