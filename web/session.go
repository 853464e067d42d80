package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// maxTimeline caps the events a session page lists; the JSON download
	// has them all.
	maxTimeline = 1000
	// maxScannedTerminal is the largest terminal recording whose events the
	// page looks for: beyond it, reading the whole recording for a page is
	// too slow, and the JSON download has them.
	maxScannedTerminal = 16 << 20
	// maxExecText is how much of exec channels' streams a session page
	// shows as text; each stream's download has all of it.
	maxExecText = 256 << 10
)

// sessionDetail is what the session page and GET /api/v1/sessions/{id} show.
type sessionDetail struct {
	Session     sqlstore.SessionRecord `json:"session"`
	CertSerial  string                 `json:"cert_serial,omitempty"`
	Identity    *iga.Identity          `json:"-"`
	Entitlement *iga.Entitlement       `json:"entitlement,omitempty"`
	Integrity   *recorder.Report       `json:"integrity,omitempty"`
	Problem     string                 `json:"problem,omitempty"` // why the recording could not be read
	Timeline    []timelineEvent        `json:"timeline,omitempty"`
	Truncated   bool                   `json:"timeline_truncated,omitempty"`
	Terminal    bool                   `json:"terminal"`
	// Exec is the exec channels: commands, their stdin, stdout and stderr
	// as text (within maxExecText), exit status and per-stream totals.
	Exec        *recorder.ExecView `json:"exec,omitempty"`
	ExecProblem string             `json:"exec_problem,omitempty"` // why the exec channels could not be read
	// Live says where a running session can be watched; nil once ended.
	Live *liveView `json:"-"`
	// Hold is the legal hold on the recording; nil when none.
	Hold *sqlstore.RecordingHold `json:"legal_hold,omitempty"`
	// At is the moment a search hit opened the page at (?t=, seconds into
	// the session), "" without one; Hit is the timeline event marked there,
	// -1 for none.
	At  string `json:"-"`
	Hit int    `json:"-"`
	// hitStretch is the exec stretch (channel, stretch) marked there.
	hitStretch [2]int
}

// RecordingHolds is the optional ability of the session index to tell a
// recording's legal hold (sqlstore.Store has it).
type RecordingHolds interface {
	RecordingHold(ctx context.Context, id string) (sqlstore.RecordingHold, bool, error)
}

func (s *Server) sessionDetail(ctx context.Context, p *principal, id string) (sessionDetail, error) {
	rec, err := s.visibleSession(ctx, p, id)
	if err != nil {
		return sessionDetail{}, err
	}
	d := sessionDetail{Session: rec, Terminal: rec.Protocol == "ssh", Live: s.liveOf(rec)}
	s.addIdentity(ctx, &d)
	if hs, ok := s.Sessions.(RecordingHolds); ok {
		if h, held, err := hs.RecordingHold(ctx, rec.ID); err == nil && held {
			d.Hold = &h
		}
	}
	if rec.State == sqlstore.StateDeleted { // by retention: nothing left to read
		d.Terminal = false
		return d, nil
	}
	if s.Recordings == nil || rec.EndedAt.IsZero() {
		return d, nil
	}
	rep, err := s.Recordings.Verify(ctx, rec.ID, rec.StartedAt)
	if err != nil {
		d.Problem = "the recording could not be read: " + err.Error()
		return d, nil
	}
	rep.Pending(recorder.State(rec.State))
	d.Integrity = &rep
	s.readExec(ctx, &d)
	if !d.Terminal || rec.Bytes <= maxScannedTerminal {
		s.readTimeline(ctx, &d)
	}
	return d, nil
}

// addIdentity adds the identity's certification and the entitlement the
// session used, as the registry has them now.
func (s *Server) addIdentity(ctx context.Context, d *sessionDetail) {
	if s.Directory == nil {
		return
	}
	id, err := s.Directory.Identity(ctx, d.Session.Identity)
	if err != nil {
		return
	}
	d.Identity = &id
	for i, e := range id.Entitlements {
		if e.Target == d.Session.Target && e.Login == d.Session.Login {
			d.Entitlement = &id.Entitlements[i]
			break
		}
	}
}

// readExec reads an SSH session's exec channels, and whether it had a
// terminal at all: an exec-only session has no player.
func (s *Server) readExec(ctx context.Context, d *sessionDetail) {
	er, ok := s.Recordings.(ExecRecordings)
	if !ok || !d.Terminal {
		return
	}
	v, err := er.Exec(ctx, d.Session.ID, d.Session.StartedAt, maxExecText)
	if err != nil {
		d.ExecProblem = "the exec channels could not be read: " + err.Error()
		return
	}
	d.Terminal = v.Terminal
	if len(v.Channels) > 0 {
		d.Exec = &v
	}
}

// timelineEvent is an event of the timeline with, for a statement run in
// a transaction, the transaction's fate as its transaction event tells it.
type timelineEvent struct {
	recorder.Event
	// TxMark is "committed", "rolled back" or "transaction still open at
	// the end"; empty when the statement ran in no transaction or its fate
	// is not on the page.
	TxMark string `json:"tx_mark,omitempty"`
}

// timelineLine is the part of a JSON replay line the timeline looks at.
type timelineLine struct {
	Type    string               `json:"type"`
	Session recorder.SessionMeta `json:"session"`
}

