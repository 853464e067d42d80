package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
)

const (
	// benchSeconds is how long each pgbench run lasts.
	benchSeconds = "3"
	// benchRounds is how often each contender runs, interleaved, so a
	// burst of load from elsewhere on the machine hits all alike; the
	// median counts.
	benchRounds = 3
)

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \((?:without initial connection time|including reconnection times)\)`)

// BenchmarkPgbenchSelect runs `pgbench -S -c 4 -j 2` against one server:
// direct, through PgBouncer (session mode) and through sallyport with
// every query recorded, and reports each one's tps and the ratios.
func BenchmarkPgbenchSelect(b *testing.B) {
	e := newBenchEnv(b)
	bouncer := startPgbouncer(b, e.target.Postgres, e.target.Database)
	args := []string{"-S", "-c", "4", "-j", "2"}
	for b.Loop() {
		m := e.rounds(b, args, e.directEnv(e.target.Port), e.directEnv(bouncer), e.pgEnv(okIdentity, e.token(okIdentity), "disable"))
		direct, viaBouncer, viaSallyport := m[0], m[1], m[2]
		b.ReportMetric(direct, "direct_tps")
		b.ReportMetric(viaBouncer, "pgbouncer_tps")
		b.ReportMetric(viaSallyport, "sallyport_tps")
		b.ReportMetric(viaSallyport/viaBouncer, "sallyport/pgbouncer")
		b.ReportMetric(viaSallyport/direct, "sallyport/direct")
	}
}

// BenchmarkPgbenchConnect runs `pgbench -S -C -c 4 -j 2`, a new connection
// per transaction, direct and through sallyport (token check, admission,
// role creation, SCRAM login, role drop), and reports connections/s.
func BenchmarkPgbenchConnect(b *testing.B) {
	e := newBenchEnv(b)
	args := []string{"-S", "-C", "-c", "4", "-j", "2"}
	for b.Loop() {
		m := e.rounds(b, args, e.directEnv(e.target.Port), e.pgEnv(okIdentity, e.token(okIdentity), "disable"))
		direct, viaSallyport := m[0], m[1]
		b.ReportMetric(direct, "direct_conn/s")
		b.ReportMetric(viaSallyport, "sallyport_conn/s")
		b.ReportMetric(viaSallyport/direct, "sallyport/direct")
	}
}

// rounds runs pgbench with args for each environment in turn, benchRounds
// times, and returns each environment's median tps.
func (e *env) rounds(b *testing.B, args []string, envs ...[]string) []float64 {
	runs := make([][]float64, len(envs))
	for range benchRounds {
		for i, env := range envs {
			runs[i] = append(runs[i], e.pgbench(b, env, args...))
		}
	}
	out := make([]float64, len(envs))
	for i, r := range runs {
		sort.Float64s(r)
		out[i] = r[len(r)/2]
	}
	return out
}

// newBenchEnv is a plaintext bastion in front of a target holding the
// pgbench tables, readable by the entitled role.
func newBenchEnv(b *testing.B) *env {
	e := newEnv(b, envOptions{plaintext: true})
	init := exec.Command(clientBinary(b, "pgbench"), "-i", "-s", "1", "-q", e.target.Database)
	init.Env = e.directEnv(e.target.Port)
	out, err := init.CombinedOutput()
	require.NoError(b, err, "pgbench -i: %s", out)
	require.NoError(b, e.target.Exec(context.Background(), e.target.Database,
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+e.target.Role))
	return e
}

// directEnv logs in as the target's superuser on port (PostgreSQL or PgBouncer).
func (e *env) directEnv(port int) []string {
	return append(append(os.Environ(), e.target.Env()...), "PGPORT="+strconv.Itoa(port)) // last PGPORT wins
}

// pgbenchTimeout bounds one pgbench run of benchSeconds, so a stuck run
// fails with a diagnosis instead of hanging `make bench`.
const pgbenchTimeout = 60 * time.Second

// pgbench runs pgbench for benchSeconds and returns its tps.
func (e *env) pgbench(b *testing.B, env []string, args ...string) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pgbenchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, clientBinary(b, "pgbench"), append([]string{"-n", "-T", benchSeconds}, append(args, e.target.Database)...)...)
	cmd.Env = env
	var stuck []string
	cmd.Cancel = func() error {
		for _, s := range e.live.Snapshot() {
			stuck = append(stuck, s.ID)
		}
		sockets, _ := exec.Command("ss", "-tnpo").CombinedOutput()
		var goroutines bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&goroutines, 1)
		threads, _ := exec.Command("sh", "-c", fmt.Sprintf(
			"for t in /proc/%d/task/*; do echo $t $(cat $t/wchan) $(cat $t/syscall); done", cmd.Process.Pid)).CombinedOutput()
		b.Logf("pgbench stuck after %s; its threads:\n%s\nsockets:\n%s\ngoroutines:\n%s",
			pgbenchTimeout, threads, sockets, goroutines.String())
		return cmd.Process.Kill()
	}
	out, err := cmd.CombinedOutput()
	for _, id := range stuck {
		b.Logf("events of live session %s: %+v", id, e.eventsAfterKill(b, id))
	}
	require.NoError(b, err, "pgbench: %s", out)
	m := tpsRE.FindSubmatch(out)
	require.NotNil(b, m, "no tps in pgbench output: %s", out)
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(b, err)
	return tps
}

// startPgbouncer runs PgBouncer in session mode in front of pg's database
// db and returns its port. Clients are trusted; PgBouncer logs in upstream
// as the superuser.
func startPgbouncer(b *testing.B, pg *sandbox.Postgres, db string) int {
	b.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
	}
	if _, statErr := os.Stat(bin); statErr != nil {
		sandbox.Need(b, fmt.Errorf("pgbouncer not found: install the Debian package pgbouncer: %w", sandbox.ErrNotInstalled))
	}
	dir := b.TempDir()
	port := freePort(b)
	ini := fmt.Sprintf(`[databases]
%s = host=%s port=%d dbname=%s user=%s password=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = %s/pgbouncer.log
`, db, pg.Host, pg.Port, db, pg.User, pg.Password, port, dir, dir)
	require.NoError(b, os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o600))
	require.NoError(b, os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(`"`+pg.User+`" ""`+"\n"), 0o600))
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	if os.Geteuid() == 0 { // PgBouncer refuses to run as root
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: postgresCredential(b, dir)}
	}
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	require.Eventually(b, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "pgbouncer did not start")
	return port
}

// postgresCredential hands dir to the postgres system user and returns its credential.
func postgresCredential(b *testing.B, dir string) *syscall.Credential {
	u, err := user.Lookup("postgres")
	require.NoError(b, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "userlist.txt")} {
		require.NoError(b, os.Chown(p, uid, gid))
	}
	require.NoError(b, os.Chmod(filepath.Dir(dir), 0o755))
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventsAfterKill ends a live session and returns its recorded events.
func (e *env) eventsAfterKill(b *testing.B, id string) []string {
	e.live.Kill(id, "pgbench stuck")
	var out []string
	for _, ev := range e.events(b, id) {
		out = append(out, fmt.Sprintf("%s %q %v", ev.Type, ev.SQL, ev.Outcome))
	}
	return out
}
