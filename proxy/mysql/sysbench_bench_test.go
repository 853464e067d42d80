package mysql_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// sysbench's read-only OLTP mix, per transaction: ten point selects, a
// range, a range sum, an ordered range and a distinct range, as
// server-side prepared statements (sysbench's default), so the bastion
// decodes and records every statement's parameters.
const (
	sysbenchTableSize = "10000"
	sysbenchSeconds   = "5"
)

var sysbenchQpsRE = regexp.MustCompile(`queries:\s+[0-9]+\s+\(([0-9.]+) per sec\.\)`)

// BenchmarkSysbenchReadOnly runs `sysbench oltp_read_only` with 4 threads
// direct, through HAProxy (a C relay that parses nothing: the most a proxy
// reaches here) and through sallyport (recording on, plaintext like the
// direct leg), benchRounds times interleaved, and reports the median
// queries/s and the ratios.
func BenchmarkSysbenchReadOnly(b *testing.B) {
	e := newBenchEnv(b)
	bin := clientBinary(b, "sysbench")
	db := e.target.Database
	// Tables made by sysbench itself, through a login that may create
	// them; the entitled role (and so the direct bench login) reads them.
	require.NoError(b, e.target.MariaDB.Exec(context.Background(), "",
		"CREATE USER 'sb_prepare'@'%' IDENTIFIED BY 'sb-prepare-pw'; GRANT ALL ON `"+db+"`.* TO 'sb_prepare'@'%'"))
	e.sysbench(b, bin, "prepare", "sb_prepare", "sb-prepare-pw", e.target.Port)
	require.NoError(b, e.target.MariaDB.Exec(context.Background(), "", "GRANT SELECT ON `"+db+"`.sbtest1 TO "+e.target.Role))
	haproxy, _ := startHAProxy(b, e.target.Addr())
	via := func(user, password string, port int) func(*testing.B, string) float64 {
		return func(b *testing.B, _ string) float64 { return e.sysbench(b, bin, "run", user, password, port) }
	}
	contenders := []contender{
		{name: "direct", run: via(benchUser, benchPassword, e.target.Port)},
		{name: "haproxy", run: via(benchUser, benchPassword, haproxy)},
		{name: "sallyport", run: via(okIdentity+"@"+targetName, e.token(okIdentity), e.addr.Port)},
	}
	for b.Loop() {
		m := rounds(b, "", contenders)
		for _, c := range contenders {
			b.ReportMetric(m[c.name].Rate, c.name+"_qps")
		}
		b.ReportMetric(m["haproxy"].Rate/m["direct"].Rate, "haproxy/direct")
		b.ReportMetric(m["sallyport"].Rate/m["direct"].Rate, "sallyport/direct")
		b.ReportMetric(m["sallyport"].Rate/m["haproxy"].Rate, "sallyport/haproxy")
	}
}

// sysbench runs oltp_read_only's command (prepare or run) as user and
// returns the queries per second a run reports.
func (e *env) sysbench(b *testing.B, bin, command, user, password string, port int) float64 {
	b.Helper()
	// The password (a token through sallyport) goes in a file, not argv.
	conf := filepath.Join(b.TempDir(), "sysbench.conf")
	require.NoError(b, os.WriteFile(conf, []byte("mysql-password="+password+"\n"), 0o600))
	cmd := exec.Command(bin, "--config-file="+conf, "oltp_read_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
		"--mysql-port="+strconv.Itoa(port), "--mysql-user="+user,
		"--mysql-db="+e.target.Database, "--mysql-ssl=off", "--tables=1", "--table-size="+sysbenchTableSize,
		"--threads="+strconv.Itoa(benchConcurrency), "--time="+sysbenchSeconds, command)
	// sallyport asks a plaintext client for mysql_clear_password, a plugin
	// libmariadb loads on first use; sysbench's threads connect at once
	// and race to load it ("already loaded"). Loaded at start instead.
	cmd.Env = append(os.Environ(), "LIBMYSQL_PLUGINS=mysql_clear_password")
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "sysbench %s: %s", command, out)
	if command != "run" {
		return 0
	}
	m := sysbenchQpsRE.FindSubmatch(out)
	require.NotNil(b, m, "sysbench output: %s", out)
	qps, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(b, err)
	return qps
}
