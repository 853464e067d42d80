package main

import (
	"fmt"
	"strings"
)

// Goal is one measured goal of the issues, judged on one run.
type Goal struct {
	Issue string // "4 SSH"
	What  string // the goal as the issue states it
	// Bench is the benchmark the verdict depends on: its failure or skip
	// is reported instead of a figure.
	Bench  string
	Value  func(*Run) (float64, bool)
	Format func(float64) string
	Met    func(float64) bool
	// Peer names a relay measured in the same run on the same terms, and
	// PeerValue is its figure: a production relay that parses nothing, the
	// plainest relay the library the issue prescribes allows, or
	// sallyport's own relay with the audit left out. Where it misses the
	// goal too, the machine or the library, not the bastion's own work, is
	// what stands in the way.
	Peer      string
	PeerValue func(*Run) (float64, bool)
}

// goals are the measured goals of the issues, in the order of the document.
var goals = []Goal{
	{Issue: "2 Registry", What: "`Decide` p99 ≤ 1 ms with 100,000 identities in SQLite",
		Bench: benchDecide, Value: metric(benchDecide, "p99-µs"), Format: unit(" µs"), Met: atMost(1000)},
	{Issue: "3 Recorder", What: "recording throughput ≥ 200 MB/s (terminal output, spool on disk, default zstd, `flush_interval: 1s`)",
		Bench: benchRecordDisk, Value: metric(benchRecordDisk, "MB/s"), Format: unit(" MB/s"), Met: atLeast(200)},
	{Issue: "3 Recorder", What: "CPU per MB relayed with recording ≤ 1.10× without",
		Bench: benchRelayRecorded, Value: recordingOverhead, Format: times, Met: atMost(1.10)},
	{Issue: "18 Recorder", What: "recorder CPU per MB of terminal output, all in (encode, compress, hash, spool on disk), default zstd, ≤ 4 ms",
		Bench: benchRecorderCPU, Value: millis(benchRecorderCPU, "cpu-ns/MB"), Format: unit2(" ms"), Met: atMost(4),
		Peer: "gzip, the default before", PeerValue: millis(benchRecorderCPUGzip, "cpu-ns/MB")},
	{Issue: "4 SSH", What: "bulk throughput ≥ 0.85× direct",
		Bench: benchSSHThroughput, Value: metric(benchSSHThroughput, "ratio"), Format: times, Met: atLeast(0.85),
		Peer: "bare x/crypto relay", PeerValue: metric(benchSSHThroughput, "bare-ratio")},
	{Issue: "18 SSH", What: "bulk exec (`ssh … cat FILE`) keeping the default 16 MiB of each stream ≥ 0.95× keeping none (counts and hashes only)",
		Bench: benchExecCapture, Value: metric(benchExecCapture, "ratio"), Format: times, Met: atLeast(0.95)},
	{Issue: "4 SSH", What: "session setup time ≤ 1.1× direct",
		Bench: benchSSHSetup, Value: metric(benchSSHSetup, "ratio"), Format: times, Met: atMost(1.1)},
	{Issue: "4, 9 SSH", What: "bastion RSS per idle session ≤ 150 KiB (2,000 sessions)",
		Bench: benchSSHIdle, Value: metric(benchSSHIdle, "bastion-RSS-KiB/session"), Format: unit(" KiB"), Met: atMost(150)},
	{Issue: "5 PostgreSQL", What: "`pgbench -S -c 4 -j 2` ≥ 1.0× PgBouncer, recording every query",
		Bench: benchPgSelect, Value: metric(benchPgSelect, "sallyport/pgbouncer"), Format: times, Met: atLeast(1.0),
		Peer: "sallyport's relay, nothing parsed or recorded", PeerValue: metric(benchPgSelect, "pump/pgbouncer")},
	{Issue: "5 PostgreSQL", What: "… the same over TLS (`sslmode=require`: sallyport's default; PgBouncer with client TLS)",
		Bench: benchPgSelect, Value: metric(benchPgSelect, "sallyport_tls/pgbouncer_tls"), Format: times, Met: atLeast(1.0)},
	{Issue: "5 PostgreSQL", What: "new sessions (`pgbench -C`) ≥ 0.7× direct, role creation and drop included",
		Bench: benchPgConnect, Value: metric(benchPgConnect, "sallyport/direct"), Format: times, Met: atLeast(0.7)},
	{Issue: "9 PostgreSQL", What: "200 concurrent psql sessions × 1,000 queries: zero errors",
		Bench: benchPgScale, Value: metric(benchPgScale, "errors"), Format: unit(" errors"), Met: atMost(0)},
	{Issue: "9 PostgreSQL", What: "… and every query present in the recordings",
		Bench: benchPgScale, Value: metric(benchPgScale, "missing-queries"), Format: unit(" missing"), Met: atMost(0)},
	{Issue: "8 MySQL", What: "`mysqlslap` point lookup ≥ 0.8× direct",
		Bench: benchSlapPoint, Value: metric(benchSlapPoint, "sallyport/direct"), Format: times, Met: atLeast(0.8),
		Peer: "HAProxy", PeerValue: metric(benchSlapPoint, "haproxy/direct")},
	{Issue: "8 MySQL", What: "`mysqlslap` 100-row range ≥ 0.8× direct",
		Bench: benchSlapRange, Value: metric(benchSlapRange, "sallyport/direct"), Format: times, Met: atLeast(0.8),
		Peer: "HAProxy", PeerValue: metric(benchSlapRange, "haproxy/direct")},
	{Issue: "8 MySQL", What: "`sysbench oltp_read_only` ≥ 0.8× direct",
		Bench: benchSysbench, Value: metric(benchSysbench, "sallyport/direct"), Format: times, Met: atLeast(0.8),
		Peer: "HAProxy", PeerValue: metric(benchSysbench, "haproxy/direct")},
	{Issue: "24 PostgreSQL", What: "`pgbench -S -c 4 -j 2` ≥ 1.05× PgBouncer, every query recorded (statement, parameters, outcome)",
		Bench: benchPgSelect, Value: metric(benchPgSelect, "sallyport/pgbouncer"), Format: times, Met: atLeast(1.05),
		Peer: "sallyport's relay, nothing parsed or recorded", PeerValue: metric(benchPgSelect, "pump/pgbouncer")},
	{Issue: "24 PostgreSQL", What: "… over TLS ≥ 1.05× PgBouncer",
		Bench: benchPgSelect, Value: metric(benchPgSelect, "sallyport_tls/pgbouncer_tls"), Format: times, Met: atLeast(1.05)},
	{Issue: "24 PostgreSQL", What: "`pgbench -S -M extended` ≥ 1.0× PgBouncer",
		Bench: benchPgExtended, Value: metric(benchPgExtended, "sallyport/pgbouncer"), Format: times, Met: atLeast(1.0),
		Peer: "sallyport's relay, nothing parsed or recorded", PeerValue: metric(benchPgExtended, "pump/pgbouncer")},
	{Issue: "24 PostgreSQL", What: "`pgbench -S -M prepared` ≥ 1.0× PgBouncer",
		Bench: benchPgPrepared, Value: metric(benchPgPrepared, "sallyport/pgbouncer"), Format: times, Met: atLeast(1.0),
		Peer: "sallyport's relay, nothing parsed or recorded", PeerValue: metric(benchPgPrepared, "pump/pgbouncer")},
	{Issue: "24 MySQL", What: "`mysqlslap` point lookup ≥ 1.0× HAProxy (TCP mode), every query recorded",
		Bench: benchSlapPoint, Value: metric(benchSlapPoint, "sallyport/haproxy"), Format: times, Met: atLeast(1.0),
		Peer: "sallyport's relay, nothing parsed or recorded", PeerValue: metric(benchSlapPoint, "pump/haproxy")},
	{Issue: "24 MySQL", What: "`mysqlslap` 100-row range ≥ 1.0× HAProxy",
		Bench: benchSlapRange, Value: metric(benchSlapRange, "sallyport/haproxy"), Format: times, Met: atLeast(1.0),
		Peer: "sallyport's relay, nothing parsed or recorded", PeerValue: metric(benchSlapRange, "pump/haproxy")},
	{Issue: "24 MySQL", What: "`sysbench oltp_read_only` ≥ 1.0× HAProxy",
		Bench: benchSysbench, Value: metric(benchSysbench, "sallyport/haproxy"), Format: times, Met: atLeast(1.0)},
	{Issue: "24 MySQL", What: "200 concurrent mariadb sessions × 1,000 queries: zero errors, every query in the recordings",
		Bench: benchMyScale, Value: func(r *Run) (float64, bool) {
			m, ok := r.Metric(benchMyScale, "missing-queries")
			e, ok2 := r.Metric(benchMyScale, "errors")
			return m + e, ok && ok2
		}, Format: unit(" missing or failed"), Met: atMost(0)},
	{Issue: "24 SSH", What: "bulk throughput ≥ 1.2× the bare x/crypto relay",
		Bench: benchSSHThroughput, Value: quotient(benchSSHThroughput, "ratio", "bare-ratio"), Format: times, Met: atLeast(1.2)},
	{Issue: "24 SSH", What: "bastion CPU per GB ≤ 0.7× the bare x/crypto relay's",
		Bench: benchSSHThroughput, Value: quotient(benchSSHThroughput, "bastion-CPU-s/GB", "bare-CPU-s/GB"), Format: times, Met: atMost(0.7)},
	{Issue: "20 Search", What: "search p95 ≤ 100 ms for a rare term, 100,000 sessions with 5,000,000 indexed events in SQLite",
		Bench: benchSearchRare, Value: metric(benchSearchRare, "p95-ms"), Format: unit2(" ms"), Met: atMost(100)},
	{Issue: "20 Search", What: "… ≤ 300 ms for a common term, `--limit 50`",
		Bench: benchSearchCommon, Value: metric(benchSearchCommon, "p95-ms"), Format: unit2(" ms"), Met: atMost(300)},
	{Issue: "20 Search", What: "indexing keeps up with 2,000 recorded queries/s",
		Bench: benchIndexQueries, Value: metric(benchIndexQueries, "queries/s"), Format: unit(" queries/s"), Met: atLeast(2000)},
	{Issue: "20 Search", What: "`pgbench -S -c 4 -j 2` through the bastion with indexing on ≥ 0.97× off, interleaved in one run",
		Bench: benchPgIndexing, Value: metric(benchPgIndexing, "on/off"), Format: times, Met: atLeast(0.97)},
}

