package watch

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DisplayName is how a file name is shown in terminals, logs and error files.
// Whoever can upload chooses the names, so a name holding control
// characters (an escape sequence, a newline that would forge a log or error
// file line), spaces, quotes or invalid UTF-8 is shown Go-quoted (%q); a
// plain name is shown as is, so ordinary output stays readable. Every place
// the watcher and ingest print or log a name goes through here.
func DisplayName(name string) string {
	if name == "" || needsQuoting(name) {
		return strconv.Quote(name)
	}
	return name
}

func needsQuoting(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r == '"' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// OneLine escapes what would let a message (an error that quotes a file name
// raw, say) span lines or reach a terminal as control codes: every control
// or non-printable character becomes its Go escape (\n, \x1b, \u2028), the
// rest stays as written.
func OneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(strconv.Quote(s[:1])[1:5]) // \xNN
		case r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[:size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[size:]
	}
	return b.String()
}
