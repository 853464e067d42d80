package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/postgres"
	"github.com/sallyport/sallyport/proxy/tlscert"
	"github.com/sallyport/sallyport/recorder"
)

// targetName is the target's name in the registry: the client's dbname.
const targetName = "analytics"

// env is a bastion PostgreSQL listener in front of a sandbox target, with
// a registry, a recorder and a watcher, all real.
type env struct {
	t        testing.TB
	target   *sandbox.PostgresTarget
	admin    *pgxpool.Pool
	issuer   *capg.Issuer
	reg      *iga.Registry
	store    iga.Store
	rec      *recorder.Recorder
	recStore recorder.Store
	opened   *openLog
	live     *proxy.Live
	srv      *postgres.Server
	addr     *net.TCPAddr
	regPath  string
}

type envOptions struct {
	plaintext bool          // AllowPlaintext
	startup   time.Duration // StartupTimeout
	maxMsg    int
	proxyProt *proxy.ProxyProtocol // ProxyProtocol
	logger    *slog.Logger
	target    *sandbox.PostgresTarget // nil: a fresh one (sandbox.PostgresTargetT)
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	target := opts.target
	if target == nil {
		target = sandbox.PostgresTargetT(t)
	}
	e := &env{t: t, target: target, opened: &openLog{}}
	ctx := context.Background()
	var err error
	e.admin, err = pgxpool.New(ctx, e.target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(e.admin.Close)
	e.issuer = &capg.Issuer{DB: e.admin}
	e.newRegistry(t)
	e.newRecorder(t)
	e.live = &proxy.Live{Gate: e.reg, Recheck: 500 * time.Millisecond}
	wctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go e.live.Watch(wctx)
	e.serve(t, opts)
	return e
}

func (e *env) newRegistry(t testing.TB) {
	e.regPath = filepath.Join(t.TempDir(), "registry.db")
	s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: "sqlite", Path: e.regPath})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	e.store = s
	e.reg = &iga.Registry{Store: s, Tokens: iga.TokenConfig{SigningKey: key},
		Targets: func(name string) (iga.Target, bool) {
			tg, ok := map[string]iga.Target{
				targetName: {Name: targetName, Kind: "postgres", Environment: "staging"},
				"web-01":   {Name: "web-01", Kind: "ssh", Environment: "staging"},
			}[name]
			return tg, ok
		}}
	seed(t, s)
}

func (e *env) newRecorder(t testing.TB) {
	dir := t.TempDir()
	store, err := recorder.NewFileStore(filepath.Join(dir, "store"))
	require.NoError(t, err)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	e.recStore = store
	e.rec = &recorder.Recorder{Config: recorder.Config{DataDir: dir, FlushInterval: 100 * time.Millisecond, FailClosed: true},
		Store: store, Key: key, Logger: quietLogger(), Metrics: recorder.NewMetrics()}
	require.NoError(t, e.rec.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.rec.Shutdown(ctx)
	})
}

func (e *env) serve(t testing.TB, opts envOptions) {
	dir := t.TempDir()
	cert, _, err := tlscert.LoadOrCreate(filepath.Join(dir, "pg.crt"), filepath.Join(dir, "pg.key"), tlscert.ParseNames("localhost"), time.Now())
	require.NoError(t, err)
	connCfg, err := pgconn.ParseConfig(e.target.AdminDSN())
	require.NoError(t, err)
	pgTarget := &postgres.Target{Name: targetName, Database: e.target.Database, Conn: connCfg, Roles: e.issuer}
	logger := opts.logger
	if logger == nil {
		logger = quietLogger()
	}
	e.srv = &postgres.Server{
		Gate: e.reg, Live: e.live, Recorder: recorderFunc(e.open),
		Targets: func(name string) (*postgres.Target, bool) {
			return pgTarget, name == targetName
		},
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{cert}},
		AllowPlaintext: opts.plaintext, StartupTimeout: opts.startup, MaxMessageSize: opts.maxMsg,
		Logger: logger, ProxyProtocol: opts.proxyProt,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr = ln.Addr().(*net.TCPAddr)
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.srv.Shutdown(ctx))
		require.ErrorIs(t, <-done, postgres.ErrServerClosed)
	})
}

