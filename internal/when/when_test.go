package when

import (
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on a host without a zone database
)

// TestParse: every form a filter bound takes, as a lower and as an upper
// bound; a bare date as an upper bound keeps its whole day.
func TestParse(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 30, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		in         string
		start, end time.Time // as a lower bound, as an upper bound
		err        string
	}{
		{in: "", start: time.Time{}, end: time.Time{}},
		{in: "90m", start: now.Add(-90 * time.Minute), end: now.Add(-90 * time.Minute)},
		{in: "24h", start: now.Add(-24 * time.Hour), end: now.Add(-24 * time.Hour)},
		{in: "30d", start: now.AddDate(0, 0, -30), end: now.AddDate(0, 0, -30)},
		{in: " 1h30m ", start: now.Add(-90 * time.Minute), end: now.Add(-90 * time.Minute)},
		{in: "2026-12-01", start: day(1), end: day(2)},
		{in: "2026-12-31", start: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), end: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-12-01T15:04", start: day(1).Add(15*time.Hour + 4*time.Minute), end: day(1).Add(15*time.Hour + 4*time.Minute)},
		{in: "2026-12-01T15:04:05Z", start: day(1).Add(15*time.Hour + 4*time.Minute + 5*time.Second),
			end: day(1).Add(15*time.Hour + 4*time.Minute + 5*time.Second)},
		{in: "2026-12-01T15:04:05.5+02:00", start: day(1).Add(13*time.Hour + 4*time.Minute + 5500*time.Millisecond),
			end: day(1).Add(13*time.Hour + 4*time.Minute + 5500*time.Millisecond)},
		{in: "yesterday", err: `"yesterday" is neither a duration back from now (90m, 24h, 30d) nor a date`},
		{in: "2026-13-01", err: "is neither a duration"},
		{in: "2026-12-01 15:04", err: "is neither a duration"},
		{in: "-1h", err: `duration "-1h" is negative`},
		{in: "999999d", err: `duration "999999d" is out of range`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			for _, end := range []bool{false, true} {
				got, err := Parse(tc.in, end, now)
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) {
						t.Fatalf("Parse(%q, %v): got error %v, want one with %q", tc.in, end, err, tc.err)
					}
					continue
				}
				want := map[bool]time.Time{false: tc.start, true: tc.end}[end]
				if err != nil || !got.Equal(want) {
					t.Errorf("Parse(%q, %v) = %v, %v; want %v", tc.in, end, got, err, want)
				}
			}
		})
	}
}

// TestParseLocation: a date is a day where the caller is (now's
// location), through its end even on a day of 25 hours.
func TestParseLocation(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin: %v", err)
	}
	now := time.Date(2026, 12, 7, 18, 30, 0, 0, berlin)
	start, _ := Parse("2026-10-25", false, now)
	end, _ := Parse("2026-10-25", true, now)
	if want := time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC); !start.Equal(want) {
		t.Errorf("got start %v, want %v (midnight in Berlin, summer time)", start.UTC(), want)
	}
	if got := end.Sub(start); got != 25*time.Hour {
		t.Errorf("got a day of %v, want 25h (summer time ends that day)", got)
	}
}

// TestParseDuration: days and Go durations, as the config and the flags
// take them.
func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90d", 90 * 24 * time.Hour, ""},
		{"0d", 0, ""},
		{"15m", 15 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1.5d", 0, `duration "1.5d": want e.g. 90s, 15m, 1h or 90d`},
		{"d", 0, "want e.g."},
		{"-5m", 0, "is negative"},
		{"100001d", 0, "out of range"},
	} {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q): got error %v, want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParse: any input is read or refused with an error that quotes it;
// as an upper bound it reads the same, or a whole day later for a date.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "90m", "30d", "2026-12-01", "2026-12-01T15:04", "2026-12-01T15:04:05.999+05:30",
		"-1h", "999999999999999999999d", "2026-02-30", "1e3h", "\x00", "  24h  "} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 7, 18, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		start, err := Parse(s, false, now)
		end, endErr := Parse(s, true, now)
		if (err == nil) != (endErr == nil) {
			t.Fatalf("Parse(%q): as a lower bound err %v, as an upper bound err %v", s, err, endErr)
		}
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(strings.TrimSpace(s))) {
				t.Fatalf("Parse(%q): error %q does not name the input", s, err)
			}
			return
		}
		if d := end.Sub(start); d != 0 && d != 24*time.Hour {
			t.Fatalf("Parse(%q): upper bound %v is %v after the lower %v, want 0 or a day", s, end, d, start)
		}
		if strings.TrimSpace(s) == "" && !start.IsZero() {
			t.Fatalf("Parse(%q) = %v, want the zero time", s, start)
		}
	})
}
