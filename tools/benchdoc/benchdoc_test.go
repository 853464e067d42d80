package main

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/bench.md from testdata/bench.log")

// TestRenderGolden renders the log of a real make bench run (captured in
// testdata/bench.log) and compares it with testdata/bench.md.
func TestRenderGolden(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "bench.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := Render(&got, r); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "bench.md")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("rendered document differs from %s (go test ./tools/benchdoc -update to accept):\n%s", golden, firstDiff(got.String(), string(want)))
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

func itoa(i int) string { return strings.TrimSpace(number(float64(i), 0)) }

func TestParse(t *testing.T) {
	const log = `benchdoc: start 2026-11-28T12:00:00Z
benchdoc: loadavg-start 1.00 2.00 3.00
benchdoc: command 1.50 2.00 3.00 | go test -run '^$' -bench . ./proxy/...
goos: linux
pkg: github.com/sallyport/sallyport/proxy/postgres
cpu: AMD EPYC
BenchmarkPgbenchSelect-2    	       1	27749094109 ns/op	      5716 direct_tps	         0.8698 sallyport/pgbouncer
BenchmarkPgbenchConnect-2   	2026/11/28 13:00:47 WARN something from the bastion
       1	 123 ns/op	        40.5 direct_conn/s	  1.5e+01 sallyport_conn/s
BenchmarkMysqlslapSelect/point-2   	1	1 ns/op	 0.50 sallyport/direct
BenchmarkMysqlslapSelect/point-2   	1	1 ns/op	 0.90 sallyport/direct
BenchmarkMysqlslapSelect/point-2   	1	1 ns/op	 0.70 sallyport/direct
--- FAIL: BenchmarkPsqlScale
    scale_bench_test.go:65: 3 client errors
        psql 4: exit status 2
--- SKIP: BenchmarkSSHThroughput
    harness_test.go:140: ssh not in PATH
FAIL
exit status 1
FAIL	github.com/sallyport/sallyport/proxy/mysql	0.5s
FAIL	github.com/sallyport/sallyport/iga [build failed]
benchdoc: end 2026-11-28T12:10:30Z
`
	r, err := Parse(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bench, unit string
		want        float64
	}{
		{"BenchmarkPgbenchSelect", "direct_tps", 5716},
		{"BenchmarkPgbenchSelect", "sallyport/pgbouncer", 0.8698},
		{"BenchmarkPgbenchSelect", "ns/op", 27749094109},
		{"BenchmarkPgbenchConnect", "direct_conn/s", 40.5}, // results after stray output
		{"BenchmarkPgbenchConnect", "sallyport_conn/s", 15},
		{"BenchmarkMysqlslapSelect/point", "sallyport/direct", 0.70}, // median of three
	} {
		got, ok := r.Metric(tc.bench, tc.unit)
		if !ok || got != tc.want {
			t.Errorf("%s %s: got %v (reported %v), want %v", tc.bench, tc.unit, got, ok, tc.want)
		}
	}
	if res := r.Result("BenchmarkPgbenchSelect"); res == nil || res.Pkg != pkgPostgres {
		t.Errorf("got result %+v, want it in package %s", res, pkgPostgres)
	}
	if got := r.Result("BenchmarkMysqlslapSelect/point").Runs; got != 3 {
		t.Errorf("got %d runs, want 3", got)
	}
	if len(r.Commands) != 1 || r.Commands[0].Line != "go test -run '^$' -bench . ./proxy/..." || r.Commands[0].LoadAvg != "1.50 2.00 3.00" {
		t.Errorf("got commands %+v", r.Commands)
	}
	if got := r.took(); got != "10m30s" {
		t.Errorf("took: got %q, want 10m30s", got)
	}
	f, ok := r.Failed("BenchmarkPsqlScale")
	if !ok || len(f.Lines) != 2 || f.Lines[1] != "psql 4: exit status 2" {
		t.Errorf("got failure %+v %v, want its two lines", f, ok)
	}
	if got := r.Absence("BenchmarkSSHThroughput"); got != "skipped: harness_test.go:140: ssh not in PATH" {
		t.Errorf("got %q, want the skip with its reason", got)
	}
	if got := r.Absence(benchDecide); got != "**failed**" {
		t.Errorf("a benchmark of a package that did not build: got %q, want failed", got)
	}
	if got := r.Absence(benchReplay); got != "not run" {
		t.Errorf("got %q, want not run", got)
	}
}

func TestJudge(t *testing.T) {
	r, err := Parse(strings.NewReader(`pkg: github.com/sallyport/sallyport/proxy/ssh
BenchmarkSSHThroughput-2	1	1 ns/op	0.85 ratio
BenchmarkSSHSetup-2	1	1 ns/op	1.2 ratio
pkg: github.com/sallyport/sallyport/recorder
BenchmarkRelay/typical/plain-2	1	1 ns/op	1000 cpu-ns/MB
BenchmarkRelay/typical/recorded-zstd-2	1	1 ns/op	1100 cpu-ns/MB
BenchmarkRecorderCPU/typical/zstd-2	1	1 ns/op	3500000 cpu-ns/MB
BenchmarkRecorderCPU/typical/gzip-2	1	1 ns/op	5272923 cpu-ns/MB
pkg: github.com/sallyport/sallyport/proxy/postgres
--- FAIL: BenchmarkPsqlScale
    scale_bench_test.go:65: 1 client errors
`))
	if err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]Verdict{}
	for _, v := range Judge(r) {
		verdicts[v.What] = v
	}
	for _, tc := range []struct{ what, figure, status, peer string }{
		{"bulk throughput ≥ 0.85× direct", "0.85×", "met", "bare x/crypto relay —"}, // the bound itself meets the goal; the peer did not run
		{"session setup time ≤ 1.1× direct", "1.20×", "**not met**", ""},
		{"CPU per MB relayed with recording ≤ 1.10× without", "1.10×", "met", ""},
		{"200 concurrent psql sessions × 1,000 queries: zero errors", "—", "**failed**", ""},
		{"`mysqlslap` point lookup ≥ 0.8× direct", "—", "not run", "HAProxy —"},
		{"recorder CPU per MB of terminal output, all in (encode, compress, hash, spool on disk), default zstd, ≤ 4 ms",
			"3.50 ms", "met", "gzip, the default before 5.27 ms"},
	} {
		v, ok := verdicts[tc.what]
		if !ok {
			t.Fatalf("no goal %q", tc.what)
		}
		if v.Figure != tc.figure || v.Status != tc.status || v.Peer != tc.peer {
			t.Errorf("%s: got %s %s (peer %q), want %s %s (peer %q)", tc.what, v.Figure, v.Status, v.Peer, tc.figure, tc.status, tc.peer)
		}
	}
}