// The benchmarks the document knows, by name.
const (
	benchDecide          = "BenchmarkDecide/sqlite-100k"
	benchApply           = "BenchmarkApply10k"
	benchParse           = "BenchmarkParseFile10k"
	benchLookup          = "BenchmarkIdentityLookup"
	benchRecordDisk      = "BenchmarkRecordOutput/typical/disk/zstd"
	benchRecorderCPU     = "BenchmarkRecorderCPU/typical/zstd"
	benchRecorderCPUGzip = "BenchmarkRecorderCPU/typical/gzip"
	benchRelayPlain      = "BenchmarkRelay/typical/plain"
	benchRelayRecorded   = "BenchmarkRelay/typical/recorded-zstd"
	benchReplay          = "BenchmarkReplayText"
	benchSSHThroughput   = "BenchmarkSSHThroughput"
	benchSSHSetup        = "BenchmarkSSHSetup"
	benchExecCapture     = "BenchmarkExecCapture"
	benchSSHIdle         = "BenchmarkSSHIdleSessionMemory"
	benchPgSelect        = "BenchmarkPgbenchSelect"
	benchPgConnect       = "BenchmarkPgbenchConnect"
	benchPgScale         = "BenchmarkPsqlScale"
	benchPgExtended      = "BenchmarkPgbenchModes/extended"
	benchPgPrepared      = "BenchmarkPgbenchModes/prepared"
	benchMyScale         = "BenchmarkMariadbScale"
	benchSlapPoint       = "BenchmarkMysqlslapSelect/point"
	benchSlapRange       = "BenchmarkMysqlslapSelect/range100"
	benchMysqlConnect    = "BenchmarkNewSessions"
	benchSysbench        = "BenchmarkSysbenchReadOnly"
	benchSearchRare      = "BenchmarkSearch/rare"
	benchSearchCommon    = "BenchmarkSearch/common"
	benchSearchSize      = "BenchmarkSearch/size"
	benchIndexQueries    = "BenchmarkIndexQueries"
	benchPgIndexing      = "BenchmarkPgbenchIndexing"
	pkgCmd               = modulePath + "cmd/sallyport"
	pkgSearch            = modulePath + "search"
	modulePath           = "github.com/sallyport/sallyport/"
	pkgIga, pkgSqlstore  = modulePath + "iga", modulePath + "iga/sqlstore"
	pkgRecorder          = modulePath + "recorder"
	pkgSSH, pkgPostgres  = modulePath + "proxy/ssh", modulePath + "proxy/postgres"
	pkgMysql             = modulePath + "proxy/mysql"
)

