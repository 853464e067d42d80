package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/proxy/postgres"
	"github.com/sallyport/sallyport/proxy/tlscert"
)

const (
	// benchSeconds is how long each pgbench run lasts.
	benchSeconds = "3"
	// benchRounds is how often each contender runs, interleaved, so a
	// burst of load from elsewhere on the machine hits all alike; the
	// median counts.
	benchRounds = 5
)

// BenchmarkPgbenchSelect runs `pgbench -S -c 4 -j 2` against one server:
// direct, through PgBouncer (session mode), through sallyport with every
// query recorded (relayed by the pump, and by goroutine pumps), through
// sallyport's pump alone (bytes relayed, none parsed or recorded: what the
// audit costs is the difference), and over TLS (sslmode=require, the
// production default) through PgBouncer and through sallyport (relayed by
// the pump, and by goroutine pumps), and reports
// each one's tps, the ratios, and the CPU per query of PgBouncer and of
// the bastion.
func BenchmarkPgbenchSelect(b *testing.B) {
	e := newBenchEnv(b)
	bouncer, bouncerPid := startPgbouncer(b, e.target.Postgres, e.target.Database)
	bare := measure.PumpRelay(b, e.target.Addr())
	args := []string{"-S", "-c", "4", "-j", "2"}
	for b.Loop() {
		bouncerCPU := func() time.Duration { return measure.ThreadCPU(b, bouncerPid) }
		m := measure.Rounds(benchRounds, measure.Contender{Run: e.pgbenchRun(b, e.directEnv(e.target.Port), args)},
			measure.Contender{Run: e.pgbenchRun(b, e.directEnv(bouncer), args), CPU: bouncerCPU},
			measure.Contender{Run: profiled(b, "pgbench-S", e.pgbenchRun(b, e.pgEnv(okIdentity, e.token(okIdentity), "disable"), args)),
				CPU: measure.SelfCPU, Allocs: true},
			measure.Contender{Run: e.pgbenchRun(b, e.pgEnv(okIdentity, e.token(okIdentity), "disable"), args), CPU: measure.SelfCPU,
				Before: func() { postgres.SetPumpSessions(false) }, After: func() { postgres.SetPumpSessions(true) }},
			measure.Contender{Run: e.pgbenchRun(b, e.directEnv(bare), args), CPU: measure.SelfCPU},
			measure.Contender{Run: e.pgbenchRun(b, append(e.directEnv(bouncer), "PGSSLMODE=require"), args), CPU: bouncerCPU},
			measure.Contender{Run: e.pgbenchRun(b, e.pgEnv(okIdentity, e.token(okIdentity), "require"), args), CPU: measure.SelfCPU},
			measure.Contender{Run: e.pgbenchRun(b, e.pgEnv(okIdentity, e.token(okIdentity), "require"), args), CPU: measure.SelfCPU,
				Before: func() { postgres.SetPumpSessions(false) }, After: func() { postgres.SetPumpSessions(true) }})
		direct, viaBouncer, viaSallyport, viaGoroutines, viaPump := m[0], m[1], m[2], m[3], m[4]
		bouncerTLS, sallyportTLS, goroutinesTLS := m[5], m[6], m[7]
		b.ReportMetric(bouncerTLS.Rate, "pgbouncer_tls_tps")
		b.ReportMetric(sallyportTLS.Rate, "sallyport_tls_tps")
		b.ReportMetric(sallyportTLS.Rate/bouncerTLS.Rate, "sallyport_tls/pgbouncer_tls")
		b.ReportMetric(bouncerTLS.CPUPerOp, "pgbouncer_tls_cpu_us/q")
		b.ReportMetric(sallyportTLS.CPUPerOp, "sallyport_tls_cpu_us/q")
		b.ReportMetric(goroutinesTLS.Rate/bouncerTLS.Rate, "goroutines_tls/pgbouncer_tls")
		b.ReportMetric(goroutinesTLS.CPUPerOp, "goroutines_tls_cpu_us/q")
		b.ReportMetric(viaPump.Rate/viaBouncer.Rate, "pump/pgbouncer")
		b.ReportMetric(viaPump.CPUPerOp, "pump_cpu_us/q")
		b.ReportMetric(viaGoroutines.Rate/viaBouncer.Rate, "goroutines/pgbouncer")
		b.ReportMetric(viaGoroutines.CPUPerOp, "goroutines_cpu_us/q")
		b.ReportMetric(direct.Rate, "direct_tps")
		b.ReportMetric(viaBouncer.Rate, "pgbouncer_tps")
		b.ReportMetric(viaSallyport.Rate, "sallyport_tps")
		b.ReportMetric(viaSallyport.Rate/viaBouncer.Rate, "sallyport/pgbouncer")
		b.ReportMetric(viaSallyport.Rate/direct.Rate, "sallyport/direct")
		// CPU per query is less sensitive than tps to load from elsewhere.
		b.ReportMetric(viaBouncer.CPUPerOp, "pgbouncer_cpu_us/q")
		b.ReportMetric(viaSallyport.CPUPerOp, "sallyport_cpu_us/q")
		b.ReportMetric(viaSallyport.AllocsPerOp, "sallyport_allocs/q")
	}
}

