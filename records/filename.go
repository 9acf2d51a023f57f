package records

import (
	"fmt"
	"strings"
	"time"

	"github.com/usagestream/usagestream/internal/ellipsis"
)

// nameConvention is quoted in every file name error so the sender sees the target shape.
const nameConvention = "opwr_<utility>_<population>_<version>_<kind>_<yyyyMMddHHmmss>.<gz|zip>"

// FileName is the parsed Opower file name (docs/data-contract.md §2.3):
// opwr_<utility>_<population>_<version>_<kind>_<yyyyMMddHHmmss>.<gz|zip>;
// plain .tsv/.txt (optionally before .gz/.zip) is allowed too, and .xml for
// Green Button interval files (producers/greenbutton).
type FileName struct {
	Base            string    // base name as given
	Utility         string    // 3 or 4 chars, e.g. "gec"
	Population      string    // res, nonres, nonres-smb, nonres-lci
	SpecVersion     string    // e.g. "v1-19-0"
	Kind            string    // full, customer, usage, or interval<mm>
	Layout          Layout    // from Kind; "" for interval kinds
	IntervalMinutes int       // from interval<mm>, else 0
	Timestamp       time.Time // UTC, from the name
	Conforms        bool      // false when the name does not follow the convention
}

// NameError says which part of a file name breaks the convention.
type NameError struct {
	Base    string
	Part    string // extension, parts, prefix, utility, population, version, kind, timestamp
	Problem string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("file name %q does not follow %s: %s %s; rename the file or give its layout explicitly",
		e.Base, nameConvention, e.Part, e.Problem)
}

// ParseFileName parses a base name. On error the returned FileName holds the
// parts read so far with Conforms false, so a caller that knows the layout can
// still process the file (docs/data-contract.md §2.3 decision).
func ParseFileName(base string) (FileName, error) {
	fn := FileName{Base: base}
	fail := func(part, format string, args ...any) (FileName, error) {
		return fn, &NameError{Base: base, Part: part, Problem: fmt.Sprintf(format, args...)}
	}

	stem, ok := stripExtension(base)
	if !ok {
		return fail("extension", "is missing: expected .gz, .zip, .tsv, .txt or .xml")
	}
	parts := strings.Split(stem, "_")
	if len(parts) != 6 {
		return fail("parts", "count is %d ('_'-separated), expected 6: opwr, utility, population, version, kind, timestamp", len(parts))
	}
	if !strings.EqualFold(parts[0], "opwr") {
		return fail("prefix", "%q must be \"opwr\"", clip(parts[0]))
	}

	fn.Utility = parts[1]
	if n := len(parts[1]); (n != 3 && n != 4) || !isAlnum(parts[1]) {
		return fail("utility", "%q must be 3 or 4 letters or digits", clip(parts[1]))
	}

	pop := strings.ToLower(parts[2])
	switch pop {
	case "res", "nonres", "nonres-smb", "nonres-lci":
		fn.Population = pop
	default:
		return fail("population", "%q must be res, nonres, nonres-smb or nonres-lci", clip(parts[2]))
	}

	if !isSpecVersion(parts[3]) {
		return fail("version", "%q must be digits separated by hyphens, like v1-19-0", clip(parts[3]))
	}
	fn.SpecVersion = parts[3]

	kind := strings.ToLower(parts[4])
	switch kind {
	case "full":
		fn.Layout = LayoutFull
	case "customer":
		fn.Layout = LayoutCustomer
	case "usage":
		fn.Layout = LayoutUsage
	default:
		mm, ok := intervalMinutes(kind)
		if !ok {
			return fail("kind", "%q must be full, customer, usage or interval<mm> with mm 5, 15, 30, 60 or 1440", clip(parts[4]))
		}
		fn.IntervalMinutes = mm
	}
	fn.Kind = kind

	ts := parts[5]
	if len(ts) != 14 || !isDigits(ts) {
		return fail("timestamp", "%q must be 14 digits yyyyMMddHHmmss", clip(ts))
	}
	t, err := time.ParseInLocation("20060102150405", ts, time.UTC)
	if err != nil {
		return fail("timestamp", "%q is not a real date and time (yyyyMMddHHmmss)", ts)
	}
	fn.Timestamp = t
	fn.Conforms = true
	return fn, nil
}

// stripExtension removes .gz/.zip and/or .tsv/.txt/.xml; ok is false when none is there.
func stripExtension(base string) (string, bool) {
	stem, found := base, false
	for _, ext := range [...]string{".gz", ".zip"} {
		if hasSuffixFold(stem, ext) {
			stem, found = stem[:len(stem)-len(ext)], true
			break
		}
	}
	for _, ext := range [...]string{".tsv", ".txt", ".xml"} {
		if hasSuffixFold(stem, ext) {
			stem, found = stem[:len(stem)-len(ext)], true
			break
		}
	}
	return stem, found
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func intervalMinutes(kind string) (int, bool) {
	digits, ok := strings.CutPrefix(kind, "interval")
	if !ok || len(digits) == 0 || len(digits) > 4 || !isDigits(digits) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		n = n*10 + int(digits[i]-'0')
	}
	switch n {
	case 5, 15, 30, 60, 1440: // docs/data-contract.md §3: the only interval lengths
		return n, true
	}
	return 0, false
}

// isSpecVersion accepts an optional 'v' then digit groups separated by single hyphens.
func isSpecVersion(s string) bool {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for _, g := range strings.Split(s, "-") {
		if g == "" || !isDigits(g) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(s[i] >= '0' && s[i] <= '9') && !(c >= 'a' && c <= 'z') {
			return false
		}
	}
	return s != ""
}

// clip keeps error messages short when a name part is absurdly long.
func clip(s string) string { return ellipsis.Clip(s, 40) }

// IsXML says whether a base name is an XML file (.xml, optionally before
// .gz or .zip): ingest reads such a file as Green Button XML.
func IsXML(base string) bool {
	stem := base
	for _, ext := range [...]string{".gz", ".zip"} {
		if hasSuffixFold(stem, ext) {
			stem = stem[:len(stem)-len(ext)]
			break
		}
	}
	return hasSuffixFold(stem, ".xml")
}
