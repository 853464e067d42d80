package main

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// markPrefix starts the lines that `benchdoc mark` and `benchdoc command`
// write into the log between the go test outputs.
const markPrefix = "benchdoc: "

// maxMessageLines bounds how much of a failure's or skip's log is kept.
const maxMessageLines = 12

// Run is what one `make bench` logged: machine facts, the commands, and
// every benchmark result, failure and skip.
type Run struct {
	// Marks are the facts the mark lines carried, by key (start, end,
	// loadavg-start, cpu, ...).
	Marks map[string]string
	// Commands are the commands run, in order.
	Commands []Command
	// Results are the benchmarks that finished, in order of first appearance.
	Results []*Result
	// Failures are failed benchmarks and packages; Skips skipped benchmarks.
	Failures []Message
	Skips    []Message
}

// Command is one logged command with the load average when it started.
type Command struct {
	Line    string
	LoadAvg string
}

// Result is one benchmark's metrics: unit → value. A benchmark run more
// than once (-count) keeps the median of each metric.
type Result struct {
	Name    string // without the -GOMAXPROCS suffix: BenchmarkMysqlslapSelect/point
	Pkg     string
	Runs    int
	Metrics map[string]float64
	samples map[string][]float64
}

// Message is a failure or skip with the lines the test printed under it.
type Message struct {
	Name  string // a benchmark, or a package for a package-level failure
	Pkg   string
	Lines []string
}

var (
	// benchLineRE is a result line: name, optional -procs, iterations, metrics.
	benchStartRE = regexp.MustCompile(`^(Benchmark\S*?)(?:-\d+)?\s+(.*)$`)
	// resultRE is the iterations and metrics at the end of a result line.
	resultRE  = regexp.MustCompile(`(?:^|\s)(\d+)((?:\t\s*-?[0-9.]+(?:e[-+]?\d+)? \S+)+)\s*$`)
	metricRE  = regexp.MustCompile(`(-?[0-9.]+(?:e[-+]?\d+)?) (\S+)`)
	statusRE  = regexp.MustCompile(`^\s*--- (FAIL|SKIP): (\S+?)(?:-\d+)?(?: \(.*\))?$`)
	pkgFailRE = regexp.MustCompile(`^FAIL\s+(\S+)\s+(.*)$`)
)

// Parse reads the log of a bench run: go test -bench output with mark lines.
func Parse(r io.Reader) (*Run, error) {
	p := &parser{run: &Run{Marks: map[string]string{}}, byName: map[string]*Result{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		p.line(strings.TrimRight(sc.Text(), "\r"))
	}
	for _, res := range p.run.Results {
		res.settle()
	}
	return p.run, sc.Err()
}

type parser struct {
	run     *Run
	byName  map[string]*Result
	pkg     string
	pending string   // a benchmark whose name was printed but not its results
	msg     *Message // the failure or skip whose indented lines follow
}

func (p *parser) line(l string) {
	if p.msg != nil {
		if strings.HasPrefix(l, "    ") && !statusRE.MatchString(l) {
			if len(p.msg.Lines) < maxMessageLines {
				p.msg.Lines = append(p.msg.Lines, strings.TrimSpace(l))
			}
			return
		}
		p.msg = nil
	}
	switch {
	case strings.HasPrefix(l, markPrefix):
		p.mark(strings.TrimPrefix(l, markPrefix))
	case strings.HasPrefix(l, "pkg: "):
		p.pkg, p.pending = strings.TrimPrefix(l, "pkg: "), ""
	case strings.HasPrefix(l, "cpu: "):
		if _, ok := p.run.Marks["cpu"]; !ok {
			p.run.Marks["cpu"] = strings.TrimPrefix(l, "cpu: ")
		}
	case statusRE.MatchString(l):
		p.status(statusRE.FindStringSubmatch(l))
	case pkgFailRE.MatchString(l):
		m := pkgFailRE.FindStringSubmatch(l)
		p.run.Failures = append(p.run.Failures, Message{Name: m[1], Pkg: m[1], Lines: []string{l}})
	case strings.HasPrefix(l, "Benchmark"):
		m := benchStartRE.FindStringSubmatch(l)
		if m == nil || !p.result(m[1], m[2]) {
			p.pending = benchName(l)
		}
	case p.pending != "":
		p.result(p.pending, l)
	}
}

// benchName is the first field of a line that starts a benchmark, without
// its -procs suffix.
func benchName(l string) string {
	name, _, _ := strings.Cut(strings.TrimSpace(l), "\t")
	name = strings.Fields(name + " ")[0]
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// mark records a "benchdoc: key value" line.
func (p *parser) mark(s string) {
	key, val, _ := strings.Cut(s, " ")
	val = strings.TrimSpace(val)
	switch key {
	case "command":
		load, line, _ := strings.Cut(val, " | ")
		p.run.Commands = append(p.run.Commands, Command{Line: line, LoadAvg: load})
	default:
		p.run.Marks[key] = val
	}
}

// status starts collecting the lines under a --- FAIL or --- SKIP.
func (p *parser) status(m []string) {
	msgs := &p.run.Skips
	if m[1] == "FAIL" {
		msgs = &p.run.Failures
	}
	*msgs = append(*msgs, Message{Name: m[2], Pkg: p.pkg})
	p.msg = &(*msgs)[len(*msgs)-1]
	p.pending = ""
}

// result parses the iterations and metrics at the end of rest and files
// them under name; it reports whether rest held results.
func (p *parser) result(name, rest string) bool {
	m := resultRE.FindStringSubmatch(rest)
	if m == nil {
		return false
	}
	res := p.byName[name]
	if res == nil {
		res = &Result{Name: name, Pkg: p.pkg, samples: map[string][]float64{}}
		p.byName[name] = res
		p.run.Results = append(p.run.Results, res)
	}
	res.Runs++
	for _, mm := range metricRE.FindAllStringSubmatch(m[2], -1) {
		if v, err := strconv.ParseFloat(mm[1], 64); err == nil {
			res.samples[mm[2]] = append(res.samples[mm[2]], v)
		}
	}
	p.pending = ""
	return true
}

// settle sets each metric to the median of its samples.
func (r *Result) settle() {
	r.Metrics = map[string]float64{}
	for unit, vs := range r.samples {
		vs = slices.Clone(vs)
		slices.Sort(vs)
		r.Metrics[unit] = vs[len(vs)/2]
	}
}

// Result returns the named benchmark's results, or nil when it did not run.
func (r *Run) Result(name string) *Result {
	for _, res := range r.Results {
		if res.Name == name {
			return res
		}
	}
	return nil
}

// Metric returns one metric of a benchmark and whether it was reported.
func (r *Run) Metric(bench, unit string) (float64, bool) {
	res := r.Result(bench)
	if res == nil {
		return 0, false
	}
	v, ok := res.Metrics[unit]
	return v, ok
}

// Failed returns the failure of a benchmark or of the package it is in.
func (r *Run) Failed(bench string) (Message, bool) {
	for _, f := range r.Failures {
		if f.Name == bench || strings.HasPrefix(bench, f.Name+"/") {
			return f, true
		}
	}
	return Message{}, false
}

// Skipped returns the skip of a benchmark (or of its parent).
func (r *Run) Skipped(bench string) (Message, bool) {
	for _, s := range r.Skips {
		if s.Name == bench || strings.HasPrefix(bench, s.Name+"/") {
			return s, true
		}
	}
	return Message{}, false
}
