package mysql_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
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

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/mysql"
	"github.com/sallyport/sallyport/proxy/tlscert"
	"github.com/sallyport/sallyport/recorder"
)

// targetName is the target's name in the registry: the client's database.
const targetName = sandbox.DefaultMariaDBTargetDatabase

// env is a bastion MySQL listener in front of a sandbox target, with a
// registry, a recorder and a watcher, all real.
type env struct {
	t        testing.TB
	target   *sandbox.MariaDBTarget
	admin    *sql.DB
	issuer   *camysql.Issuer
	reg      *iga.Registry
	store    iga.Store
	rec      *recorder.Recorder
	recStore recorder.Store
	opened   *openLog
	live     *proxy.Live
	srv      *mysql.Server
	addr     *net.TCPAddr
	regPath  string
}

type envOptions struct {
	plaintext bool          // AllowPlaintext
	startup   time.Duration // StartupTimeout
	maxMsg    int
	proxyProt *proxy.ProxyProtocol // ProxyProtocol
	maxSess   time.Duration        // MaxSession
	logger    *slog.Logger
	target    *sandbox.MariaDBTarget // nil: a fresh one (sandbox.MariaDBTargetT)
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	target := opts.target
	if target == nil {
		target = sandbox.MariaDBTargetT(t)
	}
	e := &env{t: t, target: target, opened: &openLog{}}
	var err error
	e.admin, err = sql.Open("mysql", e.target.AdminDSN())
	require.NoError(t, err)
	t.Cleanup(func() { e.admin.Close() })
	e.issuer = &camysql.Issuer{DB: e.admin}
	e.newRegistry(t)
	e.newRecorder(t)
	e.live = &proxy.Live{Gate: e.reg, Recheck: 500 * time.Millisecond}
	wctx, stop := context.WithCancel(context.Background())
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
	e.reg = &iga.Registry{Store: s, Tokens: iga.TokenConfig{SigningKey: key}, Targets: registryTargets}
	seed(t, s)
}

func registryTargets(name string) (iga.Target, bool) {
	tg, ok := map[string]iga.Target{
		targetName: {Name: targetName, Kind: "mysql", Environment: "staging"},
		"web-01":   {Name: "web-01", Kind: "ssh", Environment: "staging"},
	}[name]
	return tg, ok
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
	cert, _, err := tlscert.LoadOrCreate(filepath.Join(dir, "my.crt"), filepath.Join(dir, "my.key"), tlscert.ParseNames("localhost"), time.Now())
	require.NoError(t, err)
	target := &mysql.Target{Name: targetName, Address: e.target.Addr(), Database: e.target.Database, Users: e.issuer}
	logger := opts.logger
	if logger == nil {
		logger = quietLogger()
	}
	e.srv = &mysql.Server{
		Gate: e.reg, Live: e.live, Recorder: recorderFunc(e.open),
		Targets:        func(name string) (*mysql.Target, bool) { return target, name == targetName },
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{cert}},
		AllowPlaintext: opts.plaintext, StartupTimeout: opts.startup, MaxMessageSize: opts.maxMsg, MaxSession: opts.maxSess,
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
		require.ErrorIs(t, <-done, mysql.ErrServerClosed)
	})
}

// recorderFunc adapts a function to mysql.Recorder.
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

// mariadbCmd is the real mariadb client through the bastion as identity,
// the token in MYSQL_PWD (never in argv); extra args follow the login ones.
func (e *env) mariadbCmd(ctx context.Context, t testing.TB, identity, token string, args ...string) *exec.Cmd {
	t.Helper()
	bin := clientBinary(t, "mariadb")
	base := []string{"--no-defaults", "-N", "-B", "--connect-timeout=10", "--protocol=TCP", "-h", "127.0.0.1",
		"-P", strconv.Itoa(e.addr.Port), "-u", identity}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+token)
	cmd.Dir = t.TempDir()
	return cmd
}

// mariadb runs the mariadb client with stdin and returns its combined output.
func (e *env) mariadb(t testing.TB, identity, token, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.mariadbCmd(ctx, t, identity, token, args...)
	if stdin != "" {
		cmd.Stdin = bytes.NewBufferString(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// driverConfig is a go-sql-driver config through the bastion over TLS.
func (e *env) driverConfig(identity, token string) *gomysql.Config {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = identity, token, "tcp", e.addr.String(), targetName
	cfg.AllowCleartextPasswords = true
	cfg.TLS = &tls.Config{InsecureSkipVerify: true}
	cfg.ParseTime = true
	return cfg
}

// db opens a database/sql pool through the bastion.
func (e *env) db(t testing.TB, identity, token string) *sql.DB {
	t.Helper()
	return e.dbWith(t, e.driverConfig(identity, token))
}

// dbWith opens a database/sql pool with cfg.
func (e *env) dbWith(t testing.TB, cfg *gomysql.Config) *sql.DB {
	t.Helper()
	conn, err := gomysql.NewConnector(cfg)
	require.NoError(t, err)
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// events returns the query and end events of a finished session's recording.
func (e *env) events(t testing.TB, id string) []recorder.Event {
	t.Helper()
	var out []recorder.Event
	for _, ev := range e.recording(t, id) {
		if ev.Type == recorder.EventQuery || ev.Type == recorder.EventEnd {
			out = append(out, ev)
		}
	}
	return out
}

// recording returns every event of a finished session's recording.
func (e *env) recording(t testing.TB, id string) []recorder.Event {
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
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev recorder.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type != "" {
			out = append(out, ev)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// verified checks that a finished session's recording replays as text
// to its end and verifies as intact.
func (e *env) verified(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := recorder.FindSession(ctx, e.recStore, id)
	require.NoError(t, err)
	require.NoError(t, recorder.Replay(ctx, src, io.Discard, recorder.ReplayOptions{Format: recorder.FormatText}), "text replay")
	rep, err := recorder.Verify(ctx, src, e.rec.Key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	assert.True(t, rep.OK(), "verify: %+v", rep)
}

// userCount counts the per-session users on the target.
func (e *env) userCount(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, e.admin.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'sp\\_%'").Scan(&n))
	return n
}

// waitNoUsers waits until every per-session user is dropped.
func (e *env) waitNoUsers(t testing.TB, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return e.userCount(t) == 0 }, within, 20*time.Millisecond,
		"per-session users still exist after %s", within)
}

// clientBinary finds a client program, applying the sandbox policy when missing.
func clientBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		sandbox.Need(t, errors.Join(sandbox.ErrNotInstalled, err))
	}
	return p
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
