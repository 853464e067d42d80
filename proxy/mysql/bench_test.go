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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

const (
	// benchQueries is how many queries one mysqlslap run sends in all.
	benchQueries = 20000
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
// clients direct, through a bare TCP relay (the floor of any proxy: one
// more hop each way) and through sallyport with every query recorded —
// without TLS like the others, and with TLS as production runs it — and
// reports each one's queries/s and the ratios.
func BenchmarkMysqlslapSelect(b *testing.B) {
	e := newBenchEnv(b)
	relay := startRelay(b, e.target.Addr())
	for _, q := range []struct{ name, sql string }{{"point", pointQuery}, {"range100", rangeQuery}} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				direct := e.mysqlslap(b, q.sql, benchUser, benchPassword, e.target.Port, "--skip-ssl")
				viaRelay := e.mysqlslap(b, q.sql, benchUser, benchPassword, relay, "--skip-ssl")
				viaSallyport := e.mysqlslap(b, q.sql, okIdentity+"@"+targetName, e.token(okIdentity), e.addr.Port, "--skip-ssl")
				viaSallyportTLS := e.mysqlslap(b, q.sql, okIdentity+"@"+targetName, e.token(okIdentity), e.addr.Port, "--ssl")
				b.ReportMetric(direct, "direct_qps")
				b.ReportMetric(viaRelay, "relay_qps")
				b.ReportMetric(viaSallyport, "sallyport_qps")
				b.ReportMetric(viaSallyportTLS, "sallyport_tls_qps")
				b.ReportMetric(viaSallyport/direct, "sallyport/direct")
				b.ReportMetric(viaSallyport/viaRelay, "sallyport/relay")
			}
		})
	}
}

// startRelay is a bare TCP forwarder to addr; it returns its port.
func startRelay(b *testing.B, addr string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
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
