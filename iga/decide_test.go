package iga_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// The helpers of the admission and credential tests are prefixed adm so
// they stay apart from the other test files of package iga_test.

// admNow is the registry clock in every admission test.
var admNow = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// admEachDriver runs fn as one subtest per storage driver, each with a
// fresh, empty store: SQLite in a temp dir and a sandbox PostgreSQL.
func admEachDriver(t *testing.T, fn func(t *testing.T, s iga.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, admSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, admPostgres(t)) })
}

func admSQLite(t testing.TB) iga.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "registry.db")})
	require.NoError(t, err, "open sqlite registry")
	t.Cleanup(func() { s.Close() })
	return s
}

func admPostgres(t testing.TB) iga.Store {
	t.Helper()
	pg := sandbox.PostgresT(t)
	require.NoError(t, pg.CreateDatabase(context.Background(), "registry"), "create registry database")
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "postgres", DSN: pg.DSN("registry")})
	require.NoError(t, err, "open postgres registry")
	t.Cleanup(func() { s.Close() })
	return s
}

// admTargets is the operator config the registries of these tests see.
var admTargets = map[string]iga.Target{
	"web-01":     {Name: "web-01", Kind: "ssh", Environment: "prod"},
	"db":         {Name: "db", Kind: "postgres"},
	"staging-01": {Name: "staging-01", Kind: "ssh", Environment: "staging"},
}

// admRegistry is a Registry on s with the test clock and targets; it
// collects what OnDecision sees.
func admRegistry(s iga.Store, seen *[]iga.Decision) *iga.Registry {
	return &iga.Registry{
		Store:   s,
		Targets: func(name string) (iga.Target, bool) { t, ok := admTargets[name]; return t, ok },
		Now:     func() time.Time { return admNow },
		OnDecision: func(d iga.Decision) {
			if seen != nil {
				*seen = append(*seen, d)
			}
		},
	}
}

// admKey is a fresh SSH key: the public key and its authorized_keys line.
func admKey(t testing.TB) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	key, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return key, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " test"
}

// admPeople are the people every admission test registry holds.
var admPeople = []iga.Person{
	{ID: "alice@example.com", Name: "Alice Ng", Roles: []string{"owner"}, Status: iga.PersonActive},
	{ID: "bob@example.com", Name: "Bob Li", Roles: []string{"owner"}, Status: iga.PersonActive},
	{ID: "carol@example.com", Name: "Carol Offboarded", Roles: []string{"owner"}, Status: iga.PersonInactive},
}

