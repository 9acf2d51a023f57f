// Package testwait waits in tests for a condition instead of sleeping for a
// guessed time: a fixed sleep is either too short on a loaded machine (a
// flaky test) or too long everywhere else (a slow one).
//
// A sleep that makes time pass on purpose (a timer that must not fire, an
// outage that must last) is not a wait for a condition and stays a sleep,
// with a comment saying so.
package testwait

import (
	"testing"
	"time"
)

// Poll intervals: short at first, so a condition met quickly costs little,
// then longer, so a slow one does not spin.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 200 * time.Millisecond
)

// For calls cond until it returns true or timeout passes, and says whether
// it returned true. cond is called at least once, and once more at the
// timeout, so a condition met during the last interval is seen.
func For(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	poll := firstPoll
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(poll, left))
		poll = min(2*poll, maxPoll)
	}
}

// Eventually is For that fails the test when timeout passes; what says what
// was awaited, for the failure message.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !For(timeout, cond) {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
