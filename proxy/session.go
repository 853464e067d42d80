// Package proxy holds what every protocol proxy shares: the table of live
// sessions (their ids come from internal/sessionid) with their kill switch,
// and the watcher that ends a session when an operator kills it (from any
// process) or when the registry would no longer admit it. The watcher
// polls, and acts at once when woken (serve wakes it when the registry
// announces a change). The protocols live in proxy/ssh, proxy/postgres and
// proxy/mysql; none of them imports a sibling.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/internal/sessionid"
)

// Gate is the subset of iga.Registry that the proxies use.
type Gate interface {
	// Authenticate checks a presented credential against the identity the
	// login names; it returns nil or an *iga.Denied.
	Authenticate(ctx context.Context, identity string, c iga.Credential) error
	// Decide runs admission and records the decision.
	Decide(ctx context.Context, req iga.Request) (iga.Decision, error)
}

// Rechecker re-evaluates admission for a live session without writing an
// audit event when nothing changed. A Gate that has it is used by the
// watcher; one without it is asked through Decide.
type Rechecker interface {
	Recheck(ctx context.Context, req iga.Request) (iga.Decision, error)
}

// Index is the persistent session index the watcher consults for kill
// requests made by other processes (`sallyport sessions kill`) and for
// watches by a console of another replica, which follows the recording in
// the shared store that the session's recorder then fills faster.
type Index interface {
	// SessionRequests returns, of the given live session ids, those an
	// operator asked to kill, with the reason, and those being watched,
	// with when the watch lapses.
	SessionRequests(ctx context.Context, ids []string) (kills map[string]string, watched map[string]time.Time, err error)
}

// Flusher is the recorder, as the watcher uses it for watched sessions.
type Flusher interface {
	// FlushFasterUntil has the recording of live session id reach the
	// store faster until t; it reports whether id is recorded here.
	FlushFasterUntil(id string, t time.Time) bool
}

// ErrKilled is the cause of a session context cancelled by Kill.
var ErrKilled = errors.New("session killed")

// ErrMaxSession is the cause of a session context ended by the server's
// MaxSession.
var ErrMaxSession = errors.New("session reached its maximum duration")

// EndReason is what the client and the recording are told about a session
// whose context ended with cause.
func EndReason(cause error) string {
	switch {
	case errors.Is(cause, ErrKilled):
		return cause.Error()
	case errors.Is(cause, ErrMaxSession):
		return ErrMaxSession.Error()
	}
	return "bastion shutting down"
}

// Session is one live proxied session.
type Session struct {
	ID       string
	Protocol string // ssh, postgres, mysql
	Request  iga.Request
	Decision iga.Decision
	Started  time.Time

	ctx    context.Context
	cancel context.CancelCauseFunc
}

// Context is cancelled when the session must end; context.Cause says why.
func (s *Session) Context() context.Context { return s.ctx }

const (
	// defaultKillPoll is how often the watcher asks the index for kill
	// requests: `sessions kill` must end a session within 1 s.
	defaultKillPoll = 250 * time.Millisecond
	// defaultRecheck is how often live sessions are re-admitted: a registry
	// change that refuses an identity must end its sessions within 5 s.
	defaultRecheck = 2 * time.Second
	// recheckTimeout bounds one round of re-admission.
	recheckTimeout = 2 * time.Second
)

// Live is the table of this process's live sessions. The zero value is
// usable; Watch needs Gate (and Index for kills from other processes).
type Live struct {
	// Gate re-admits live sessions. Nil: sessions are never re-checked.
	Gate Gate
	// Index delivers kill requests made elsewhere. Nil: only Kill in this
	// process ends sessions early.
	Index Index
	// Recordings flushes the recordings of the sessions Index says are
	// watched faster. Nil: watches are ignored.
	Recordings Flusher
	// KillPoll is how often Index is polled. Zero: 250ms.
	KillPoll time.Duration
	// Recheck is how often live sessions are re-admitted. Zero: 2s.
	Recheck time.Duration
	// Logger receives session ends. Nil: slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	sessions map[string]*Session
	wake     chan struct{} // one pending wake-up; made on first use
}