// admSeed writes people, identities (with their latest certification) and
// grants through Store.Update, as apply and certify would.
func admSeed(t testing.TB, s iga.Store, people []iga.Person, ids []iga.Identity, grants []iga.Grant) {
	t.Helper()
	err := s.Update(context.Background(), func(tx iga.Tx) error {
		for _, p := range people {
			if err := tx.PutPerson(context.Background(), p); err != nil {
				return err
			}
		}
		for _, id := range ids {
			if err := admPutIdentity(tx, id); err != nil {
				return err
			}
		}
		for _, g := range grants {
			if err := tx.PutGrant(context.Background(), g); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err, "seed registry")
}

func admPutIdentity(tx iga.Tx, id iga.Identity) error {
	if err := tx.PutIdentity(context.Background(), id); err != nil {
		return err
	}
	if id.Certification == nil {
		return nil
	}
	return tx.AddCertification(context.Background(), id.ID, *id.Certification)
}

// admPassing is an identity that passes every rule for admRequest.
func admPassing(id, keyLine string) iga.Identity {
	return iga.Identity{
		ID: id, Kind: iga.KindServiceAccount, State: iga.StateActive, Owner: "alice@example.com", Environment: "prod",
		Credentials: iga.Credentials{SSHKeys: []iga.SSHKey{{Key: keyLine, Expires: admNow.AddDate(1, 0, 0)}}},
		Entitlements: []iga.Entitlement{{Target: "web-01", Login: "backup", Actions: []iga.Action{iga.ActionExec, iga.ActionSFTP},
			Expires: admNow.AddDate(0, 1, 0), From: []string{"10.1.0.0/16"}}},
		Certification: &iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com",
			At: admNow.AddDate(0, -1, 0), Until: admNow.AddDate(0, 2, 0)},
	}
}

// admCase is one admission case: how the passing identity and request are
// broken, and the reason codes the decision must carry, in rule order.
type admCase struct {
	name   string
	edit   func(id *iga.Identity, grants *[]iga.Grant)
	req    func(r *iga.Request)
	want   []string
	says   string // part of the messages a client must see; empty: not checked
	wantGr bool   // the decision names the break-glass grant
}

// admKeys are the keys of the admission cases.
type admKeys struct {
	own, other, shared, stranger   ssh.PublicKey
	ownLine, otherLine, sharedLine string
}

func admCases(k admKeys) []admCase {
	noEdit := func(*iga.Identity, *[]iga.Grant) {}
	noReq := func(*iga.Request) {}
	present := func(key ssh.PublicKey) func(*iga.Request) {
		return func(r *iga.Request) { r.Credential = &iga.Credential{SSHKey: key} }
	}
	suspend := func(id *iga.Identity, _ *[]iga.Grant) { id.State = iga.StateSuspended }
	breakglass := func(g iga.Grant) func(*iga.Identity, *[]iga.Grant) {
		return func(id *iga.Identity, grants *[]iga.Grant) {
			id.Kind, id.Holders = iga.KindBreakGlass, []string{"bob@example.com"}
			if g.ID != "" {
				g.ID, g.Identity = g.ID+"-"+id.ID, id.ID
				*grants = append(*grants, g)
			}
		}
	}
	return []admCase{
		{name: "allowed", edit: noEdit, req: noReq},
		{name: "unknown identity stands alone", edit: noEdit, req: func(r *iga.Request) { r.Identity, r.Target = "nobody", "nowhere" },
			want: []string{iga.ReasonUnknownIdentity}, says: `no identity named "nobody"`},
		{name: "unknown target stands alone", edit: suspend, req: func(r *iga.Request) { r.Target = "nowhere" },
			want: []string{iga.ReasonUnknownTarget}, says: `no target named "nowhere"`},
		{name: "suspended", edit: suspend, req: noReq, want: []string{iga.ReasonNotActive}, says: "is suspended"},
		{name: "deprovisioned", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.State = iga.StateDeprovisioned }, req: noReq,
			want: []string{iga.ReasonNotActive}, says: "deprovisioned"},
		{name: "human", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.Kind = iga.KindHuman }, req: noReq,
			want: []string{iga.ReasonKindNotAdmitted}},
		{name: "no owner voids the certification too", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.Owner = "" }, req: noReq,
			want: []string{iga.ReasonNoOwner, iga.ReasonNotCertified}},
		{name: "owner offboarded", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Owner, id.Certification.By = "carol@example.com", "carol@example.com"
		}, req: noReq, want: []string{iga.ReasonOwnerInactive}, says: "carol@example.com is no longer active"},
		{name: "owner is not a person", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Owner, id.Certification.By = "ghost@example.com", "ghost@example.com"
		}, req: noReq, want: []string{iga.ReasonOwnerInactive}},
		{name: "never certified", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.Certification = nil }, req: noReq,
			want: []string{iga.ReasonNotCertified}, says: "never been certified"},
		{name: "mover: certified by the former owner", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.Owner = "bob@example.com" },
			req: noReq, want: []string{iga.ReasonNotCertified}, says: "certified by alice@example.com, who is not its current owner"},
		{name: "certification expired", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Certification.Until = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
		}, req: noReq, want: []string{iga.ReasonCertificationExpired}, says: "certified until 2026-10-01; ask its owner alice@example.com to recertify"},
		{name: "certification revoked", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Certification = &iga.Certification{Decision: iga.DecisionRevoke, By: "alice@example.com", At: admNow.AddDate(0, 0, -1)}
		}, req: noReq, want: []string{iga.ReasonCertificationRevoked}},
		{name: "no entitlement on the target", edit: noEdit, req: func(r *iga.Request) { r.Target = "db" },
			want: []string{iga.ReasonNoEntitlement}},
		{name: "entitlement expired", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Entitlements[0].Expires = admNow.AddDate(0, 0, -3)
		}, req: noReq, want: []string{iga.ReasonEntitlementExpired}, says: "expired on 2026-11-25"},
		{name: "action not entitled", edit: noEdit, req: func(r *iga.Request) { r.Action = iga.ActionShell },
			want: []string{iga.ReasonActionNotEntitled}},
		{name: "source not allowed", edit: noEdit, req: func(r *iga.Request) { r.Source = netip.MustParseAddr("203.0.113.9") },
			want: []string{iga.ReasonSourceNotAllowed}},
		{name: "source not known skips the from check", edit: noEdit, req: func(r *iga.Request) { r.Source = netip.Addr{} }},
		{name: "environment mismatch", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.Environment = "staging" }, req: noReq,
			want: []string{iga.ReasonEnvironmentMismatch}},
		{name: "unregistered key", edit: noEdit, req: present(k.stranger), want: []string{iga.ReasonCredentialInvalid}},
		{name: "key of another identity", edit: noEdit, req: present(k.other), want: []string{iga.ReasonCredentialInvalid}},
		{name: "shared key bound to this identity too", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Credentials.SSHKeys = append(id.Credentials.SSHKeys, iga.SSHKey{Key: k.sharedLine})
		}, req: present(k.shared)},
		{name: "key expired", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Credentials.SSHKeys[0].Expires = admNow.Add(-time.Hour)
		}, req: noReq, want: []string{iga.ReasonCredentialExpired}},
		{name: "no credential presented skips rule 6", edit: func(id *iga.Identity, _ *[]iga.Grant) {
			id.Credentials.SSHKeys[0].Expires = admNow.Add(-time.Hour)
		}, req: func(r *iga.Request) { r.Credential = nil }},
		{name: "break-glass without grant", edit: breakglass(iga.Grant{}), req: noReq, want: []string{iga.ReasonBreakglassNoGrant}},
		{name: "break-glass grant expired", edit: breakglass(iga.Grant{ID: "g-old", Target: "web-01", OpenedBy: "bob@example.com",
			Reason: "disk full on web-01", OpenedAt: admNow.Add(-2 * time.Hour), ExpiresAt: admNow.Add(-time.Hour)}),
			req: noReq, want: []string{iga.ReasonBreakglassGrantExpired}},
		{name: "break-glass grant closed", edit: breakglass(iga.Grant{ID: "g-closed", Target: "web-01", OpenedBy: "bob@example.com",
			Reason: "disk full on web-01", OpenedAt: admNow.Add(-time.Hour), ExpiresAt: admNow.Add(time.Hour), ClosedAt: admNow.Add(-time.Minute)}),
			req: noReq, want: []string{iga.ReasonBreakglassGrantExpired}},
		{name: "break-glass with open grant", edit: breakglass(iga.Grant{ID: "g-open", Target: "web-01", OpenedBy: "bob@example.com",
			Reason: "disk full on web-01", OpenedAt: admNow.Add(-time.Minute), ExpiresAt: admNow.Add(time.Hour)}),
			req: noReq, wantGr: true},
		{name: "suspended and certification expired", edit: func(id *iga.Identity, g *[]iga.Grant) {
			suspend(id, g)
			id.Certification.Until = admNow.AddDate(0, 0, -1)
		}, req: noReq, want: []string{iga.ReasonNotActive, iga.ReasonCertificationExpired}},
		{name: "human from a foreign network", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.Kind = iga.KindHuman },
			req:  func(r *iga.Request) { r.Source = netip.MustParseAddr("203.0.113.9") },
			want: []string{iga.ReasonKindNotAdmitted, iga.ReasonSourceNotAllowed}},
		{name: "wrong environment and wrong key", edit: func(id *iga.Identity, _ *[]iga.Grant) { id.Environment = "staging" },
			req: present(k.stranger), want: []string{iga.ReasonEnvironmentMismatch, iga.ReasonCredentialInvalid}},
		{name: "offboarded owner, lapsed entitlement, break-glass without grant", edit: func(id *iga.Identity, g *[]iga.Grant) {
			breakglass(iga.Grant{})(id, g)
			id.Owner, id.Certification.By = "carol@example.com", "carol@example.com"
			id.Entitlements[0].Expires = admNow.AddDate(0, 0, -1)
		}, req: noReq, want: []string{iga.ReasonOwnerInactive, iga.ReasonEntitlementExpired, iga.ReasonBreakglassNoGrant}},
	}
}

