package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/scim"
	"github.com/sallyport/sallyport/web"
)

// The tokens the fixture accepts: two, as during a rotation.
const (
	tokenOld = "old-token-0123456789abcdefghij"
	tokenNew = "new-token-0123456789abcdefghij"
)

// fixture is the web listener with the SCIM handler over a real registry.
type fixture struct {
	t      *testing.T
	base   string
	store  *sqlstore.Store
	reg    *iga.Registry
	alerts chan iga.Alert
}

// backends open a fresh registry per test on SQLite and on PostgreSQL.
var backends = []struct {
	name  string
	start func(t *testing.T) func(t *testing.T) sqlstore.Config
}{
	{"sqlite", func(*testing.T) func(t *testing.T) sqlstore.Config {
		return func(t *testing.T) sqlstore.Config {
			return sqlstore.Config{Driver: sqlstore.DriverSQLite, Path: filepath.Join(t.TempDir(), "registry.db")}
		}
	}},
	{"postgres", func(t *testing.T) func(t *testing.T) sqlstore.Config {
		pg := sandbox.PostgresT(t)
		var n atomic.Int64
		return func(t *testing.T) sqlstore.Config {
			name := fmt.Sprintf("scim_%d", n.Add(1))
			require.NoError(t, pg.CreateDatabase(context.Background(), name))
			return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pg.DSN(name)}
		}
	}},
}

func newFixture(t *testing.T, cfg sqlstore.Config) *fixture {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store, err := sqlstore.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	reg := &iga.Registry{Store: store, Logger: quiet, Targets: func(name string) (iga.Target, bool) {
		return iga.Target{Name: name, Kind: "postgres"}, true
	}}
	f := &fixture{t: t, store: store, reg: reg, alerts: make(chan iga.Alert, 16)}
	f.seed(ctx)
	s := &iga.SCIM{Registry: reg, GroupRoles: map[string]string{"Sallyport Admins": "admin", "Sallyport Auditors": "auditor"},
		Alert: func(a iga.Alert) { f.alerts <- a }}
	ws := &web.Server{SCIM: &scim.Handler{Registry: s, Tokens: []string{tokenOld, tokenNew}, Logger: quiet}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go ws.Serve(ctx, ln)
	t.Cleanup(func() { ws.Shutdown(context.Background()) })
	f.base = "http://" + ln.Addr().String() + scim.Prefix
	return f
}

// seed puts the people of a registry file: alice owns svc-a, carol is an
// admin, nobody is SCIM-managed yet.
func (f *fixture) seed(ctx context.Context) {
	now := time.Now().UTC().Truncate(time.Second)
	require.NoError(f.t, f.store.Update(ctx, func(tx iga.Tx) error {
		for _, p := range []iga.Person{
			{ID: "alice@example.com", Name: "Alice", Roles: []string{"owner"}, Status: iga.PersonActive},
			{ID: "carol@example.com", Name: "Carol", Roles: []string{"admin"}, Status: iga.PersonActive},
		} {
			if err := tx.PutPerson(ctx, p); err != nil {
				return err
			}
		}
		if err := tx.PutIdentity(ctx, iga.Identity{ID: "svc-a", Kind: iga.KindServiceAccount, State: iga.StateActive, Owner: "alice@example.com"}); err != nil {
			return err
		}
		return tx.AddCertification(ctx, "svc-a", iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com", At: now, Until: now.Add(24 * time.Hour)})
	}))
}

// do sends one request with the new token (unless hdr sets another) and
// returns the status and the decoded JSON body.
func (f *fixture) do(method, path, body string, hdr ...string) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.base+path, strings.NewReader(body))
	require.NoError(f.t, err)
	req.Header.Set("Authorization", "Bearer "+tokenNew)
	req.Header.Set("Content-Type", "application/scim+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		require.NoError(f.t, json.Unmarshal(raw, &out), "body %s", raw)
	}
	return resp.StatusCode, out
}

// person reads a person straight from the registry.
func (f *fixture) person(id string) iga.Person {
	f.t.Helper()
	p, err := f.store.Person(context.Background(), id)
	require.NoError(f.t, err)
	return p
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fresh := b.start(t)
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) { c.run(t, newFixture(t, fresh(t))) })
			}
		})
	}
}

var conformance = []struct {
	name string
	run  func(t *testing.T, f *fixture)
}{
	{"bearer tokens: missing or wrong is 401 without detail, either rotated token works", testTokens},
	{"discovery endpoints", testDiscovery},
	{"an existing person is found by userName and adopted when first changed", testAdopt},
	{"create, get, filter, replace", testCreateGetReplace},
	{"PATCH as Okta sends it", testOktaPatch},
	{"PATCH as Entra sends it", testEntraPatch},
	{"groups give and take roles", testGroups},
	{"pagination", testPagination},
	{"bad input is a SCIM error and changes nothing", testBadInput},
	{"deactivate: owner_inactive, transfer item, alert, audit with request id", testDeactivate},
	{"delete keeps the person inactive", testDelete},
	{"a malformed X-Request-Id is replaced in the audit trail", testRequestID},
}
