package web

import (
	"math"
	"strconv"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// momentSlack is how far from a search hit's moment a timeline event may
// be and still be marked as the hit: a hit's time and its event's are the
// same instant, give or take how the index rounds it.
const momentSlack = 2 * time.Second

// markMoment reads ?t= (seconds into the session, as a search hit links
// it), keeps it for the player to seek to, and marks what is there: for a
// hit in an exec stream (in stdin or output) the stretch of the stream,
// otherwise the timeline event nearest to that moment. A t that is not a
// number in range is ignored.
func (d *sessionDetail) markMoment(t, in string) {
	d.Hit, d.hitStretch = -1, [2]int{-1, -1}
	sec, err := strconv.ParseFloat(t, 64)
	if err != nil || sec < 0 || math.IsInf(sec, 0) || math.IsNaN(sec) || sec > 1e9 {
		return
	}
	d.At = strconv.FormatFloat(sec, 'f', 3, 64)
	at := d.Session.StartedAt.Add(time.Duration(sec * float64(time.Second)))
	if d.Exec != nil && (in == "stdin" || in == "output") {
		d.markStretch(at, in == "stdin")
		return
	}
	best := momentSlack + 1
	for i, ev := range d.Timeline {
		if dist := ev.Time.Sub(at).Abs(); dist <= momentSlack && dist < best {
			d.Hit, best = i, dist
		}
	}
}

// markStretch marks, in an exec session, the stretch of stdin (or of
// stdout and stderr) the moment falls in: the last one that started by
// then (give or take momentSlack).
func (d *sessionDetail) markStretch(at time.Time, stdin bool) {
	var last time.Time
	for ci, ch := range d.Exec.Channels {
		for si, st := range ch.Stretches {
			if (st.Stream == recorder.StreamStdin) != stdin {
				continue
			}
			if !st.Time.After(at.Add(momentSlack)) && !st.Time.Before(last) {
				d.hitStretch, last = [2]int{ci, si}, st.Time
			}
		}
	}
}

// HitStretch reports whether stretch si of exec channel ci is where the
// search hit that opened the page is.
func (d sessionDetail) HitStretch(ci, si int) bool {
	return d.At != "" && d.hitStretch == [2]int{ci, si}
}