func TestDecideAdmission(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		var k admKeys
		k.own, k.ownLine = admKey(t)
		k.other, k.otherLine = admKey(t)
		k.shared, k.sharedLine = admKey(t)
		k.stranger, _ = admKey(t)
		other := admPassing("svc-other", k.otherLine)
		other.Credentials.SSHKeys = append(other.Credentials.SSHKeys, iga.SSHKey{Key: k.sharedLine})
		admSeed(t, s, admPeople, []iga.Identity{other}, nil)
		var seen []iga.Decision
		reg := admRegistry(s, &seen)
		for i, tc := range admCases(k) {
			t.Run(tc.name, func(t *testing.T) {
				id, grants := admPassing(fmt.Sprintf("svc-%02d", i), k.ownLine), []iga.Grant{}
				tc.edit(&id, &grants)
				admSeed(t, s, nil, []iga.Identity{id}, grants)
				req := iga.Request{Identity: id.ID, Target: "web-01", Action: iga.ActionExec,
					Source: netip.MustParseAddr("10.1.2.3"), Credential: &iga.Credential{SSHKey: k.own}}
				tc.req(&req)
				d, err := reg.Decide(context.Background(), req)
				require.NoError(t, err)
				admCheckDecision(t, tc, req, d)
				admCheckAudit(t, s, req, d)
				require.NotEmpty(t, seen, "OnDecision was not called")
				assert.Equal(t, d, seen[len(seen)-1], "OnDecision got another decision than Decide returned")
			})
		}
	})
}