// TestRecordingOverhead prefers the benchmark's own overhead-%, taken
// against a plain relay moments apart, to the ratio of two benchmarks.
func TestRecordingOverhead(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want float64
	}{
		{"BenchmarkRelay/typical/plain-2\t1\t1 ns/op\t1000 cpu-ns/MB\nBenchmarkRelay/typical/recorded-zstd-2\t1\t1 ns/op\t1500 cpu-ns/MB\t20.0 overhead-%\n", 1.2},
		{"BenchmarkRelay/typical/plain-2\t1\t1 ns/op\t1000 cpu-ns/MB\nBenchmarkRelay/typical/recorded-zstd-2\t1\t1 ns/op\t1500 cpu-ns/MB\n", 1.5},
	} {
		r, err := Parse(strings.NewReader(tc.log))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := recordingOverhead(r); !ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("got %v %v, want %v", got, ok, tc.want)
		}
	}
}

// TestRenderFailure writes the document naming the failure, then fails.
func TestRenderFailure(t *testing.T) {
	dir := t.TempDir()
	logPath, out := filepath.Join(dir, "bench.log"), filepath.Join(dir, "benchmarks.md")
	log := "pkg: github.com/sallyport/sallyport/proxy/postgres\n--- FAIL: BenchmarkPsqlScale\n    scale_bench_test.go:65: 2 client errors\nFAIL\n"
	if err := os.WriteFile(logPath, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"render", "-o", out, logPath}, &bytes.Buffer{})
	if !errors.Is(err, errFailures) {
		t.Errorf("got %v, want errFailures", err)
	}
	doc, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, want := range []string{"`BenchmarkPsqlScale` failed:", "scale_bench_test.go:65: 2 client errors", "`BenchmarkPsqlScale`: **failed**."} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("document lacks %q", want)
		}
	}
}

func TestOpTime(t *testing.T) {
	for _, tc := range []struct {
		ns   float64
		want string
	}{{303952, "304µs"}, {1074057910, "1.07s"}, {27749094109, "27.7s"}, {812, "812ns"}} {
		if got := opTime(tc.ns); got != tc.want {
			t.Errorf("opTime(%v): got %s, want %s", tc.ns, got, tc.want)
		}
	}
}

func TestShellJoin(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"go", "test", "-run", "^$", "./proxy/..."}, "go test -run '^$' ./proxy/..."},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"-bench", "."}, "-bench ."},
	} {
		if got := shellJoin(tc.args); got != tc.want {
			t.Errorf("shellJoin(%q): got %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		v      float64
		digits int
		want   string
	}{
		{15383.4, 0, "15,383"},
		{1234567.891, 2, "1,234,567.89"},
		{0.8698, 2, "0.87"},
		{-1234, 0, "-1,234"},
		{-0.001, 1, "0.0"},
		{999, 0, "999"},
	} {
		if got := number(tc.v, tc.digits); got != tc.want {
			t.Errorf("number(%v, %d): got %s, want %s", tc.v, tc.digits, got, tc.want)
		}
	}
}
