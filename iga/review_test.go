package iga_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
)

// The helpers of the governance-workflow tests (reviews, alerts, campaigns,
// hygiene) are prefixed gov.

// govClock is a registry clock a test moves by hand.
type govClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *govClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *govClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// govPeople: two owners, an auditor, and a holder who is neither.
var govPeople = []iga.Person{
	{ID: "alice@example.com", Name: "Alice", Roles: []string{"owner"}, Status: iga.PersonActive},
	{ID: "bob@example.com", Name: "Bob", Roles: []string{"owner"}, Status: iga.PersonActive},
	{ID: "dave@example.com", Name: "Dave", Roles: []string{"auditor"}, Status: iga.PersonActive},
	{ID: "erin@example.com", Name: "Erin", Roles: nil, Status: iga.PersonActive},
}

// govBreakglass is a break-glass account owned by alice that erin and
// alice may open on web-01.
func govBreakglass() iga.Identity {
	return iga.Identity{ID: "bg-oncall", Kind: iga.KindBreakGlass, State: iga.StateActive, Owner: "alice@example.com",
		Holders:      []string{"erin@example.com", "alice@example.com"},
		Entitlements: []iga.Entitlement{{Target: "web-01", Login: "root", Actions: []iga.Action{iga.ActionShell}}},
		Certification: &iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com",
			At: admNow.AddDate(0, 0, -1), Until: admNow.AddDate(0, 2, 0)}}
}

// govAlerts collects what Oversight raises.
type govAlerts struct {
	mu  sync.Mutex
	got []iga.Alert
}

func (a *govAlerts) add(al iga.Alert) { a.mu.Lock(); a.got = append(a.got, al); a.mu.Unlock() }

func (a *govAlerts) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, al := range a.got {
		out = append(out, al.Kind+" "+al.Grant)
	}
	return out
}

// govSetup is a seeded registry on s with a movable clock and an oversight
// that collects alerts.
func govSetup(t *testing.T, s iga.Store) (*iga.Registry, *iga.Oversight, *govClock, *govAlerts) {
	t.Helper()
	admSeed(t, s, govPeople, []iga.Identity{govBreakglass()}, nil)
	clock := &govClock{t: admNow}
	reg := admRegistry(s, nil)
	reg.Now = clock.Now
	alerts := &govAlerts{}
	return reg, &iga.Oversight{Registry: reg, ReviewWithin: 72 * time.Hour, Alert: alerts.add}, clock, alerts
}

func govOpen(t *testing.T, reg *iga.Registry, by string) iga.Grant {
	t.Helper()
	g, err := reg.OpenGrant(context.Background(), iga.GrantRequest{Identity: "bg-oncall", Target: "web-01", By: by,
		Reason: "database outage INC-42", Ticket: "INC-42", For: 30 * time.Minute})
	require.NoError(t, err, "open grant")
	return g
}

func govSweep(t *testing.T, o *iga.Oversight) iga.SweepResult {
	t.Helper()
	res, err := o.Sweep(context.Background())
	require.NoError(t, err, "sweep")
	return res
}

// TestBreakglassAlertOnce: opening a grant raises one alert, however many
// sweeps and processes see it.
func TestBreakglassAlertOnce(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		reg, o, _, alerts := govSetup(t, s)
		g := govOpen(t, reg, "erin@example.com")
		other := &iga.Oversight{Registry: reg, Alert: alerts.add} // a second serve replica

		assert.Equal(t, 1, govSweep(t, o).Opened, "first sweep")
		assert.Equal(t, 0, govSweep(t, o).Opened, "second sweep")
		assert.Equal(t, 0, govSweep(t, other).Opened, "another process")
		require.Equal(t, []string{"breakglass_opened " + g.ID}, alerts.kinds())
		al := alerts.got[0]
		assert.Equal(t, "erin@example.com", al.OpenedBy)
		assert.Equal(t, "INC-42", al.Ticket)
		assert.Equal(t, g.ExpiresAt, *al.Until)
	})
}

// TestReviewAssignment: the review goes to the owner, never to the opener.
func TestReviewAssignment(t *testing.T) {
	for _, tc := range []struct {
		name, opener, wantAssigned string
		ownerLeft                  bool
	}{
		{"a holder opened it: the owner reviews", "erin@example.com", "alice@example.com", false},
		{"the owner opened it: any auditor but the owner", "alice@example.com", "", false},
		{"the owner left meanwhile: any auditor", "erin@example.com", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admEachDriver(t, func(t *testing.T, s iga.Store) {
				reg, o, clock, _ := govSetup(t, s)
				g := govOpen(t, reg, tc.opener)
				if tc.ownerLeft {
					_, err := reg.OffboardPerson(context.Background(), "alice@example.com", "hr", nil)
					require.NoError(t, err)
				}
				assert.Equal(t, 0, govSweep(t, o).ReviewsOpened, "an open grant has no review yet")
				clock.Add(10 * time.Minute)
				_, err := reg.CloseGrant(context.Background(), g.ID, tc.opener)
				require.NoError(t, err)

				assert.Equal(t, 1, govSweep(t, o).ReviewsOpened)
				assert.Equal(t, 0, govSweep(t, o).ReviewsOpened, "one review per grant")
				rvs, err := s.(iga.ReviewReader).Reviews(context.Background())
				require.NoError(t, err)
				require.Len(t, rvs, 1)
				rv := rvs[0]
				assert.Equal(t, g.ID, rv.Grant)
				assert.Equalf(t, tc.wantAssigned, rv.AssignedTo, "got assignee %q, want %q", rv.AssignedTo, tc.wantAssigned)
				assert.Equal(t, clock.Now().Add(72*time.Hour), rv.DueAt, "due review_within after the grant closed")
			})
		})
	}
}

