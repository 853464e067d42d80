// Package when reads the times and durations people type: the bounds of
// the session filters (sessions list and search --since/--until in the
// CLI, from/to in the console) and the durations of the config and the
// CLI's flags ("90m", "30d"). Every filter reads its bounds here, so a
// value means the same wherever it is typed.
package when

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxDays bounds a duration in days (about 274 years), far below where
// time.Duration overflows.
const maxDays = 100000

var daysRE = regexp.MustCompile(`^(\d+)d$`)

// notDurationError is a string that is no duration at all, as opposed to
// a duration out of range or negative.
type notDurationError struct{ s string }

func (e *notDurationError) Error() string {
	return fmt.Sprintf("duration %q: want e.g. 90s, 15m, 1h or 90d", e.s)
}

// ParseDuration parses whole days ("30d") or a Go duration ("90s", "15m",
// "1h30m"); negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if m := daysRE.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > maxDays {
			return 0, fmt.Errorf("duration %q is out of range", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &notDurationError{s}
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// layouts are the times Parse reads besides durations, most precise
// first; the last, a bare date, is a whole day.
var layouts = []string{time.RFC3339Nano, "2006-01-02T15:04", dateLayout}

const dateLayout = "2006-01-02"

// Parse reads one bound of a time filter: empty (no bound: the zero
// time), a duration back from now ("90m", "24h", "30d"), a date
// ("2026-12-01"), a minute ("2026-12-01T15:04") or an RFC 3339 time.
// Dates and times without a zone are read in now's location. Upper
// bounds are exclusive, so a date as an upper bound (end) reads as the
// start of the next day: the filter keeps that whole day.
func Parse(s string, end bool, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	d, err := ParseDuration(s)
	if err == nil {
		return now.Add(-d), nil
	}
	if nd := (*notDurationError)(nil); !errors.As(err, &nd) {
		return time.Time{}, err
	}
	for _, layout := range layouts {
		t, err := time.ParseInLocation(layout, s, now.Location())
		if err != nil {
			continue
		}
		if end && layout == dateLayout {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration back from now (90m, 24h, 30d) nor a date (2026-12-01, 2026-12-01T15:04 or RFC 3339)", s)
}
