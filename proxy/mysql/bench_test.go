package mysql_test

import (
	"context"
	"database/sql"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/proxy/mysql"
)

const (
	// benchQueries is how many queries one mysqlslap run sends in all:
	// 20,000 per client, as users measured from outside. mysqlslap's clock
	// runs from before its clients connect, and a login through sallyport
	// (token, admission, a MariaDB user created) takes 20–45 ms against
	// HAProxy's 2–3 ms: at 5,000 per client that was up to 3 % of a
	// one-second run; at 20,000 per client it is under 1 %.
	benchQueries = 80000
	// benchConcurrency is how many clients mysqlslap and the connect loop run.
	benchConcurrency = 4
	// benchConnectFor is how long the new-sessions loop runs.
	benchConnectFor = 3 * time.Second
	// benchUser and benchPassword are a direct login with the entitled role.
	benchUser     = "bench_direct"
	benchPassword = "bench-direct-pw"
)

var slapSecondsRE = regexp.MustCompile(`Average number of seconds to run all queries: ([0-9.]+) seconds`)

// Read-only queries of the benchmarks: a point lookup (the proxy's hop
// dominates) and a 100-row range (the server's work does).
const (
	pointQuery = "SELECT id, customer, amount FROM orders WHERE id = 17"
	rangeQuery = "SELECT id, customer, amount FROM orders WHERE id BETWEEN 100 AND 199"
)

// BenchmarkMysqlslapSelect runs mysqlslap's read-only queries with 4
// clients direct, through a bare Go TCP relay and through HAProxy (the
// floor of any proxy: one more hop each way, no parsing; in Go and in C)
// and through sallyport with every query recorded — without TLS like the
// others, and with TLS as production runs it — and reports each one's
// queries/s and CPU per query, and the ratios. Each contender runs
// rounds times, interleaved so that a burst of load from elsewhere
// hits all alike; the medians count.
func BenchmarkMysqlslapSelect(b *testing.B) {
	e := newBenchEnv(b)
	relay := startRelay(b, e.target.Addr())
	pumpRelay := measure.PumpRelay(b, e.target.Addr())
	haproxy, haproxyCPU := startHAProxy(b, e.target.Addr())
	viaSallyport := func(tls string) func(b *testing.B, sql string) float64 {
		return func(b *testing.B, sql string) float64 {
			return e.mysqlslap(b, sql, okIdentity+"@"+targetName, e.token(okIdentity), e.addr.Port, tls)
		}
	}
	direct := func(port int) func(b *testing.B, sql string) float64 {
		return func(b *testing.B, sql string) float64 {
			return e.mysqlslap(b, sql, benchUser, benchPassword, port, "--skip-ssl")
		}
	}
	contenders := []contender{
		{name: "direct", run: direct(e.target.Port)},
		{name: "relay", run: direct(relay), cpu: measure.SelfCPU},
		{name: "pump", run: direct(pumpRelay), cpu: measure.SelfCPU},
		{name: "haproxy", run: direct(haproxy), cpu: haproxyCPU},
		{name: "sallyport", run: viaSallyport("--skip-ssl"), cpu: measure.SelfCPU, allocs: true, profile: "mysqlslap"},
		{name: "goroutines", run: viaSallyport("--skip-ssl"), cpu: measure.SelfCPU,
			before: func() { mysql.SetPumpSessions(false) }, after: func() { mysql.SetPumpSessions(true) }},
		{name: "sallyport_tls", run: viaSallyport("--ssl")},
	}
	for _, q := range []struct{ name, sql string }{{"point", pointQuery}, {"range100", rangeQuery}} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				m := rounds(b, q.sql, contenders)
				for _, c := range contenders {
					b.ReportMetric(m[c.name].Rate, c.name+"_qps")
					if c.cpu != nil {
						// CPU per query is less sensitive than qps to load from elsewhere.
						b.ReportMetric(m[c.name].CPUPerOp, c.name+"_cpu_us/q")
					}
					if c.allocs {
						b.ReportMetric(m[c.name].AllocsPerOp, c.name+"_allocs/q")
					}
				}
				direct := m["direct"].Rate
				b.ReportMetric(m["haproxy"].Rate/direct, "haproxy/direct")
				b.ReportMetric(m["sallyport"].Rate/direct, "sallyport/direct")
				b.ReportMetric(m["sallyport"].Rate/m["relay"].Rate, "sallyport/relay")
				b.ReportMetric(m["goroutines"].Rate/direct, "goroutines/direct")
				b.ReportMetric(m["sallyport"].Rate/m["haproxy"].Rate, "sallyport/haproxy")
				b.ReportMetric(m["pump"].Rate/m["haproxy"].Rate, "pump/haproxy")
				// The figure least moved by load from elsewhere: on two
				// cores the proxy's CPU per query decides its throughput.
				b.ReportMetric(m["sallyport"].CPUPerOp/m["haproxy"].CPUPerOp, "sallyport_cpu/haproxy_cpu")
			}
		})
	}
}