// readTimeline streams the recording as JSON lines and keeps its events
// (queries, commands, transfers) and the credential serial. A line too
// long to hold comes with its long strings cut (recorder.LineReader).
func (s *Server) readTimeline(ctx context.Context, d *sessionDetail) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.Recordings.Events(ctx, d.Session.ID, d.Session.StartedAt, pw)) }()
	defer pr.Close()
	defer func() { markTransactions(d.Timeline, !d.Truncated) }()
	lr := recorder.NewLineReader(pr)
	for {
		line, err := lr.Next()
		if err != nil {
			return
		}
		var l timelineLine
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		switch l.Type {
		case "session":
			d.CertSerial = l.Session.CertSerial
		case "output", "input", "resize":
		case recorder.EventData:
			if d.Exec != nil {
				continue // the exec section shows the stretches themselves
			}
			fallthrough
		default:
			if len(d.Timeline) == maxTimeline {
				d.Truncated = true
				return
			}
			var ev recorder.Event
			if json.Unmarshal(line, &ev) == nil {
				d.Timeline = append(d.Timeline, timelineEvent{Event: ev})
			}
		}
	}
}

// markTransactions gives each statement of a transaction the fate the
// transaction event after it tells; at the end of a whole timeline, the
// statements of a transaction still open are marked so.
func markTransactions(tl []timelineEvent, whole bool) {
	open, ended := -1, false // the open transaction's first event; its last statement came
	mark := func(to int, fate string) {
		for i := open; i < to; i++ {
			if tl[i].Type == recorder.EventQuery {
				tl[i].TxMark = fate
			}
		}
		open, ended = -1, false
	}
	for i, ev := range tl {
		switch {
		case ev.Type == recorder.EventTransaction && open >= 0:
			mark(i, map[string]string{recorder.TxCommit: "committed", recorder.TxRollback: "rolled back"}[ev.Op])
		case ended: // no transaction event: the fate is not recorded
			open, ended = -1, false
		}
		if ev.Type != recorder.EventQuery {
			continue
		}
		inTx := ev.Tx == recorder.TxIn || ev.Tx == recorder.TxFailed
		if open < 0 && inTx {
			open = i
		}
		ended = open >= 0 && ev.Tx == recorder.TxIdle
	}
	if open >= 0 && whole && !ended {
		mark(len(tl), "transaction still open at the end")
	}
}

func (s *Server) sessionPage(w http.ResponseWriter, r *http.Request, p *principal) {
	d, err := s.sessionDetail(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	d.markMoment(r.URL.Query().Get("t"), r.URL.Query().Get("in"))
	s.render(w, r, p, http.StatusOK, "session.html", "Session "+d.Session.ID, d)
}

// recordingTimeout bounds one download: a 200 MB recording streams in far
// less, and a stalled client must not hold the store's reader for ever.
const recordingTimeout = 30 * time.Minute

// cast streams the terminal as asciicast v2 straight from the store: the
// server holds one chunk at a time, whatever the recording's size.
func (s *Server) cast(w http.ResponseWriter, r *http.Request, p *principal) {
	s.download(w, r, p, "application/x-asciicast", ".cast", s.recordingsCast)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request, p *principal) {
	s.download(w, r, p, "application/jsonl", ".jsonl", s.recordingsEvents)
}

// execStreamName is what an exec stream's name looks like, checked before
// it goes into a header.
var execStreamName = regexp.MustCompile(`^exec-[0-9]{1,9}\.(stdin|stdout|stderr)$`)

// execStream streams one exec stream's exact bytes straight from the store.
func (s *Server) execStream(w http.ResponseWriter, r *http.Request, p *principal) {
	er, ok := s.Recordings.(ExecRecordings)
	name := r.PathValue("name")
	if !ok || !execStreamName.MatchString(name) {
		s.fail(w, r, p, fmt.Errorf("%w: no exec stream %q", iga.ErrNotFound, name))
		return
	}
	s.download(w, r, p, "application/octet-stream", "."+name, func(ctx context.Context, rec sqlstore.SessionRecord, w io.Writer) error {
		return er.Stream(ctx, rec.ID, rec.StartedAt, name, w)
	})
}

func (s *Server) recordingsCast(ctx context.Context, rec sqlstore.SessionRecord, w io.Writer) error {
	return s.Recordings.Cast(ctx, rec.ID, rec.StartedAt, w)
}

func (s *Server) recordingsEvents(ctx context.Context, rec sqlstore.SessionRecord, w io.Writer) error {
	return s.Recordings.Events(ctx, rec.ID, rec.StartedAt, w)
}

type streamFunc func(ctx context.Context, rec sqlstore.SessionRecord, w io.Writer) error

func (s *Server) download(w http.ResponseWriter, r *http.Request, p *principal, ctype, ext string, stream streamFunc) {
	if s.Sessions == nil || s.Recordings == nil {
		s.fail(w, r, p, errUnavailable)
		return
	}
	// The request's context ends when the client goes away.
	ctx, cancel := context.WithTimeout(r.Context(), recordingTimeout)
	defer cancel()
	rec, err := s.visibleSession(ctx, p, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	cw := &countingWriter{w: w}
	w.Header().Set("Content-Type", ctype)
	if r.URL.Query().Has("download") {
		w.Header().Set("Content-Disposition", `attachment; filename="`+rec.ID+ext+`"`)
	}
	if err := stream(ctx, rec, cw); err != nil {
		if cw.n == 0 {
			s.fail(w, r, p, fmt.Errorf("%w: recording of session %s: %v", errNotRecorded, rec.ID, err))
			return
		}
		s.logger().Warn("recording download cut short", "session", rec.ID, "err", err)
	}
}

var errNotRecorded = fmt.Errorf("%w: no readable recording", iga.ErrNotFound)

// countingWriter tells whether anything was sent before an error, when a
// status can no longer be changed.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