// BenchmarkPgbenchModes runs `pgbench -S -c 4 -j 2` with the extended query
// protocol (-M extended: Parse, Bind, Execute of an unnamed statement per
// query) and with prepared statements (-M prepared: Bind and Execute of a
// named one) through PgBouncer (session mode), through sallyport with
// every query recorded and through sallyport's pump alone, interleaved
// rounds, and reports tps, the ratios, the CPU per query of each and
// sallyport's allocations per query.
func BenchmarkPgbenchModes(b *testing.B) {
	e := newBenchEnv(b)
	bouncer, bouncerPid := startPgbouncer(b, e.target.Postgres, e.target.Database)
	bouncerCPU := func() time.Duration { return measure.ThreadCPU(b, bouncerPid) }
	bare := measure.PumpRelay(b, e.target.Addr())
	for _, mode := range []string{"extended", "prepared"} {
		b.Run(mode, func(b *testing.B) {
			args := []string{"-S", "-M", mode, "-c", "4", "-j", "2"}
			for b.Loop() {
				m := measure.Rounds(benchRounds,
					measure.Contender{Run: e.pgbenchRun(b, e.directEnv(bouncer), args), CPU: bouncerCPU},
					measure.Contender{Run: profiled(b, "pgbench-M-"+mode, e.pgbenchRun(b, e.pgEnv(okIdentity, e.token(okIdentity), "disable"), args)),
						CPU: measure.SelfCPU, Allocs: true},
					measure.Contender{Run: e.pgbenchRun(b, e.directEnv(bare), args), CPU: measure.SelfCPU})
				viaBouncer, viaSallyport, viaPump := m[0], m[1], m[2]
				b.ReportMetric(viaPump.CPUPerOp, "pump_cpu_us/q")
				b.ReportMetric(viaPump.Rate/viaBouncer.Rate, "pump/pgbouncer")
				b.ReportMetric(viaBouncer.Rate, "pgbouncer_tps")
				b.ReportMetric(viaSallyport.Rate, "sallyport_tps")
				b.ReportMetric(viaSallyport.Rate/viaBouncer.Rate, "sallyport/pgbouncer")
				b.ReportMetric(viaBouncer.CPUPerOp, "pgbouncer_cpu_us/q")
				b.ReportMetric(viaSallyport.CPUPerOp, "sallyport_cpu_us/q")
				b.ReportMetric(viaSallyport.AllocsPerOp, "sallyport_allocs/q")
			}
		})
	}
}

// profiled wraps a contender's run in measure.Profile: with
// SALLYPORT_BENCH_PROFILES set, its CPU and allocation profiles are saved
// as name.cpu.pprof and name.allocs.pprof (the last round's).
func profiled(b *testing.B, name string, run func() (float64, int)) func() (float64, int) {
	return func() (rate float64, n int) {
		measure.Profile(b, name, func() { rate, n = run() })
		return rate, n
	}
}