// recorderFunc adapts a function to postgres.Recorder.
type recorderFunc func(ctx context.Context, meta recorder.SessionMeta) (*recorder.Session, error)

func (f recorderFunc) Open(ctx context.Context, meta recorder.SessionMeta) (*recorder.Session, error) {
	return f(ctx, meta)
}

// openLog remembers the sessions opened, and can make opening fail.
type openLog struct {
	mu   sync.Mutex
	ids  []string
	fail atomic.Bool
}

func (e *env) open(ctx context.Context, meta recorder.SessionMeta) (*recorder.Session, error) {
	if e.opened.fail.Load() {
		return nil, errors.New("spool disk full")
	}
	e.opened.mu.Lock()
	e.opened.ids = append(e.opened.ids, meta.ID)
	e.opened.mu.Unlock()
	return e.rec.Open(ctx, meta)
}

// lastSession is the id of the session opened last.
func (e *env) lastSession(t testing.TB) string {
	e.opened.mu.Lock()
	defer e.opened.mu.Unlock()
	require.NotEmpty(t, e.opened.ids, "no session was opened")
	return e.opened.ids[len(e.opened.ids)-1]
}

// token mints a token for identity.
func (e *env) token(identity string) string {
	tok, err := e.reg.IssueToken(context.Background(), identity, "test", 10*time.Minute)
	require.NoError(e.t, err)
	return tok
}

// pgEnv is the libpq environment for a login as identity through the bastion.
func (e *env) pgEnv(identity, token, sslmode string) []string {
	return append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(e.addr.Port), "PGUSER="+identity,
		"PGDATABASE="+targetName, "PGPASSWORD="+token, "PGSSLMODE="+sslmode, "PGCONNECT_TIMEOUT=10",
		"PSQLRC=/dev/null", "PGAPPNAME=sallyport-test")
}

// psql runs psql through the bastion and returns its combined output.
func (e *env) psql(t testing.TB, identity, token, sslmode, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := clientBinary(t, "psql")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-At"}, args...)...)
	cmd.Env = e.pgEnv(identity, token, sslmode)
	cmd.Dir = t.TempDir()
	if stdin != "" {
		cmd.Stdin = bytes.NewBufferString(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pgx connects through the bastion with pgx.
func (e *env) pgx(t testing.TB, identity, token string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("")
	require.NoError(t, err)
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = "127.0.0.1", uint16(e.addr.Port), identity, token, targetName
	cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err, "connect through the bastion")
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// events returns the query events of a finished session's recording.
func (e *env) events(t testing.TB, id string) []recorder.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var src recorder.Source
	require.Eventually(t, func() bool {
		if err := e.rec.WaitIdle(ctx); err != nil {
			return false
		}
		var err error
		src, err = recorder.FindSession(ctx, e.recStore, id)
		if err != nil {
			return false
		}
		var buf bytes.Buffer
		return recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}) == nil &&
			bytes.Contains(buf.Bytes(), []byte(`"type":"end"`))
	}, 15*time.Second, 50*time.Millisecond, "recording of session %s never sealed", id)
	var buf bytes.Buffer
	require.NoError(t, recorder.Replay(ctx, src, &buf, recorder.ReplayOptions{Format: recorder.FormatJSON}))
	var out []recorder.Event
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev recorder.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && (ev.Type == recorder.EventQuery || ev.Type == recorder.EventEnd) {
			out = append(out, ev)
		}
	}
	return out
}

// roleCount counts the per-session roles on the target.
func (e *env) roleCount(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, e.admin.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'sp_')").Scan(&n))
	return n
}

// waitNoRoles waits until every per-session role is dropped.
func (e *env) waitNoRoles(t testing.TB, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return e.roleCount(t) == 0 }, within, 20*time.Millisecond,
		"per-session roles still exist after %s", within)
}

// clientBinary is PostgreSQL client program name (psql, pgbench), the newest installed.
func clientBinary(t testing.TB, name string) string { return sandbox.PostgresClientT(t, name) }

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
