package iga_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// govHygieneIdentities is a registry with one identity per finding and
// one clean identity that must produce none.
func govHygieneIdentities(t *testing.T) []iga.Identity {
	ident := func(id string, edit func(*iga.Identity)) iga.Identity {
		_, line := admKey(t)
		i := admPassing(id, line)
		i.Credentials.SSHKeys[0].Expires = admNow.AddDate(0, 1, 0)
		i.Entitlements[0].From = nil
		if edit != nil {
			edit(&i)
		}
		return i
	}
	_, shared := admKey(t)
	return []iga.Identity{
		ident("svc-clean", nil),
		ident("svc-dormant", nil),
		ident("svc-orphan", func(i *iga.Identity) { i.Owner = "" }),
		ident("svc-uncertified", func(i *iga.Identity) { i.Certification = nil }),
		ident("svc-expired-cert", func(i *iga.Identity) { i.Certification.Until = admNow.AddDate(0, 0, -1) }),
		ident("svc-overgranted", nil),
		ident("svc-forever-key", func(i *iga.Identity) { i.Credentials.SSHKeys[0].Expires = time.Time{} }),
		ident("svc-far-key", func(i *iga.Identity) { i.Credentials.SSHKeys[0].Expires = admNow.AddDate(3, 0, 0) }),
		ident("svc-old-binding", nil),
		ident("svc-roaming", nil),
		ident("svc-shared-1", func(i *iga.Identity) { i.Credentials.SSHKeys[0].Key = shared }),
		ident("svc-shared-2", func(i *iga.Identity) { i.Credentials.SSHKeys[0].Key = shared }),
		ident("ci-shell", func(i *iga.Identity) {
			i.Kind = iga.KindPipeline
			i.Entitlements[0].Actions = []iga.Action{iga.ActionShell}
		}),
		ident("svc-suspended", func(i *iga.Identity) { i.State = iga.StateSuspended; i.Owner = "" }),
	}
}

