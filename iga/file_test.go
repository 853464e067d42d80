package iga_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

const registriesDir = "../testdata/registries"

func readRegistry(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(registriesDir, name))
	require.NoError(t, err)
	return data
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseFileExample(t *testing.T) {
	f, err := iga.ParseFile("example.yaml", readRegistry(t, "example.yaml"))
	require.NoError(t, err)
	require.Len(t, f.Doc.People, 3)
	require.Len(t, f.Doc.Identities, 4)

	alice := f.Doc.People[0]
	assert.Equal(t, iga.Person{ID: "alice@example.com", Name: "Alice Ng", Roles: []string{"auditor", "owner"}, Status: iga.PersonActive}, alice)

	backup := f.Doc.Identities[0]
	assert.Equal(t, "svc-backup", backup.ID)
	assert.Equal(t, iga.KindServiceAccount, backup.Kind)
	assert.Equal(t, iga.StateActive, backup.State)
	assert.Equal(t, "alice@example.com", backup.Owner)
	assert.Equal(t, "prod", backup.Environment)
	require.Len(t, backup.Credentials.SSHKeys, 1)
	assert.Equal(t, day("2027-11-01"), backup.Credentials.SSHKeys[0].Expires, "a date means 00:00:00 UTC that day")
	require.Len(t, backup.Entitlements, 2)
	assert.Equal(t, iga.Entitlement{Target: "analytics", Login: "reporting", Actions: []iga.Action{iga.ActionQuery}}, backup.Entitlements[0],
		"entitlements sorted by target")
	assert.Equal(t, []iga.Action{iga.ActionShell, iga.ActionExec, iga.ActionSFTP}, backup.Entitlements[1].Actions)
	assert.Equal(t, []string{"10.1.0.0/16", "127.0.0.0/8"}, backup.Entitlements[1].From)
	assert.Equal(t, &iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com",
		At: day("2026-11-15"), Until: day("2027-02-13"), Note: "quarterly review"}, backup.Certification)

	ci := f.Doc.Identities[1]
	assert.Equal(t, iga.StateSuspended, ci.State)
	assert.Equal(t, iga.DecisionRevoke, ci.Certification.Decision)
	assert.Equal(t, []iga.OIDCBinding{{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/deploy:ref:refs/heads/main"}}, ci.Credentials.OIDC)

	assert.Empty(t, f.Doc.Identities[2].Owner, "legacy-cron is unowned")
	assert.Equal(t, []string{"bob@example.com", "carol@example.com"}, f.Doc.Identities[3].Holders)
}

func TestParseFileRFC3339(t *testing.T) {
	f, err := iga.ParseFile("r.yaml", []byte(`
people: []
identities:
  - id: svc-a
    kind: workload
    state: active
    entitlements:
      - {target: t, login: l, actions: [exec], expires: "2027-03-01T12:30:00+02:00"}
`))
	require.NoError(t, err)
	got := f.Doc.Identities[0].Entitlements[0].Expires
	assert.Equal(t, time.Date(2027, 3, 1, 10, 30, 0, 0, time.UTC), got, "an RFC 3339 time is kept in UTC")
}

// testKey is a valid ed25519 public key for bad-input cases.
const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMt393/aiErBUcj1aWCZ3mHQs3FckxbvEm9QPOPx8YDZ"

// badFiles are registry files ParseFile must refuse, each with the line
// and the words a user needs to find and fix the problem.
var badFiles = []struct {
	name     string
	yaml     string
	wantLine int
	wantMsg  string
}{
	{"malformed YAML", "people:\n  - {id: a@b.c\nidentities: []\n", 2, "malformed YAML: did not find expected ',' or '}'"},
	{"malformed YAML indentation", "people: []\nidentities:\n  - id: x\n   kind: agent\n", 3, "malformed YAML"},
	{"tab indentation", "people:\n\t- {id: a@b.c}\n", 2, "malformed YAML"},
	{"empty file", "", 0, "the file is empty"},
	{"top level is a list", "- a\n- b\n", 1, "want a mapping"},
	{"unknown top-level key", "people: []\nidentity: []\n", 2, `unknown key "identity"`},
	{"unknown person key", "people:\n  - {id: a@b.c, role: [owner]}\n", 2, `person a@b.c: unknown key "role"`},
	{"unknown identity key", "identities:\n  - id: x\n    kind: agent\n    state: active\n    ownr: a@b.c\n", 5, `identity x: unknown key "ownr"`},
	{"unknown entitlement key", "identities:\n  - id: x\n    kind: agent\n    state: active\n    entitlements:\n      - {target: t, login: l, actions: [exec], until: 2027-01-01}\n", 6, `unknown key "until"`},
	{"repeated key", "people: []\npeople: []\n", 2, `key "people" repeated (first at line 1)`},
	{"duplicate person", "people:\n  - {id: a@b.c}\n  - {id: a@b.c}\n", 3, "person a@b.c listed twice (first at line 2)"},
	{"duplicate identity", "identities:\n  - {id: x, kind: agent, state: active}\n  - {id: x, kind: agent, state: active}\n", 3, "identity x listed twice (first at line 2)"},
	{"person id not an e-mail", "people:\n  - {id: alice}\n", 2, `"alice" is not an e-mail address`},
	{"unknown role", "people:\n  - {id: a@b.c, roles: [owner, boss]}\n", 2, `unknown role "boss"`},
	{"unknown status", "people:\n  - {id: a@b.c, status: gone}\n", 2, `unknown status "gone"`},
	{"unknown kind", "identities:\n  - id: x\n    kind: robot\n    state: active\n", 3, `unknown kind "robot"; want one of service-account, workload`},
	{"unknown state", "identities:\n  - id: x\n    kind: agent\n    state: enabled\n", 4, `unknown state "enabled"; want one of proposed, active`},
	{"missing kind", "identities:\n  - id: x\n    state: active\n", 2, "kind is missing"},
	{"bad identity id", "identities:\n  - {id: x@y, kind: agent, state: active}\n", 2, `"x@y" is not a valid identity id`},
	{"missing identity id", "identities:\n  - {kind: agent, state: active}\n", 2, "identity at line 2: id is missing"},
	{"missing person id", "people:\n  - {name: Alice}\n", 2, "person at line 2: id is missing"},
	{"invalid SSH key", "identities:\n  - id: x\n    kind: agent\n    state: active\n    credentials:\n      ssh_keys:\n        - {key: ssh-ed25519 AAAAnotakey}\n", 7, "invalid SSH public key"},
	{"SSH key with options", "identities:\n  - id: x\n    kind: agent\n    state: active\n    credentials:\n      ssh_keys:\n        - {key: 'command=\"ls\" " + testKey + "'}\n", 7, "SSH key options"},
	{"duplicate SSH key", "identities:\n  - id: x\n    kind: agent\n    state: active\n    credentials:\n      ssh_keys:\n        - {key: " + testKey + " a}\n        - {key: " + testKey + " b}\n", 8, "the same key is listed twice"},
	{"date in the wrong format", "identities:\n  - id: x\n    kind: agent\n    state: active\n    credentials:\n      ssh_keys:\n        - {key: " + testKey + ", expires: 03/01/2027}\n", 7, `bad date "03/01/2027": want YYYY-MM-DD (00:00:00 UTC that day) or RFC 3339`},
	{"unknown action", "identities:\n  - id: x\n    kind: agent\n    state: active\n    entitlements:\n      - target: t\n        login: l\n        actions: [exec, sudo]\n", 8, `unknown action "sudo"`},
	{"empty actions", "identities:\n  - id: x\n    kind: agent\n    state: active\n    entitlements:\n      - {target: t, login: l, actions: []}\n", 6, "the list is empty"},
	{"entitlement without login", "identities:\n  - id: x\n    kind: agent\n    state: active\n    entitlements:\n      - {target: t, actions: [exec]}\n", 6, "login missing"},
	{"bad CIDR", "identities:\n  - id: x\n    kind: agent\n    state: active\n    entitlements:\n      - {target: t, login: l, actions: [exec], from: [10.0.0.0/33]}\n", 6, `bad CIDR "10.0.0.0/33"`},
	{"CIDR with host bits", "identities:\n  - id: x\n    kind: agent\n    state: active\n    entitlements:\n      - {target: t, login: l, actions: [exec], from: [10.1.2.3/16]}\n", 6, "did you mean 10.1.0.0/16?"},
	{"bare address as CIDR", "identities:\n  - id: x\n    kind: agent\n    state: active\n    entitlements:\n      - {target: t, login: l, actions: [exec], from: [10.1.2.3]}\n", 6, "10.1.2.3/32 for one address"},
	{"holders on a service account", "identities:\n  - id: x\n    kind: service-account\n    state: active\n    holders: [a@b.c]\n", 2, "holders are only for break-glass identities"},
	{"certification until before at", "identities:\n  - id: x\n    kind: agent\n    state: active\n    certification: {by: a@b.c, at: 2026-11-01, until: 2026-10-01}\n", 5, "until 2026-10-01 is not after at 2026-11-01"},
	{"certification without by", "identities:\n  - id: x\n    kind: agent\n    state: active\n    certification: {at: 2026-11-01, until: 2026-12-01}\n", 5, "by missing"},
	{"oidc binding without subject", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    credentials:\n      oidc:\n        - {issuer: https://issuer.example}\n", 7, "needs both issuer and subject"},
	{"command empty", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [exec]\n        commands:\n          - \"\"\n", 10, "the command is empty"},
	{"command only star", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [exec]\n        commands:\n          - \"*\"\n", 10, "would allow any command"},
	{"command with newline", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [exec]\n        commands:\n          - \"backup.sh x\\nid\"\n", 10, "control character"},
	{"command with NUL", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [exec]\n        commands:\n          - \"backup.sh \\0\"\n", 10, "control character"},
	{"command too long", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [exec]\n        commands:\n          - \"backup.sh xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n", 10, "longer than 4096"},
	{"command star in program", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [exec]\n        commands:\n          - \"*.sh x\"\n", 10, "in the program"},
	{"commands with shell", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [exec, shell]\n        commands:\n          - uptime\n", 10, "commands together with shell"},
	{"commands without exec", "identities:\n  - id: x\n    kind: pipeline\n    state: active\n    entitlements:\n      - target: web-01\n        login: ci\n        actions: [sftp]\n        commands:\n          - uptime\n", 10, "commands without exec"},
	{"alias", "people:\n  - &a {id: a@b.c}\n  - *a\n", 3, "YAML aliases"},
	{"two documents", "people: []\n---\npeople: []\n", 2, "more than one YAML document"},
}

func TestParseFileBadInput(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(tc.name, func(t *testing.T) {
			f, err := iga.ParseFile("bad.yaml", []byte(tc.yaml))
			require.Error(t, err, "got a parsed file, want the file refused")
			if f != nil { // what parsed comes back for Apply to add the registry's findings
				store := gwOpen(t, sqlstore.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "r.db")})
				_, applyErr := gwRegistry(store).Apply(context.Background(), f, iga.ApplyOptions{})
				require.Error(t, applyErr, "Apply must refuse a file ParseFile refused")
			}
			var fe *iga.FileError
			require.True(t, errors.As(err, &fe), "got %T, want *iga.FileError", err)
			require.NotEmpty(t, fe.Problems)
			p := fe.Problems[0]
			assert.Equal(t, tc.wantLine, p.Line, "got line %d, want %d (%s)", p.Line, tc.wantLine, p.Msg)
			assert.Contains(t, p.Msg, tc.wantMsg)
			prefix := "bad.yaml: "
			if tc.wantLine > 0 {
				prefix = fmt.Sprintf("bad.yaml:%d: ", tc.wantLine)
			}
			assert.True(t, strings.HasPrefix(err.Error(), prefix), "got %q, want it to start with %q", err.Error(), prefix)
		})
	}
}

// TestParseFileReportsEveryProblem checks that one run lists all problems
// of a file, each at its line, so a user fixes them in one go.
func TestParseFileReportsEveryProblem(t *testing.T) {
	_, err := iga.ParseFile("everything.yaml", readRegistry(t, "bad/everything.yaml"))
	var fe *iga.FileError
	require.True(t, errors.As(err, &fe), "got %v, want *iga.FileError", err)
	want := []string{
		`everything.yaml:3: person bob@example.com listed twice (first at line 2)`,
		`everything.yaml:5: identity svc-a: state is missing; want one of proposed, active`,
		`everything.yaml:7: identity svc-a: unknown kind "robot"`,
		`everything.yaml:8: identity svc-a: unknown key "ownr"`,
		`everything.yaml:11: identity svc-a: credentials: ssh_keys: invalid SSH public key`,
		`everything.yaml:11: identity svc-a: credentials: ssh_keys: expires: bad date "2027/01/01"`,
		`everything.yaml:13: identity svc-a: entitlement: actions: unknown action "root"`,
		`everything.yaml:13: identity svc-a: entitlement: from: bad CIDR "10.0.0.0/40"`,
		`everything.yaml:14: identity svc-a listed twice (first at line 5)`,
	}
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, len(want), "got problems:\n%s", err)
	for i, w := range want {
		assert.True(t, strings.HasPrefix(lines[i], w), "problem %d: got %q, want it to start with %q", i, lines[i], w)
	}
}

// TestParseFileGoodFiles parses every registry file at the top of
// testdata/registries (the example, the DESIGN.md example): each must be
// accepted, since the CLI tests, the demo and the docs rely on them.
func TestParseFileGoodFiles(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(registriesDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			f, err := iga.ParseFile(filepath.Base(path), data)
			require.NoError(t, err)
			assert.NotEmpty(t, f.Doc.Identities)
		})
	}
}

func TestParseFileRefusesWeakKeysAndCertificates(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	weak, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)

	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(edPriv)
	require.NoError(t, err)
	cert := &ssh.Certificate{Key: signer.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"app"}, ValidBefore: ssh.CertTimeInfinity}
	require.NoError(t, cert.SignCert(rand.Reader, signer))

	for _, tc := range []struct {
		name string
		key  ssh.PublicKey
		want string
	}{
		{"1024-bit RSA", weak, "a 1024-bit RSA key is too weak; use ssh-ed25519 or RSA of at least 2048 bits"},
		{"a certificate", cert, "an SSH certificate is not a key to bind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(tc.key)))
			file := "identities:\n  - id: x\n    kind: agent\n    state: active\n    credentials:\n      ssh_keys:\n        - {key: " + line + "}\n"
			_, err := iga.ParseFile("keys.yaml", []byte(file))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "keys.yaml:7: identity x: credentials: ssh_keys: "+tc.want)
		})
	}
}
