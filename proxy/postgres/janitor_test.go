package postgres_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	capg "github.com/sallyport/sallyport/ca/postgres"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/heapfloor"
	"github.com/sallyport/sallyport/proxy/postgres"
	"github.com/sallyport/sallyport/recorder"
)

// Environment of the re-executed bastion child of TestJanitorAfterSIGKILL.
const (
	childEnv         = "SALLYPORT_PGPROXY_CHILD"
	childRegistryEnv = "SALLYPORT_PGPROXY_CHILD_REGISTRY"
	childKeyEnv      = "SALLYPORT_PGPROXY_CHILD_KEY"
	childAdminEnv    = "SALLYPORT_PGPROXY_CHILD_ADMIN_DSN"
	childDataEnv     = "SALLYPORT_PGPROXY_CHILD_DATA"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	heapfloor.Set() // as serve does: the bastion under test collects as it would in production
	os.Exit(m.Run())
}

// TestJanitorAfterSIGKILL kills a bastion process mid-session and checks
// that the per-session role it left behind is removed by the janitor of
// the next start.
func TestJanitorAfterSIGKILL(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr, child := e.startChild(t)
	cmd, _ := e.startPsqlAt(t, addr, okIdentity, "SELECT pg_sleep(30)")
	e.waitActive(t, "pg_sleep")
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	_ = cmd.Wait()
	require.Equal(t, 1, e.roleCount(t), "the killed bastion leaves its session role behind")

	// The restart: a fresh Issuer's janitor, with nothing live. Its clock
	// runs past the grace a young role gets from other replicas.
	janitor := &capg.Issuer{DB: e.admin, Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
	require.Eventually(t, func() bool {
		dropped, err := janitor.Sweep(context.Background(), func(string) bool { return false })
		return err == nil && len(dropped) == 1
	}, 10*time.Second, 100*time.Millisecond, "the janitor must drop the leftover role once its backend is gone")
	assert.Equal(t, 0, e.roleCount(t))
}

// startChild re-executes the test binary as a bastion on the same registry
// and target, and returns its address.
func (e *env) startChild(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	key := e.reg.Tokens.SigningKey
	cmd.Env = append(os.Environ(), childEnv+"=1", childRegistryEnv+"="+e.registryPath(t),
		childKeyEnv+"="+hex.EncodeToString(key), childAdminEnv+"="+e.target.AdminDSN(), childDataEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the child must print its address")
	return strings.TrimSpace(line), cmd
}

func (e *env) registryPath(t *testing.T) string {
	t.Helper()
	require.NotEmpty(t, e.regPath)
	return e.regPath
}

// startPsqlAt runs psql -c sql against a bastion at addr (plaintext).
func (e *env) startPsqlAt(t *testing.T, addr, identity, sql string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	cmd := exec.Command(clientBinary(t, "psql"), "-X", "-At", "-c", sql)
	cmd.Env = append(e.pgEnv(identity, e.token(identity), "disable"), "PGPORT="+port)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &out
}

// runChild is the re-executed bastion: it serves until killed.
func runChild() error {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "sqlite", Path: os.Getenv(childRegistryEnv)})
	if err != nil {
		return err
	}
	key, err := hex.DecodeString(os.Getenv(childKeyEnv))
	if err != nil {
		return err
	}
	reg := &iga.Registry{Store: store, Tokens: iga.TokenConfig{SigningKey: ed25519.PrivateKey(key)},
		Targets: func(name string) (iga.Target, bool) {
			return iga.Target{Name: targetName, Kind: "postgres", Environment: "staging"}, name == targetName
		}}
	pool, err := pgxpool.New(ctx, os.Getenv(childAdminEnv))
	if err != nil {
		return err
	}
	connCfg, err := pgconn.ParseConfig(os.Getenv(childAdminEnv))
	if err != nil {
		return err
	}
	dir := os.Getenv(childDataEnv)
	rstore, err := recorder.NewFileStore(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	rec := &recorder.Recorder{Config: recorder.Config{DataDir: dir}, Store: rstore, Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	if err := rec.Start(ctx); err != nil {
		return err
	}
	target := &postgres.Target{Name: targetName, Conn: connCfg, Roles: &capg.Issuer{DB: pool}, Database: connCfg.Database}
	srv := &postgres.Server{Gate: reg, Recorder: rec, AllowPlaintext: true,
		Targets: func(name string) (*postgres.Target, bool) { return target, name == targetName }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return srv.Serve(ctx, ln)
}