// govHistory writes the session index rows and audit events the findings
// come from: every identity but svc-dormant used every entitled action
// recently, except for what each case breaks.
func govHistory(t *testing.T, s iga.Store, ids []iga.Identity) {
	ctx := context.Background()
	idx := s.(*sqlstore.Store)
	var evs []iga.AuditEvent
	for n, id := range ids {
		started := admNow.AddDate(0, 0, -1)
		if id.ID == "svc-dormant" {
			started = admNow.AddDate(0, 0, -100)
		}
		require.NoError(t, idx.PutSession(ctx, sqlstore.SessionRecord{ID: fmt.Sprintf("s%02d", n), Identity: id.ID, Target: "web-01",
			Protocol: "ssh", State: "stored", StartedAt: started, EndedAt: started.Add(time.Minute)}))
		for _, a := range id.Entitlements[0].Actions {
			if id.ID == "svc-overgranted" && a == iga.ActionSFTP {
				continue
			}
			evs = append(evs, govDecision(id.ID, a, "10.1.0.1", started))
		}
	}
	for i := range 4 {
		evs = append(evs, govDecision("svc-roaming", iga.ActionExec, fmt.Sprintf("192.0.2.%d", i+1), admNow.AddDate(0, 0, -2)))
	}
	evs = append(evs, iga.AuditEvent{Time: admNow.AddDate(0, 0, -400), Type: "apply", Actor: "cli", Identity: "svc-old-binding",
		Detail: "created: kind service-account, state active, owner alice@example.com"})
	require.NoError(t, s.Update(ctx, func(tx iga.Tx) error {
		for _, e := range evs {
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}))
}

func govDecision(identity string, a iga.Action, source string, at time.Time) iga.AuditEvent {
	return iga.AuditEvent{Time: at, Type: "decision", Actor: "sallyport", Identity: identity, Target: "web-01", Action: a,
		Source: source, Allow: true, Detail: "login backup; credential ssh key SHA256:" + identity}
}

// TestHygieneReport: each finding kind comes from a crafted registry and
// history, tagged with its OWASP NHI id, and the clean identity has none.
func TestHygieneReport(t *testing.T) {
	admEachDriver(t, func(t *testing.T, s iga.Store) {
		ids := govHygieneIdentities(t)
		admSeed(t, s, govPeople, ids, nil)
		govHistory(t, s, ids)
		reg := admRegistry(s, nil)
		findings, err := reg.Hygiene(context.Background(), s.(iga.SessionHistory), iga.HygieneOptions{MaxKeyAge: 365 * 24 * time.Hour, MaxSources: 3})
		require.NoError(t, err)
		got := map[string]iga.Finding{}
		for _, f := range findings {
			got[f.NHI+" "+f.Kind+" "+f.Identity] = f
		}
		for _, tc := range []struct{ nhi, kind, identity, says string }{
			{iga.NHI1, iga.FindingDormant, "svc-dormant", "last session 2026-08-20"},
			{iga.NHI1, iga.FindingNoOwner, "svc-orphan", "no owner"},
			{iga.NHI1, iga.FindingNotCertified, "svc-uncertified", "never certified"},
			{iga.NHI1, iga.FindingNotCertified, "svc-expired-cert", "expired on 2026-11-27"},
			{iga.NHI5, iga.FindingUnusedEntitlement, "svc-overgranted", "sftp on web-01 not used in 90d"},
			{iga.NHI7, iga.FindingLongLivedKey, "svc-forever-key", "never expires"},
			{iga.NHI7, iga.FindingLongLivedKey, "svc-far-key", "valid until 2029-11-28"},
			{iga.NHI7, iga.FindingOldBinding, "svc-old-binding", "unchanged since 2025-10-24"},
			{iga.NHI9, iga.FindingReusedCredential, "svc-roaming", "from 5 source addresses"},
			{iga.NHI9, iga.FindingSharedKey, "svc-shared-1", "also bound to svc-shared-2"},
			{iga.NHI9, iga.FindingSharedKey, "svc-shared-2", "also bound to svc-shared-1"},
			{iga.NHI10, iga.FindingInteractiveShell, "ci-shell", "pipeline ci-shell opened 1 interactive shell"},
		} {
			t.Run(tc.kind+" "+tc.identity, func(t *testing.T) {
				f, ok := got[tc.nhi+" "+tc.kind+" "+tc.identity]
				require.Truef(t, ok, "no %s %s finding for %s; got %v", tc.nhi, tc.kind, tc.identity, findings)
				assert.Contains(t, f.Detail, tc.says)
			})
		}
		for _, f := range findings {
			assert.NotEqualf(t, "svc-clean", f.Identity, "got finding %v for the clean identity, want none", f)
			assert.NotEqualf(t, "svc-suspended", f.Identity, "got finding %v for a suspended identity, want none", f)
		}
	})
}

// TestHygieneExecCommands: exec without commands by an identity that ran
// only a few commands is NHI5 exec_unrestricted, pointing at iga suggest;
// one that ran many, or already has commands, is not; an allowed
// interpreter reading stdin is NHI5 stdin_interpreter.
func TestHygieneExecCommands(t *testing.T) {
	s := admSQLite(t)
	ident := func(id string, commands ...string) iga.Identity {
		_, line := admKey(t)
		i := admPassing(id, line)
		i.Credentials.SSHKeys[0].Expires = admNow.AddDate(0, 1, 0)
		i.Entitlements[0].Actions, i.Entitlements[0].From, i.Entitlements[0].Commands = []iga.Action{iga.ActionExec}, nil, commands
		return i
	}
	ids := []iga.Identity{ident("svc-few"), ident("svc-many"), ident("svc-listed", "/usr/bin/uptime"), ident("svc-interp", "bash -s")}
	admSeed(t, s, govPeople, ids, nil)
	ctx := context.Background()
	observed := map[string][]iga.Observation{}
	for n, id := range ids {
		require.NoError(t, s.(*sqlstore.Store).PutSession(ctx, sqlstore.SessionRecord{ID: fmt.Sprintf("s%d", n), Identity: id.ID,
			Target: "web-01", Protocol: "ssh", State: "stored", StartedAt: admNow.AddDate(0, 0, -1)}))
		ran := 2
		if id.ID == "svc-many" {
			ran = 6
		}
		for i := range ran {
			observed[id.ID] = append(observed[id.ID], iga.Observation{Target: "web-01", Login: "backup", Action: iga.ActionExec, Command: fmt.Sprintf("job %d", i)})
		}
	}
	reg := admRegistry(s, nil)
	findings, err := reg.Hygiene(ctx, s.(iga.SessionHistory), iga.HygieneOptions{Observed: observed})
	require.NoError(t, err)
	var got []string
	for _, f := range findings {
		if f.Kind == iga.FindingExecUnrestricted || f.Kind == iga.FindingStdinInterpreter {
			got = append(got, f.NHI+" "+f.Kind+" "+f.Identity+": "+f.Detail)
		}
	}
	assert.Equal(t, []string{
		"NHI5 exec_unrestricted svc-few: may exec any command on web-01 as backup but ran 2 distinct command(s) in 90d; restrict it to them: sallyport iga suggest svc-few --days 90",
		`NHI5 stdin_interpreter svc-interp: command "bash -s" on web-01 as backup runs bash, which reads its program from stdin: it runs whatever the client sends (the recording keeps stdin); allow the script itself instead`,
	}, got)

	findings, err = reg.Hygiene(ctx, s.(iga.SessionHistory), iga.HygieneOptions{})
	require.NoError(t, err)
	for _, f := range findings {
		assert.NotEqual(t, iga.FindingExecUnrestricted, f.Kind, "without observations the check is skipped")
	}
}
