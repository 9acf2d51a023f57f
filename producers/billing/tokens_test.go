package billing

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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

// TestSplitTabsAgreesWithSplit: splitTabs cuts every line as strings.Split
// does, whatever the bytes (tabs anywhere, backspaces just above a tab,
// which the word-wise search marks too, non-ASCII bytes anywhere), says
// ASCII exactly when every byte is, and -1 for a line of more fields.
func TestSplitTabsAgreesWithSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []byte{'\t', '\t', 0x08, 0x08, 'a', '1', ' ', 0x80, 0xc3, 0xa9, 0x7f, 0x00, 0x09 ^ 0x01}
	for n := range 20000 {
		b := make([]byte, rng.IntN(70))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		want := strings.Split(s, "\t")
		wantASCII := true
		for _, c := range b {
			wantASCII = wantASCII && c < utf8.RuneSelf
		}
		size := 1 + rng.IntN(12)
		f := make([]string, size)
		k, start, ascii := splitTabs(s, f)
		if len(want) > size {
			if k != -1 {
				t.Fatalf("line %d %q: %d fields into %d: k %d, want -1", n, s, len(want), size, k)
			}
			continue
		}
		if k != len(want)-1 || ascii != wantASCII {
			t.Fatalf("line %d %q: k %d ascii %v, want %d %v", n, s, k, ascii, len(want)-1, wantASCII)
		}
		got := append(f[:k:k], s[start:])
		if !slices.Equal(got, want) {
			t.Fatalf("line %d %q: %q, want %q", n, s, got, want)
		}
	}
}