// known maps each benchmark the template shows to its package, so that a
// package that failed to build or timed out marks them, and the others are
// listed apart.
var known = map[string]string{
	benchDecide: pkgIga, benchApply: pkgIga, benchParse: pkgIga, benchLookup: pkgSqlstore,
	benchRecordDisk: pkgRecorder, benchRelayPlain: pkgRecorder, benchRelayRecorded: pkgRecorder, benchReplay: pkgRecorder,
	benchRecorderCPU: pkgRecorder, benchRecorderCPUGzip: pkgRecorder,
	benchSSHThroughput: pkgSSH, benchSSHSetup: pkgSSH, benchSSHIdle: pkgSSH, benchExecCapture: pkgSSH,
	benchPgSelect: pkgPostgres, benchPgConnect: pkgPostgres, benchPgScale: pkgPostgres,
	benchPgExtended: pkgPostgres, benchPgPrepared: pkgPostgres, benchMyScale: pkgMysql,
	benchSlapPoint: pkgMysql, benchSlapRange: pkgMysql, benchMysqlConnect: pkgMysql, benchSysbench: pkgMysql,
	benchSearchRare: pkgSearch, benchSearchCommon: pkgSearch, benchSearchSize: pkgSearch, benchIndexQueries: pkgSearch,
	benchPgIndexing: pkgCmd,
}

