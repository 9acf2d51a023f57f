package billing

import (
	"strings"
	"testing"
)

// TestTokenFastPathsAgree: isNullToken and isBlank answer as the plain
// definitions do (EqualFold against each token; TrimSpace, which trims
// Unicode spaces too) for every value, their fast paths included.
func TestTokenFastPathsAgree(t *testing.T) {
	values := []string{"", " ", "  ", "\t", "\u00a0", "\u0085", "\u3000x", " x", "x ", "x", "NA", "na", "nA", "N/A", "null", "NULL", "Null",
		"nul", "nulll", `\N`, `\n`, "N", "0", "12.5", "\u00a0\u00a0", "é", "\x00", "\x7f"}
	for _, v := range values {
		if got, want := isNullToken(v), strings.EqualFold(v, "null") || strings.EqualFold(v, "na") || v == `\N`; got != want {
			t.Errorf("isNullToken(%q) = %v, want %v", v, got, want)
		}
		if got, want := isBlank(v), strings.TrimSpace(v) == ""; got != want {
			t.Errorf("isBlank(%q) = %v, want %v", v, got, want)
		}
	}
}
