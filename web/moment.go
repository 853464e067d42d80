package web

import (
	"math"
	"strconv"
	"time"
)

// momentSlack is how far from a search hit's moment a timeline event may
// be and still be marked as the hit: a hit's time and its event's are the
// same instant, give or take how the index rounds it.
const momentSlack = 2 * time.Second

// markMoment reads ?t= (seconds into the session, as a search hit links
// it), keeps it for the player to seek to, and marks the timeline event
// nearest to that moment. A t that is not a number in range is ignored.
func (d *sessionDetail) markMoment(t string) {
	d.Hit = -1
	sec, err := strconv.ParseFloat(t, 64)
	if err != nil || sec < 0 || math.IsInf(sec, 0) || math.IsNaN(sec) || sec > 1e9 {
		return
	}
	d.At = strconv.FormatFloat(sec, 'f', 3, 64)
	at := d.Session.StartedAt.Add(time.Duration(sec * float64(time.Second)))
	best := momentSlack + 1
	for i, ev := range d.Timeline {
		if dist := ev.Time.Sub(at).Abs(); dist <= momentSlack && dist < best {
			d.Hit, best = i, dist
		}
	}
}
