package testwait

import (
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	calls := 0
	if !For(time.Minute, func() bool { calls++; return calls == 3 }) {
		t.Fatal("For gave up on a condition that held on the third call")
	}
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3 (no call after it held)", calls)
	}
}

func TestForGivesUpAtTheTimeoutAfterALastLook(t *testing.T) {
	t.Parallel()
	start := time.Now()
	calls := 0
	if For(50*time.Millisecond, func() bool { calls++; return false }) {
		t.Fatal("For said a condition that never held held")
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("gave up after %s, before the 50ms timeout", el)
	}
	if calls < 2 {
		t.Fatalf("cond called %d times; want a first call and one at the timeout at least", calls)
	}
}

func TestForChecksAtLeastOnceWithNoTime(t *testing.T) {
	t.Parallel()
	if !For(0, func() bool { return true }) {
		t.Fatal("a condition true at once is not seen with a zero timeout")
	}
}
