// Package ellipsis shortens values quoted in messages: a reject reason or an
// error that quotes an absurdly long value stays readable (and a log line
// stays small).
package ellipsis

import "strings"

// Clip returns s if it has at most max bytes, else its first max bytes,
// without a broken UTF-8 sequence at the cut, and "…".
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