// benchRounds is how often each contender runs, interleaved; the median
// counts. Single runs of 20,000 queries swing by a fifth.
const benchRounds = 3

// contender is a way to the server, by name: how to run the benchmark
// client (mysqlslap, sysbench) through it for a query and, when measured,
// the CPU time its relay has used so far.
type contender struct {
	name          string
	run           func(b *testing.B, sql string) float64
	cpu           func() time.Duration
	before, after func() // around each run
	allocs        bool   // count the process's allocations per query
	profile       string // with measure.ProfileEnv set, save profiles under this name
}

// rounds runs every contender benchRounds times, interleaved (see
// measure.Rounds), and returns each one's median queries/s and CPU µs per
// mysqlslap query, by name.
func rounds(b *testing.B, sql string, cs []contender) map[string]measure.Result {
	mc := make([]measure.Contender, len(cs))
	for i, c := range cs {
		run := func() (rate float64, n int) {
			name := c.profile + "-" + b.Name()
			if c.profile == "" {
				return c.run(b, sql), benchQueries
			}
			measure.Profile(b, strings.NewReplacer("/", "-").Replace(name), func() { rate = c.run(b, sql) })
			return rate, benchQueries
		}
		mc[i] = measure.Contender{Run: run, CPU: c.cpu, Before: c.before, After: c.after, Allocs: c.allocs}
	}
	out := make(map[string]measure.Result, len(cs))
	for i, r := range measure.Rounds(benchRounds, mc...) {
		out[cs[i].name] = r
	}
	return out
}

// startRelay is a bare TCP forwarder to addr; it returns its port.
func startRelay(b *testing.B, addr string) int {
	return measure.Serve(b, func(c net.Conn) {
		defer c.Close()
		up, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		_, _ = io.Copy(c, up)
	})
}

// BenchmarkNewSessions opens, pings and closes go-sql-driver connections
// from 4 goroutines for 3 s, direct and through sallyport (token check,
// admission, user creation, login, SET ROLE, recording, user drop), and
// reports sessions/s.
func BenchmarkNewSessions(b *testing.B) {
	e := newBenchEnv(b)
	for b.Loop() {
		direct := connectRate(b, e.directConfig())
		viaSallyport := connectRate(b, e.plainConfig(okIdentity, e.token(okIdentity)))
		b.ReportMetric(direct, "direct_sessions/s")
		b.ReportMetric(viaSallyport, "sallyport_sessions/s")
		b.ReportMetric(viaSallyport/direct, "sallyport/direct")
	}
}

// newBenchEnv is a plaintext bastion and a direct login that holds the
// entitled role by default.
func newBenchEnv(b *testing.B) *env {
	e := newEnv(b, envOptions{plaintext: true})
	e.deployedRecorder(b)
	require.NoError(b, e.target.MariaDB.Exec(context.Background(), "", "CREATE USER '"+benchUser+"'@'%' IDENTIFIED BY '"+benchPassword+"'; "+
		"GRANT "+e.target.Role+" TO '"+benchUser+"'@'%'; SET DEFAULT ROLE "+e.target.Role+" FOR '"+benchUser+"'@'%'"))
	return e
}

func (e *env) mysqlslap(b *testing.B, query, user, password string, port int, tls string) float64 {
	b.Helper()
	bin := clientBinary(b, "mysqlslap")
	cmd := exec.Command(bin, "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", strconv.Itoa(port), "-u", user,
		"--create-schema="+targetName, "--no-drop", "--query="+query,
		"--concurrency="+strconv.Itoa(benchConcurrency), "--number-of-queries="+strconv.Itoa(benchQueries), "--iterations=1", tls)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+password)
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "mysqlslap: %s", out)
	m := slapSecondsRE.FindSubmatch(out)
	require.NotNil(b, m, "mysqlslap output: %s", out)
	secs, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(b, err)
	return benchQueries / secs
}

func (e *env) directConfig() *gomysql.Config {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = benchUser, benchPassword, "tcp", e.target.Addr(), targetName
	return cfg
}

func (e *env) plainConfig(identity, token string) *gomysql.Config {
	cfg := e.driverConfig(identity, token)
	cfg.TLS = nil
	return cfg
}

// connectRate is how many sessions per second benchConcurrency goroutines
// open, ping and close with cfg.
func connectRate(b *testing.B, cfg *gomysql.Config) float64 {
	conn, err := gomysql.NewConnector(cfg)
	require.NoError(b, err)
	var n atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	deadline := time.Now().Add(benchConnectFor)
	start := time.Now()
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				db := sql.OpenDB(conn)
				if err := db.Ping(); err != nil {
					failed.Store(err)
					db.Close()
					return
				}
				db.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("connect: %v", err)
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}

// deployedRecorder replaces the tests' recorder with measure.DeployedRecorder.
func (e *env) deployedRecorder(t testing.TB) {
	e.rec, e.recStore = measure.DeployedRecorder(t, quietLogger())
}
