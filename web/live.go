package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// Watcher taps a live session this replica runs (recorder.Recorder). The
// console only reads: nothing it does reaches the session.
type Watcher interface {
	Watch(id string) (events <-chan recorder.Watched, stop func(), ok bool)
}

// RecordingWatcher follows a live session's recording in the shared store
// (recorder.StoreTail), for the sessions another replica runs: records
// arrive as the recording is uploaded, a flush interval and a poll behind
// the session. Nothing it does reaches the session.
type RecordingWatcher interface {
	WatchRecording(ctx context.Context, id string, started time.Time) (events <-chan recorder.Watched, stop func())
	// Lag is how far, at most, the records trail the session when the
	// store is quick; the page says it.
	Lag() time.Duration
}

// AuditWatch is the audit event type of watching a session live.
const AuditWatch = "session_watch"

const (
	// liveWriteTimeout bounds one write to a watcher's browser: one that
	// stops reading is dropped rather than holding the tap.
	liveWriteTimeout = 10 * time.Second
	// liveHeartbeat is how often an idle stream sends a comment, so a
	// browser that went away is noticed and proxies keep the stream open.
	liveHeartbeat = 15 * time.Second
	// liveBatch is how many records one write carries at most.
	liveBatch = 256
	// liveAskEvery is how often a view of a session another replica runs
	// asks again for it to be flushed faster (AskFlush), and liveAskFor how
	// long each ask lasts: a view that goes without a word lapses.
	liveAskEvery = 10 * time.Second
	liveAskFor   = 30 * time.Second
	// liveAskTimeout bounds one ask, a write to the registry.
	liveAskTimeout = 5 * time.Second
)

// liveView is what the session page says about watching a live session.
type liveView struct {
	Watchable bool   // the page opens the stream
	Elsewhere string // the replica that runs it, when it is another
	// Lag is how far the view of a session another replica runs trails
	// it, as LiveStore says ("500ms"); empty otherwise.
	Lag string
	// Faster: that replica is asked to flush the recording faster while
	// it is watched (AskFlush).
	Faster bool
}

// liveOf tells the page of a live session where it can be watched: here,
// from this replica's recorder or, for a session of another replica, from
// its recording in the store; or on the other replica's console.
func (s *Server) liveOf(rec sqlstore.SessionRecord) *liveView {
	if !rec.EndedAt.IsZero() || (s.Live == nil && s.LiveStore == nil) || !recorder.State(rec.State).InTransit() {
		return nil // ended, or with a replica that is gone (the state says so)
	}
	switch {
	case !s.runsElsewhere(rec) && s.Live != nil:
		return &liveView{Watchable: true}
	case !s.runsElsewhere(rec):
		return nil
	case s.LiveStore != nil:
		return &liveView{Watchable: true, Elsewhere: rec.Replica, Faster: s.AskFlush != nil, Lag: s.LiveStore.Lag().String()}
	}
	return &liveView{Elsewhere: rec.Replica}
}

// runsElsewhere reports whether another replica runs rec's session.
func (s *Server) runsElsewhere(rec sqlstore.SessionRecord) bool {
	return rec.Replica != "" && s.Replica != "" && rec.Replica != s.Replica
}

// liveStream sends a live session's records to the browser as Server-Sent
// Events until it ends or the browser goes. Watching is audited first;
// an unaudited watch is refused.
func (s *Server) liveStream(w http.ResponseWriter, r *http.Request, p *principal) {
	rec, err := s.visibleSession(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	events, stop, err := s.startWatch(r.Context(), p, rec)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil { // the browser learns the stream is open before the first record
		return
	}
	s.pump(r.Context(), rc, w, events)
}

// startWatch taps rec's session, on this replica or (another replica's
// session) in the store, and records who watches.
func (s *Server) startWatch(ctx context.Context, p *principal, rec sqlstore.SessionRecord) (<-chan recorder.Watched, func(), error) {
	fromStore := s.runsElsewhere(rec) && s.LiveStore != nil
	if (s.Live == nil && !fromStore) || s.Audit == nil {
		return nil, nil, fmt.Errorf("%w: live view", errUnavailable)
	}
	if !rec.EndedAt.IsZero() {
		return nil, nil, fmt.Errorf("%w: session %s ended at %s; replay its recording", errConflict, rec.ID, rec.EndedAt.UTC().Format(time.RFC3339))
	}
	select {
	case <-s.liveEnded():
		return nil, nil, fmt.Errorf("%w: the console is shutting down", errUnavailable)
	default:
	}
	detail := fmt.Sprintf("watched session %s live from the console", rec.ID)
	var events <-chan recorder.Watched
	var stop func()
	if fromStore {
		events, stop = s.LiveStore.WatchRecording(ctx, rec.ID, rec.StartedAt)
		detail += fmt.Sprintf(" (replica %s runs it: its recording in the store)", rec.Replica)
	} else {
		var ok bool
		if events, stop, ok = s.Live.Watch(rec.ID); !ok {
			return nil, nil, fmt.Errorf("%w: session %s is not running on this replica%s", errConflict, rec.ID, elsewhere(rec.Replica))
		}
	}
	ev := iga.AuditEvent{Time: s.now(), Type: AuditWatch, Actor: p.ID, Identity: rec.Identity, Target: rec.Target, Detail: detail}
	if err := s.Audit(ctx, ev); err != nil {
		stop()
		return nil, nil, fmt.Errorf("record watching session %s: %w", rec.ID, err)
	}
	s.logger().Info("session watched", "session", rec.ID, "by", p.ID)
	if fromStore && s.AskFlush != nil {
		stop = s.askFlush(ctx, rec.ID, stop)
	}
	return events, stop, nil
}

// askFlush asks, now and every liveAskEvery until the returned stop is
// called, for session id to be flushed faster while it is watched. A
// failed ask is logged: the view goes on, trailing the session by the
// flush interval.
func (s *Server) askFlush(ctx context.Context, id string, stop func()) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(liveAskEvery)
		defer tick.Stop()
		for {
			actx, acancel := context.WithTimeout(ctx, liveAskTimeout)
			err := s.AskFlush(actx, id, time.Now().Add(liveAskFor)) // the registry's clock, not a test's: replicas compare it with theirs
			acancel()
			if err != nil && ctx.Err() == nil {
				s.logger().Warn("live view: asking for the session's recording to be flushed faster failed; the view trails it by the flush interval", "session", id, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		stop()
	}
}

func elsewhere(replica string) string {
	if replica == "" {
		return ""
	}
	return " (replica " + replica + " runs it: watch it on that replica's console)"
}

// liveEnded is closed when the server shuts down.
func (s *Server) liveEnded() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.liveEnd == nil {
		s.liveEnd = make(chan struct{})
	}
	return s.liveEnd
}

// endLive ends every live stream, so that Shutdown does not wait for the
// sessions being watched to end.
func (s *Server) endLive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.liveEnd == nil {
		s.liveEnd = make(chan struct{})
	}
	select {
	case <-s.liveEnd:
	default:
		close(s.liveEnd)
	}
}