// listed are the families the template shows every variant of (rows).
var listed = []string{"BenchmarkRecordOutput/", "BenchmarkRelay/", "BenchmarkRecorderCPU/"}

// isKnown reports whether the template shows the benchmark.
func isKnown(name string) bool {
	if _, ok := known[name]; ok {
		return true
	}
	for _, prefix := range listed {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func metric(bench, unit string) func(*Run) (float64, bool) {
	return func(r *Run) (float64, bool) { return r.Metric(bench, unit) }
}

// quotient is one metric of bench over another.
func quotient(bench, num, den string) func(*Run) (float64, bool) {
	return func(r *Run) (float64, bool) {
		n, ok := r.Metric(bench, num)
		d, ok2 := r.Metric(bench, den)
		return n / d, ok && ok2 && d != 0
	}
}

// millis is a metric counted in nanoseconds, in milliseconds.
func millis(bench, unit string) func(*Run) (float64, bool) {
	return func(r *Run) (float64, bool) { v, ok := r.Metric(bench, unit); return v / 1e6, ok }
}

// recordingOverhead is the CPU per MB of the recorded relay over the plain
// one: from the benchmark's own overhead-% (against a plain relay measured
// moments before) when it reports one, else from the two benchmarks.
func recordingOverhead(r *Run) (float64, bool) {
	if pct, ok := r.Metric(benchRelayRecorded, "overhead-%"); ok {
		return 1 + pct/100, true
	}
	plain, ok1 := r.Metric(benchRelayPlain, "cpu-ns/MB")
	rec, ok2 := r.Metric(benchRelayRecorded, "cpu-ns/MB")
	if !ok1 || !ok2 || plain == 0 {
		return 0, false
	}
	return rec / plain, true
}

func atLeast(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
func atMost(x float64) func(float64) bool  { return func(v float64) bool { return v <= x } }

// unit formats a whole number with thousands separated, then suffix.
func unit(suffix string) func(float64) string {
	return func(v float64) string { return number(v, 0) + suffix }
}

// unit2 formats a number with two decimals, then suffix.
func unit2(suffix string) func(float64) string {
	return func(v float64) string { return number(v, 2) + suffix }
}

func times(v float64) string { return fmt.Sprintf("%.2f×", v) }

// Verdict is a goal judged on a run.
type Verdict struct {
	Goal
	Figure string // the measured value, or why there is none
	Status string // met, not met, failed, skipped, not run
	Peer   string // the peer's figure, "" when the goal has no peer
}

// Judge judges every goal on r.
func Judge(r *Run) []Verdict {
	out := make([]Verdict, 0, len(goals))
	for _, g := range goals {
		v := Verdict{Goal: g}
		if val, ok := g.Value(r); ok {
			v.Figure = g.Format(val)
			v.Status = map[bool]string{true: "met", false: "**not met**"}[g.Met(val)]
		} else {
			v.Figure, v.Status = "—", r.Absence(g.Bench)
		}
		if g.PeerValue != nil {
			v.Peer = g.Peer + " —"
			if val, ok := g.PeerValue(r); ok {
				v.Peer = g.Peer + " " + g.Format(val)
			}
		}
		out = append(out, v)
	}
	return out
}

// Absence says why a benchmark has no figures: failed, skipped or not run.
func (r *Run) Absence(bench string) string {
	if _, ok := r.Failed(bench); ok {
		return "**failed**"
	}
	for _, f := range r.Failures {
		if f.Name == f.Pkg && f.Pkg == known[bench] {
			return "**failed**"
		}
	}
	if s, ok := r.Skipped(bench); ok {
		return "skipped: " + strings.Join(s.Lines, " ")
	}
	return "not run"
}