// admCheckDecision asserts what the caller of Decide sees.
func admCheckDecision(t *testing.T, tc admCase, req iga.Request, d iga.Decision) {
	t.Helper()
	codes := admCodes(d.Reasons)
	assert.Equal(t, tc.want, codes, "got reasons %v, want %v", d.Reasons, tc.want)
	assert.Equal(t, len(tc.want) == 0, d.Allow, "got allow %v, want %v", d.Allow, len(tc.want) == 0)
	assert.NotNil(t, d.Reasons, "reasons must be [] not null")
	for _, r := range d.Reasons {
		assert.NotEmpty(t, r.Message, "reason %s has no message", r.Code)
		assert.NotContains(t, r.Message, "\n", "reason %s message is not one line", r.Code)
	}
	if tc.says != "" {
		assert.Contains(t, admMessages(d.Reasons), tc.says)
	}
	err := d.Err()
	if len(tc.want) == 0 {
		assert.NoError(t, err)
		assert.Equal(t, "backup", d.Login, "got login %q, want the entitled login backup", d.Login)
	} else {
		var denied *iga.Denied
		require.True(t, errors.As(err, &denied), "got %v, want *iga.Denied", err)
		assert.Equal(t, tc.want, denied.Codes())
		assert.True(t, strings.HasPrefix(err.Error(), "access denied ("+strings.Join(tc.want, ", ")+"): "), "got %q", err)
	}
	if tc.wantGr {
		assert.Equal(t, "g-open-"+req.Identity, d.Grant, "got grant %q", d.Grant)
	} else {
		assert.Empty(t, d.Grant)
	}
}

