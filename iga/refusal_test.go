package iga_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestDecideConnect: the login itself is admitted when the identity may do
// something on the target from the source, and the decision lists what;
// an identity that may do nothing there is refused with every reason.
func TestDecideConnect(t *testing.T) {
	s := admSQLite(t)
	_, line := admKey(t)
	pass := admPassing("svc-pass", line)
	uncertified := admPassing("svc-uncert", line)
	uncertified.Certification = nil
	admSeed(t, s, admPeople, []iga.Identity{pass, uncertified}, nil)
	reg := admRegistry(s, nil)
	src := netip.MustParseAddr("10.1.2.3")
	for _, tc := range []struct {
		name, identity, target string
		source                 netip.Addr
		want                   []string
		entitled               []iga.Action
	}{
		{name: "entitled", identity: "svc-pass", target: "web-01", source: src, entitled: []iga.Action{iga.ActionExec, iga.ActionSFTP}},
		{name: "not certified", identity: "svc-uncert", target: "web-01", source: src, want: []string{iga.ReasonNotCertified}},
		{name: "no entitlement on target", identity: "svc-pass", target: "staging-01", source: src,
			want: []string{iga.ReasonNoEntitlement, iga.ReasonEnvironmentMismatch}},
		{name: "wrong source", identity: "svc-pass", target: "web-01", source: netip.MustParseAddr("192.0.2.1"),
			want: []string{iga.ReasonSourceNotAllowed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := reg.Decide(context.Background(), iga.Request{Identity: tc.identity, Target: tc.target,
				Action: iga.ActionConnect, Source: tc.source})
			require.NoError(t, err)
			if tc.want == nil {
				assert.True(t, d.Allow, "got reasons %v, want allowed", d.Reasons)
				assert.Equal(t, tc.entitled, d.Entitled, "entitled actions")
				return
			}
			assert.False(t, d.Allow)
			assert.Equal(t, tc.want, d.Err().(*iga.Denied).Codes())
			assert.Empty(t, d.Entitled, "a refused connect lists no actions")
		})
	}
	events, err := s.Audit(context.Background(), iga.AuditFilter{Type: "decision"})
	require.NoError(t, err)
	assert.Len(t, events, 4, "every connect decision is an audit event")
}

// TestRecordRefusal: a failed login is an audit event naming what was
// tried, and a flood from one source is cut to the per-source limit, the
// next written event saying how many were left out; metrics see them all.
func TestRecordRefusal(t *testing.T) {
	s := admSQLite(t)
	now := admNow
	seen := 0
	reg := &iga.Registry{Store: s, Now: func() time.Time { return now }, OnRefusal: func(iga.Refusal) { seen++ }}
	ctx := context.Background()
	flood := netip.MustParseAddr("203.0.113.9")
	for i := range 25 {
		require.NoError(t, reg.RecordRefusal(ctx, iga.Refusal{Login: true, Protocol: "ssh", Identity: fmt.Sprintf("guess-%d", i),
			Target: "web-01", Source: flood, Asked: "publickey SHA256:abc",
			Reasons: []iga.Reason{{Code: iga.ReasonUnknownIdentity, Message: "no such identity"}}}))
	}
	other := netip.MustParseAddr("198.51.100.7")
	require.NoError(t, reg.RecordRefusal(ctx, iga.Refusal{Protocol: "ssh", Identity: "svc-a", Target: "web-01", Source: other,
		Action: iga.ActionForward, Asked: "tcpip-forward 0.0.0.0:8080", Session: "6b16fd9cd3b659ada8acb890",
		Reasons: []iga.Reason{{Code: iga.ReasonNotOffered, Message: "remote forwarding is not offered"}}}))
	assert.Equal(t, 26, seen, "OnRefusal sees every refusal")

	logins, err := s.Audit(ctx, iga.AuditFilter{Type: "login_failed"})
	require.NoError(t, err)
	require.Len(t, logins, 10, "one source gets 10 events a minute")
	assert.Equal(t, "203.0.113.9", logins[0].Source)
	assert.Equal(t, "guess-0", logins[0].Identity)
	assert.Contains(t, logins[0].Detail, `asked "publickey SHA256:abc"`)
	assert.False(t, logins[0].Allow)
	refusals, err := s.Audit(ctx, iga.AuditFilter{Type: "refusal"})
	require.NoError(t, err)
	require.Len(t, refusals, 1, "another source is not held back by the flood")
	assert.Equal(t, iga.ActionForward, refusals[0].Action)
	assert.Contains(t, refusals[0].Detail, "tcpip-forward 0.0.0.0:8080")
	assert.Equal(t, "6b16fd9cd3b659ada8acb890", iga.AuditDetailFields(refusals[0].Detail)["session"], "the refusal names its session")
	assert.NotContains(t, logins[0].Detail, "session", "a failed login has no session")

	now = now.Add(61 * time.Second)
	require.NoError(t, reg.RecordRefusal(ctx, iga.Refusal{Login: true, Protocol: "postgres", Identity: "guess-x", Source: flood,
		Reasons: []iga.Reason{{Code: iga.ReasonCredentialInvalid, Message: "wrong token"}}}))
	logins, err = s.Audit(ctx, iga.AuditFilter{Type: "login_failed"})
	require.NoError(t, err)
	require.Len(t, logins, 11, "a new minute writes again")
	last := logins[len(logins)-1]
	assert.True(t, strings.Contains(last.Detail, "15 earlier refusals from 203.0.113.9 were not written"),
		"got detail %q, want the count of left-out refusals", last.Detail)
}
