package sessionid

import (
	"testing"
	"time"
)

// TestStartedReadsNew: the start time comes back out of an id to the
// second, ids differ, and what New did not make is refused.
func TestStartedReadsNew(t *testing.T) {
	now := time.Date(2026, 11, 28, 19, 48, 44, 700, time.UTC)
	a, b := New(now), New(now)
	if a == b {
		t.Fatalf("two ids at the same moment are both %s", a)
	}
	if len(a) != 24 {
		t.Errorf("got id %q of %d characters, want 24", a, len(a))
	}
	got, ok := Started(a)
	if !ok || !got.Equal(now.Truncate(time.Second)) {
		t.Errorf("Started(%s) = %v, %v; want %v, true", a, got, ok, now.Truncate(time.Second))
	}
	for _, id := range []string{"", "abc", "zzzzzzzz0000", "s-golden"} {
		if _, ok := Started(id); ok {
			t.Errorf("Started(%q) accepted an id New did not make", id)
		}
	}
}
