package billing

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usagestream/usagestream/internal/ellipsis"
	"github.com/usagestream/usagestream/records"
)

// Redaction keeps personal data (design: personal data) out of the rejected
// topic and of reject messages: names, addresses and every unknown trailing
// column, which may carry contacts. Empty fields stay empty: they reveal nothing
// and show the sender which fields were null.

const redacted = "[redacted]"

// maxPrefix bounds the text kept from an over-long line.
const maxPrefix = 256

// redactFields rebuilds a rejected line from its fields, personal ones redacted.
func (r *Reader) redactFields(f []string) string {
	var b strings.Builder
	for i, v := range f {
		if i > 0 {
			b.WriteByte('\t')
		}
		if r.personal[i] && v != "" && !r.keepPersonal {
			v = redacted
		}
		b.WriteString(v)
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// redactCount stands for a line whose field count is wrong: positions cannot be
// trusted, so no field can be shown safely.
func (r *Reader) redactCount(s string, n int) string {
	if r.keepPersonal {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return "[redacted: " + strconv.Itoa(n) + " fields, " + strconv.Itoa(len(s)) + " bytes]"
}

// redactPrefix keeps the start of an over-long line, redacted by position (the
// positions at the start of a line are still right), then marks the cut.
func (r *Reader) redactPrefix(b []byte) string {
	if len(b) > maxPrefix {
		b = b[:maxPrefix]
	}
	s := string(b)
	if !r.keepPersonal {
		var out strings.Builder
		for i := 0; ; i++ {
			j := strings.IndexByte(s, '\t')
			v := s
			if j >= 0 {
				v = s[:j]
			}
			if i > 0 {
				out.WriteByte('\t')
			}
			if v != "" && (i >= len(r.personal) || r.personal[i]) {
				v = redacted
			}
			out.WriteString(v)
			if j < 0 {
				break
			}
			s = s[j+1:]
		}
		s = out.String()
	}
	return strings.ToValidUTF8(s, "\uFFFD") + "…[line cut]"
}

// prefixID finds service_point_id in the start of an over-long line, when the
// field ends within it.
func (r *Reader) prefixID(b []byte) string {
	s := string(b[:min(len(b), 4096)])
	for i := 0; i < r.spPos; i++ {
		j := strings.IndexByte(s, '\t')
		if j < 0 {
			return ""
		}
		s = s[j+1:]
	}
	j := strings.IndexByte(s, '\t')
	if j < 0 {
		return ""
	}
	return readableID(s[:j], false)
}

// show renders a value for a message: quoted, or only its shape for personal
// columns, so a message never carries what Raw redacts.
func (r *Reader) show(id int, v string) string {
	if records.BillingColumn(id).Personal && !r.keepPersonal {
		return "(redacted, shape " + strconv.Quote(shape(v)) + ")"
	}
	return strconv.Quote(clip(v))
}

// shape maps digits to 9 and letters to A or a, keeping ASCII punctuation: enough
// to see why a zip code fails without seeing it.
func shape(v string) string {
	const max = 24
	var b strings.Builder
	n := 0
	for _, c := range v {
		if n == max {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte('9')
		case c >= 'A' && c <= 'Z':
			b.WriteByte('A')
		case c >= 'a' && c <= 'z':
			b.WriteByte('a')
		case c < utf8.RuneSelf && c > ' ' && c != 0x7f:
			b.WriteRune(c)
		case c == ' ':
			b.WriteByte('_')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// clip keeps error messages short when a value is absurdly long.
func clip(s string) string { return ellipsis.Clip(s, 40) }