// Begin registers a session and returns it with a context that ends when
// parent ends or the session is killed. Its id is req.Session, the id the
// proxy minted before asking the registry (so the decision's audit event
// names it), or a new one when req has none.
func (l *Live) Begin(parent context.Context, protocol string, req iga.Request, d iga.Decision, now time.Time) *Session {
	ctx, cancel := context.WithCancelCause(parent)
	id := req.Session
	if id == "" {
		id = sessionid.New(now)
	}
	s := &Session{ID: id, Protocol: protocol, Request: req, Decision: d, Started: now, ctx: ctx, cancel: cancel}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sessions == nil {
		l.sessions = map[string]*Session{}
	}
	l.sessions[s.ID] = s
	return s
}

// End removes a session from the table and releases its context.
func (l *Live) End(s *Session) {
	l.mu.Lock()
	delete(l.sessions, s.ID)
	l.mu.Unlock()
	s.cancel(context.Canceled)
}

// Kill ends a live session of this process; it reports whether one was found.
func (l *Live) Kill(id, reason string) bool {
	l.mu.Lock()
	s := l.sessions[id]
	l.mu.Unlock()
	if s == nil {
		return false
	}
	l.logger().Warn("session killed", "session", id, "identity", s.Request.Identity, "reason", reason)
	s.cancel(fmt.Errorf("%w: %s", ErrKilled, reason))
	return true
}

// Snapshot returns the live sessions.
func (l *Live) Snapshot() []*Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Session, 0, len(l.sessions))
	for _, s := range l.sessions {
		out = append(out, s)
	}
	return out
}

// liveIDs returns the ids of the live sessions.
func (l *Live) liveIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.sessions))
	for id := range l.sessions {
		ids = append(ids, id)
	}
	return ids
}

// Wake makes the watcher look for kill requests and re-admit the live
// sessions now instead of at its next tick: a change that may end a
// session was made somewhere. It never blocks; wake-ups that come while
// one is pending merge into it.
func (l *Live) Wake() {
	select {
	case l.wakeups() <- struct{}{}:
	default:
	}
}

func (l *Live) wakeups() chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == nil {
		l.wake = make(chan struct{}, 1)
	}
	return l.wake
}

// Watch polls for kill requests and re-admits live sessions until ctx
// ends, and does both at once when woken by Wake. The polls stay as the
// safety net: a wake-up lost with its connection costs at most a tick.
func (l *Live) Watch(ctx context.Context) error {
	kill := time.NewTicker(orDefault(l.KillPoll, defaultKillPoll))
	defer kill.Stop()
	recheck := time.NewTicker(orDefault(l.Recheck, defaultRecheck))
	defer recheck.Stop()
	wake := l.wakeups()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			l.pollKills(ctx)
			l.recheckAll(ctx)
		case <-kill.C:
			l.pollKills(ctx)
		case <-recheck.C:
			l.recheckAll(ctx)
		}
	}
}

func (l *Live) pollKills(ctx context.Context) {
	if l.Index == nil {
		return
	}
	ids := l.liveIDs()
	if len(ids) == 0 {
		return
	}
	kills, watched, err := l.Index.SessionRequests(ctx, ids)
	if err != nil {
		l.logger().Warn("poll kill requests", "err", err)
		return
	}
	for id, reason := range kills {
		l.Kill(id, reason)
	}
	if l.Recordings == nil {
		return
	}
	for id, until := range watched {
		l.Recordings.FlushFasterUntil(id, until)
	}
}

func (l *Live) recheckAll(ctx context.Context) {
	if l.Gate == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	defer cancel()
	// Sessions asking the same thing share one decision: a pipeline's 200
	// connections cost one registry read per round, not 200.
	type verdict struct {
		d   iga.Decision
		err error
	}
	seen := map[iga.Request]verdict{}
	for _, s := range l.Snapshot() {
		key := s.Request
		key.Credential = nil // the credential was checked at connect; its expiry does not end a session
		key.Session = ""     // so the sessions share it; a refusal that ends several names none
		v, ok := seen[key]
		if !ok {
			v.d, v.err = l.recheck(ctx, key)
			seen[key] = v
		}
		if v.err != nil {
			// Fail open for live sessions on a registry hiccup; new sessions
			// still fail closed at admission.
			l.logger().Warn("re-admit live session", "session", s.ID, "err", v.err)
			continue
		}
		if !v.d.Allow {
			l.Kill(s.ID, "no longer admitted: "+v.d.Err().Error())
		}
	}
}

func (l *Live) recheck(ctx context.Context, req iga.Request) (iga.Decision, error) {
	if rc, ok := l.Gate.(Rechecker); ok {
		return rc.Recheck(ctx, req)
	}
	return l.Gate.Decide(ctx, req)
}

func (l *Live) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