// TestReviewCompletion: the opener is refused, so is a bystander; the
// assignee or an auditor completes.
func TestReviewCompletion(t *testing.T) {
	for _, tc := range []struct {
		name, opener, by, outcome, note string
		wantErr                         string
	}{
		{"opener refused", "erin@example.com", "erin@example.com", iga.OutcomeLegitimate, "fine", "dual control"},
		{"owner opened, owner refused", "alice@example.com", "alice@example.com", iga.OutcomeLegitimate, "fine", "dual control"},
		{"bystander refused", "erin@example.com", "bob@example.com", iga.OutcomeLegitimate, "fine", "neither the assigned reviewer nor an auditor"},
		{"unknown outcome", "erin@example.com", "alice@example.com", "fine", "fine", `outcome "fine"`},
		{"note required", "erin@example.com", "alice@example.com", iga.OutcomeMisuse, " ", "a note is required"},
		{"owner completes", "erin@example.com", "alice@example.com", iga.OutcomeLegitimate, "restarted the database", ""},
		{"auditor completes", "alice@example.com", "dave@example.com", iga.OutcomeDrill, "quarterly drill", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admEachDriver(t, func(t *testing.T, s iga.Store) {
				ctx := context.Background()
				reg, o, _, _ := govSetup(t, s)
				g := govOpen(t, reg, tc.opener)
				_, err := reg.CloseGrant(ctx, g.ID, "")
				require.NoError(t, err)
				govSweep(t, o)
				id := "rv-" + g.ID[len("bg-"):]

				rv, err := reg.CompleteReview(ctx, iga.ReviewCompletion{ID: id, By: tc.by, Outcome: tc.outcome, Note: tc.note})
				if tc.wantErr != "" {
					require.Error(t, err)
					assert.True(t, errors.Is(err, iga.ErrRefused), "got %v, want ErrRefused", err)
					assert.Contains(t, err.Error(), tc.wantErr)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, tc.by, rv.CompletedBy)
				stored, err := s.(iga.ReviewReader).Review(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, tc.outcome, stored.Outcome)
				assert.False(t, stored.Pending())
				_, err = reg.CompleteReview(ctx, iga.ReviewCompletion{ID: id, By: tc.by, Outcome: tc.outcome, Note: tc.note})
				assert.ErrorContains(t, err, "was completed by", "a second completion")
			})
		})
	}
}

// TestReviewOverdue: past its due time a pending review is counted and
// alerted once; completing it clears the count.
func TestReviewOverdue(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		ctx := context.Background()
		reg, o, clock, alerts := govSetup(t, s)
		g := govOpen(t, reg, "erin@example.com")
		clock.Add(31 * time.Minute) // the grant expires on its own
		res := govSweep(t, o)
		assert.Equal(t, iga.SweepResult{Opened: 0, ReviewsOpened: 1}, res, "the sweep after expiry")

		clock.Add(72*time.Hour - 2*time.Minute) // due 72h after the grant expired, a minute ago
		assert.Equal(t, 0, govSweep(t, o).Overdue, "one minute before due")
		clock.Add(time.Minute)
		res = govSweep(t, o)
		assert.Equal(t, 1, res.Overdue)
		assert.Equal(t, 1, res.OverdueNew)
		res = govSweep(t, o)
		assert.Equal(t, 1, res.Overdue, "still overdue")
		assert.Equal(t, 0, res.OverdueNew, "alerted once")
		assert.Contains(t, alerts.kinds(), "review_overdue "+g.ID)

		_, err := reg.CompleteReview(ctx, iga.ReviewCompletion{ID: "rv-" + g.ID[3:], By: "alice@example.com",
			Outcome: iga.OutcomeLegitimate, Note: "late but fine"})
		require.NoError(t, err)
		assert.Equal(t, 0, govSweep(t, o).Overdue, "after completion")
	})
}

// TestGrantExpiryEndsLiveSession: the watcher ends a break-glass session
// when its grant runs out, without anyone closing it.
func TestGrantExpiryEndsLiveSession(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		ctx := context.Background()
		reg, _, clock, _ := govSetup(t, s)
		govOpen(t, reg, "erin@example.com")
		req := iga.Request{Identity: "bg-oncall", Target: "web-01", Action: iga.ActionShell}
		d, err := reg.Decide(ctx, req)
		require.NoError(t, err)
		require.True(t, d.Allow, "got reasons %v, want allow", d.Reasons)
		assert.NotEmpty(t, d.Grant, "the session is flagged with its grant")

		sess := govWatch(t, reg, req, d)
		clock.Add(31 * time.Minute)
		govEnded(t, sess, iga.ReasonBreakglassGrantExpired)
	})
}

// govWatch starts a session watcher rechecking every 100ms and registers
// one live session in it.
func govWatch(t *testing.T, reg *iga.Registry, req iga.Request, d iga.Decision) *proxy.Session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	live := &proxy.Live{Gate: reg, Recheck: 100 * time.Millisecond}
	go live.Watch(ctx)
	return live.Begin(ctx, "ssh", req, d, time.Now())
}

// govEnded waits for the watcher to end sess and checks the reason.
func govEnded(t *testing.T, sess *proxy.Session, code string) {
	t.Helper()
	select {
	case <-sess.Context().Done():
		assert.ErrorContains(t, context.Cause(sess.Context()), code)
	case <-time.After(5 * time.Second):
		t.Fatalf("session still live 5s after the change; want it ended with %s", code)
	}
}