// admCheckAudit asserts the decision is the latest audit event of its identity.
func admCheckAudit(t *testing.T, s iga.Store, req iga.Request, d iga.Decision) {
	t.Helper()
	events, err := s.Audit(context.Background(), iga.AuditFilter{Identity: req.Identity, Type: "decision"})
	require.NoError(t, err)
	require.NotEmpty(t, events, "no audit event for the decision")
	e := events[len(events)-1]
	assert.Equal(t, d.Allow, e.Allow, "audited allow")
	assert.Equal(t, admCodes(d.Reasons), admCodes(e.Reasons), "audited reasons")
	assert.Equal(t, req.Target, e.Target)
	assert.Equal(t, req.Action, e.Action)
	assert.Equal(t, d.Source, e.Source)
	assert.True(t, admNow.Equal(e.Time), "got audit time %s, want %s", e.Time, admNow)
}

func admCodes(rs []iga.Reason) []string {
	codes := []string{}
	for _, r := range rs {
		codes = append(codes, r.Code)
	}
	if len(codes) == 0 {
		return nil
	}
	return codes
}

func admMessages(rs []iga.Reason) string {
	var ms []string
	for _, r := range rs {
		ms = append(ms, r.Message)
	}
	return strings.Join(ms, "; ")
}

func TestDecideDryRunAndLastUse(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		_, line := admKey(t)
		admSeed(t, s, admPeople, []iga.Identity{admPassing("svc-backup", line)}, nil)
		reg := admRegistry(s, nil)
		req := iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec, DryRun: true}

		d, err := reg.Decide(context.Background(), req)
		require.NoError(t, err)
		require.True(t, d.Allow, "got reasons %v, want allow", d.Reasons)
		id, err := s.Identity(context.Background(), "svc-backup")
		require.NoError(t, err)
		assert.True(t, id.LastUsed.IsZero(), "a dry-run check counted as a use: last used %s", id.LastUsed)
		checks, err := s.Audit(context.Background(), iga.AuditFilter{Identity: "svc-backup", Type: "check"})
		require.NoError(t, err)
		assert.Len(t, checks, 1, "got %d check events, want 1", len(checks))

		req.DryRun = false
		_, err = reg.Decide(context.Background(), req)
		require.NoError(t, err)
		id, err = s.Identity(context.Background(), "svc-backup")
		require.NoError(t, err)
		assert.True(t, admNow.Equal(id.LastUsed), "got last used %s, want %s", id.LastUsed, admNow)
	})
}

func TestDecisionJSON(t *testing.T) {
	s := admSQLite(t)
	_, line := admKey(t)
	admSeed(t, s, admPeople, []iga.Identity{admPassing("svc-backup", line)}, nil)
	reg := admRegistry(s, nil)
	tests := []struct {
		name   string
		action iga.Action
		source string
		want   string
	}{
		{"allowed", iga.ActionExec, "::ffff:10.1.2.3", `"allow":true,"reasons":[],"identity":"svc-backup","kind":"service-account","owner":"alice@example.com","target":"web-01","action":"exec","login":"backup","source":"10.1.2.3"`},
		{"denied", iga.ActionShell, "10.1.2.3", `"allow":false,"reasons":[{"code":"action_not_entitled","message":"svc-backup may not shell on web-01 (entitled: exec, sftp); ask its owner alice@example.com to extend its entitlement"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := reg.Decide(context.Background(), iga.Request{Identity: "svc-backup", Target: "web-01", Action: tt.action,
				Source: netip.MustParseAddr(tt.source)})
			require.NoError(t, err)
			out, err := json.Marshal(d)
			require.NoError(t, err)
			assert.Contains(t, string(out), tt.want)
			assert.Contains(t, string(out), `"time":"2026-11-28T10:00:00Z"`)
		})
	}
}

func TestDecideStoreFailureRefuses(t *testing.T) {
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "registry.db")})
	require.NoError(t, err, "open sqlite registry")
	var seen []iga.Decision
	reg := admRegistry(s, &seen)
	require.NoError(t, s.Close())
	d, err := reg.Decide(context.Background(), iga.Request{Identity: "svc-backup", Target: "web-01", Action: iga.ActionExec})
	require.Error(t, err, "a registry that cannot be read must not decide")
	assert.False(t, d.Allow)
	assert.Contains(t, err.Error(), "decide svc-backup on web-01")
	assert.Empty(t, seen, "OnDecision saw a decision that was never made")
}