// BenchmarkPgbenchConnect runs `pgbench -S -C -c 4 -j 2`, a new connection
// per transaction, direct and through sallyport (token check, admission,
// role creation, SCRAM login, role drop), and reports connections/s.
func BenchmarkPgbenchConnect(b *testing.B) {
	e := newBenchEnv(b)
	args := []string{"-S", "-C", "-c", "4", "-j", "2"}
	for b.Loop() {
		m := measure.Rounds(benchRounds, measure.Contender{Run: e.pgbenchRun(b, e.directEnv(e.target.Port), args)},
			measure.Contender{Run: e.pgbenchRun(b, e.pgEnv(okIdentity, e.token(okIdentity), "disable"), args)})
		direct, viaSallyport := m[0].Rate, m[1].Rate
		b.ReportMetric(direct, "direct_conn/s")
		b.ReportMetric(viaSallyport, "sallyport_conn/s")
		b.ReportMetric(viaSallyport/direct, "sallyport/direct")
	}
}

// pgbenchRun is a contender's run: pgbench with args in env, for
// measure.Rounds (tps and transactions).
func (e *env) pgbenchRun(b *testing.B, env, args []string) func() (float64, int) {
	return func() (float64, int) { return e.pgbench(b, env, args...) }
}

// newBenchEnv is a plaintext bastion in front of a target holding the
// pgbench tables, readable by the entitled role.
func newBenchEnv(b *testing.B) *env {
	e := newEnv(b, envOptions{plaintext: true})
	e.productionRecorder(b)
	measure.PgbenchInit(b, e.target)
	return e
}

// directEnv logs in as the target's superuser on port (PostgreSQL or PgBouncer).
func (e *env) directEnv(port int) []string {
	return append(append(os.Environ(), e.target.Env()...), "PGPORT="+strconv.Itoa(port)) // last PGPORT wins
}

// pgbenchTimeout bounds one pgbench run of benchSeconds, so a stuck run
// fails with a diagnosis instead of hanging `make bench`.
const pgbenchTimeout = 60 * time.Second

// pgbench runs pgbench for benchSeconds and returns its tps and how many
// transactions it made.
func (e *env) pgbench(b *testing.B, env []string, args ...string) (float64, int) {
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
	tps, txs, err := measure.PgbenchResult(out)
	require.NoError(b, err, "pgbench output: %s", out)
	return tps, txs
}

// startPgbouncer runs PgBouncer in session mode in front of pg's database
// db and returns its port and pid. Clients are trusted and may use TLS
// (a certificate generated here); PgBouncer logs in upstream as the
// superuser, in plaintext as sallyport does in these benchmarks.
func startPgbouncer(b *testing.B, pg *sandbox.Postgres, db string) (int, int) {
	b.Helper()
	bin := measure.ServerBinary(b, "pgbouncer", "pgbouncer")
	dir := b.TempDir()
	port := measure.FreePort(b)
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
client_tls_sslmode = allow
client_tls_cert_file = %s/tls.crt
client_tls_key_file = %s/tls.key
`, db, pg.Host, pg.Port, db, pg.User, pg.Password, port, dir, dir, dir, dir)
	_, _, err := tlscert.LoadOrCreate(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), tlscert.ParseNames("localhost"), time.Now())
	require.NoError(b, err)
	require.NoError(b, os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o600))
	require.NoError(b, os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(`"`+pg.User+`" ""`+"\n"), 0o600))
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	if os.Geteuid() == 0 { // PgBouncer refuses to run as root
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: postgresCredential(b, dir)}
	}
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	measure.WaitListening(b, port, "pgbouncer", logFile(filepath.Join(dir, "pgbouncer.log")))
	return port, cmd.Process.Pid
}

// postgresCredential hands dir to the postgres system user and returns its credential.
func postgresCredential(b *testing.B, dir string) *syscall.Credential {
	u, err := user.Lookup("postgres")
	require.NoError(b, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "userlist.txt"),
		filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")} {
		require.NoError(b, os.Chown(p, uid, gid))
	}
	require.NoError(b, os.Chmod(filepath.Dir(dir), 0o755))
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
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

// productionRecorder replaces the tests' recorder with measure.DeployedRecorder.
func (e *env) productionRecorder(b *testing.B) {
	e.rec, e.recStore = measure.DeployedRecorder(b, quietLogger())
}

// logFile prints a peer's log file, read when printed.
type logFile string

func (f logFile) String() string {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
