package iga

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Audit event types of refusals the admission rules did not make.
const (
	// loginFailedEventType: a client proved no credential for the identity
	// it named (unknown identity, a key or token not bound to it, a
	// malformed login).
	loginFailedEventType = "login_failed"
	// refusalEventType: an authenticated client asked for something the
	// bastion does not offer or does not allow (remote forwarding, agent
	// forwarding, a forward to another host, an scp command line that is
	// not a file transfer).
	refusalEventType = "refusal"
)

// Refusal is a refusal made outside Decide: a failed login, or a request
// the bastion turned down on its own. RecordRefusal writes it to the audit
// trail.
type Refusal struct {
	// Login is true for a failed login: no credential was proven.
	Login    bool
	Protocol string // ssh, postgres, mysql
	// Identity and Target are as the client named them; either may be
	// unknown to the registry.
	Identity string
	Target   string
	Action   Action
	Source   netip.Addr
	// Asked names what was asked, never a secret: "publickey SHA256:…",
	// "tcpip-forward 0.0.0.0:8080", "exec scp -f …".
	Asked   string
	Reasons []Reason
	// Session is the id of the session the request was made in, when
	// there is one (an SSH connection that logged in); a failed login has
	// none.
	Session string
}

// Rate limits of refusal audit events. A flood of failed logins must not
// fill the database: each source gets refusalBurst events per
// refusalWindow, and all sources together refusalGlobalBurst; the rest are
// counted, and the next event written from that source says how many were
// left out. Metrics (OnRefusal) see every refusal.
const (
	refusalWindow      = time.Minute
	refusalBurst       = 10
	refusalGlobalBurst = 300
	// refusalSources bounds the sources tracked in one window; past it,
	// only the global limit applies.
	refusalSources = 10000
)

// refusalLimiter is a fixed-window counter per source and overall.
type refusalLimiter struct {
	mu      sync.Mutex
	start   time.Time
	total   int
	written map[netip.Addr]int
	dropped map[netip.Addr]int // this window and carried over until written
}

// admit counts one refusal from source at now. It returns whether to write
// it, and how many earlier ones from source were left out.
func (l *refusalLimiter) admit(source netip.Addr, now time.Time) (write bool, leftOut int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written == nil || now.Sub(l.start) >= refusalWindow {
		l.start, l.total, l.written = now, 0, map[netip.Addr]int{}
		if l.dropped == nil || len(l.dropped) > refusalSources {
			l.dropped = map[netip.Addr]int{}
		}
	}
	tracked := len(l.written) < refusalSources || l.written[source] > 0
	if l.total >= refusalGlobalBurst || (tracked && l.written[source] >= refusalBurst) {
		if tracked {
			l.dropped[source]++
		}
		return false, 0
	}
	l.total++
	if tracked {
		l.written[source]++
	}
	leftOut = l.dropped[source]
	delete(l.dropped, source)
	return true, leftOut
}

// refusalInit guards the lazy creation of a Registry's refusal limiter
// (a Registry is configured by its fields, with no constructor).
var refusalInit sync.Mutex

func (r *Registry) refusalLimiter() *refusalLimiter {
	refusalInit.Lock()
	defer refusalInit.Unlock()
	if r.refusals == nil {
		r.refusals = &refusalLimiter{}
	}
	return r.refusals
}

// RecordRefusal writes a refusal to the audit trail, within the rate
// limits above, and passes every refusal to OnRefusal. An error reports
// only that the store could not be written.
func (r *Registry) RecordRefusal(ctx context.Context, f Refusal) error {
	if r.OnRefusal != nil {
		r.OnRefusal(f)
	}
	now := r.now()
	write, leftOut := r.refusalLimiter().admit(f.Source, now)
	if !write {
		return nil
	}
	e := refusalEvent(f, now, leftOut)
	if err := r.Store.Update(ctx, func(tx Tx) error { return tx.AppendAudit(ctx, e) }); err != nil {
		return fmt.Errorf("record %s refusal for %s: %w", f.Protocol, f.Identity, err)
	}
	return nil
}

// refusalEvent is the audit event of a refusal.
func refusalEvent(f Refusal, now time.Time, leftOut int) AuditEvent {
	e := AuditEvent{Time: now, Type: refusalEventType, Actor: auditActorBastion, Identity: f.Identity,
		Target: f.Target, Action: f.Action, Reasons: f.Reasons}
	if f.Login {
		e.Type = loginFailedEventType
	}
	if f.Source.IsValid() {
		e.Source = f.Source.Unmap().String()
	}
	detail := []string{"protocol " + f.Protocol}
	if f.Asked != "" {
		detail = append(detail, "asked "+AuditQuote(f.Asked))
	}
	if f.Session != "" {
		detail = append(detail, "session "+f.Session)
	}
	if leftOut > 0 {
		detail = append(detail, fmt.Sprintf("%d earlier refusals from %s were not written (rate limit: %d a minute per source)",
			leftOut, e.Source, refusalBurst))
	}
	e.Detail = strings.Join(detail, "; ")
	return e
}