// pump writes records as they come, a batch per write, until the session
// ends, the browser goes, a write stalls or the server shuts down.
func (s *Server) pump(ctx context.Context, rc *http.ResponseController, w http.ResponseWriter, events <-chan recorder.Watched) {
	enc := &sseEncoder{}
	beat := time.NewTicker(liveHeartbeat)
	defer beat.Stop()
	ended := s.liveEnded()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ended:
			return
		case <-beat.C:
			enc.buf.WriteString(": still watching\n\n")
		case ev, ok := <-events:
			if !ok {
				return
			}
			enc.add(ev)
			for n := 1; n < liveBatch && len(events) > 0; n++ {
				enc.add(<-events)
			}
		}
		if err := enc.flush(rc, w); err != nil {
			return
		}
	}
}

// sseEncoder turns records into Server-Sent Events: term, output, resize,
// exec, record, lost, end and failed, each with one JSON object as data.
type sseEncoder struct {
	buf   strings.Builder
	carry map[string][]byte // an unfinished UTF-8 sequence per stream
}

func (e *sseEncoder) add(ev recorder.Watched) {
	switch ev.Kind {
	case recorder.WatchTerminal, recorder.WatchResize:
		name := map[string]string{recorder.WatchTerminal: "term", recorder.WatchResize: "resize"}[ev.Kind]
		e.event(name, map[string]int{"channel": ev.Channel, "cols": ev.Cols, "rows": ev.Rows})
	case recorder.WatchOutput:
		e.event("output", map[string]any{"channel": ev.Channel, "text": e.text(fmt.Sprint("o", ev.Channel), ev.Data)})
	case recorder.WatchData:
		e.event("exec", map[string]any{"channel": ev.Channel, "stream": ev.Stream,
			"text": e.text(fmt.Sprint(ev.Stream, ev.Channel), ev.Data)})
	case recorder.WatchEvent:
		e.raw("record", ev.Data)
	case recorder.WatchLost:
		e.event("lost", map[string]int64{"lost": ev.Lost})
	case recorder.WatchEnd:
		e.raw("end", ev.Data)
	case recorder.WatchFailed:
		e.event("failed", map[string]string{"error": string(ev.Data)})
	}
}

// text decodes b as UTF-8, holding back a sequence cut at its end for the
// next write of the same stream; invalid bytes become U+FFFD.
func (e *sseEncoder) text(stream string, b []byte) string {
	if e.carry == nil {
		e.carry = map[string][]byte{}
	}
	b = append(e.carry[stream], b...)
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	e.carry[stream] = append([]byte(nil), b[cut:]...)
	return strings.ToValidUTF8(string(b[:cut]), "\uFFFD")
}

func (e *sseEncoder) event(name string, v any) {
	b, _ := json.Marshal(v) // maps of strings and numbers always encode
	e.raw(name, b)
}

// raw writes one event whose data is a JSON line (no newline inside).
func (e *sseEncoder) raw(name string, data []byte) {
	e.buf.WriteString("event: " + name + "\ndata: ")
	e.buf.Write(bytes.TrimSpace(data))
	e.buf.WriteString("\n\n")
}

func (e *sseEncoder) flush(rc *http.ResponseController, w http.ResponseWriter) error {
	if e.buf.Len() == 0 {
		return nil
	}
	_ = rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
	if _, err := w.Write([]byte(e.buf.String())); err != nil {
		return fmt.Errorf("send live records: %w", err)
	}
	e.buf.Reset()
	return rc.Flush()
}
