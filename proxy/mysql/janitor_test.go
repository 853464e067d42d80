package mysql_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"database/sql"
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/internal/heapfloor"
	"github.com/sallyport/sallyport/proxy/mysql"
	"github.com/sallyport/sallyport/recorder"
)

// Environment of the re-executed bastion child of TestJanitorAfterSIGKILL.
const (
	childEnv         = "SALLYPORT_MYPROXY_CHILD"
	childRegistryEnv = "SALLYPORT_MYPROXY_CHILD_REGISTRY"
	childKeyEnv      = "SALLYPORT_MYPROXY_CHILD_KEY"
	childAdminEnv    = "SALLYPORT_MYPROXY_CHILD_ADMIN_DSN"
	childTargetEnv   = "SALLYPORT_MYPROXY_CHILD_TARGET"
	childDataEnv     = "SALLYPORT_MYPROXY_CHILD_DATA"
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
// that the per-session user it left behind is removed by the janitor of
// the next start.
func TestJanitorAfterSIGKILL(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr, child := e.startChild(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.mariadbCmd(ctx, t, okIdentity, e.token(okIdentity), "-D", targetName, "-h", "127.0.0.1", "-P", addr,
		"--skip-ssl", "-e", "SELECT SLEEP(30)")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	e.waitRunning(t, "SELECT SLEEP(30)")
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	_ = cmd.Wait()
	require.Equal(t, 1, e.userCount(t), "the killed bastion leaves its session user behind")

	// The restart: a fresh Issuer's janitor, with nothing live. Its clock
	// runs past the grace a young user gets from other replicas. The
	// target ends the orphaned thread once it notices the closed socket.
	janitor := &camysql.Issuer{DB: e.admin, Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
	require.Eventually(t, func() bool {
		dropped, err := janitor.Sweep(context.Background(), func(string) bool { return false })
		return err == nil && len(dropped) == 1
	}, 40*time.Second, 200*time.Millisecond, "the janitor must drop the leftover user once its thread is gone")
	assert.Equal(t, 0, e.userCount(t))
}

// startChild re-executes the test binary as a bastion on the same registry
// and target, and returns its port.
func (e *env) startChild(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childRegistryEnv+"="+e.regPath,
		childKeyEnv+"="+hex.EncodeToString(e.reg.Tokens.SigningKey), childAdminEnv+"="+e.target.AdminDSN(),
		childTargetEnv+"="+e.target.Addr(), childDataEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the child must print its address")
	addr := strings.TrimSpace(line)
	return addr[strings.LastIndexByte(addr, ':')+1:], cmd
}

// runChild is the re-executed bastion: it serves plaintext until killed.
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
	reg := &iga.Registry{Store: store, Tokens: iga.TokenConfig{SigningKey: ed25519.PrivateKey(key)}, Targets: registryTargets}
	admin, err := sql.Open("mysql", os.Getenv(childAdminEnv))
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
	target := &mysql.Target{Name: targetName, Address: os.Getenv(childTargetEnv), Users: &camysql.Issuer{DB: admin}}
	srv := &mysql.Server{Gate: reg, Recorder: rec, AllowPlaintext: true,
		Targets: func(name string) (*mysql.Target, bool) { return target, name == targetName }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return srv.Serve(ctx, ln)
}
