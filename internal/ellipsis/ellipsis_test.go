package ellipsis

import "testing"

func TestClip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"abcd", "abcd"},
		{"abcde", "abcd…"},
		{"abcé", "abc…"}, // é is two bytes: the cut would split it
	} {
		if got := Clip(c.in, 4); got != c.want {
			t.Errorf("Clip(%q, 4) = %q, want %q", c.in, got, c.want)
		}
	}
}
