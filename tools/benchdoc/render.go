package main

import (
	_ "embed"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// docTemplate is docs/benchmarks.md with the figures left out: the prose
// that explains each comparison lives here, not in the generated file.
//
//go:embed benchmarks.md.tmpl
var docTemplate string

// Render writes the document for run r.
func Render(w io.Writer, r *Run) error {
	t, err := template.New("benchmarks.md").Funcs(template.FuncMap{
		"m":        r.formatMetric,
		"diff":     r.formatDiff,
		"ms":       r.formatMillis,
		"overhead": func() string { return orDash(recordingOverhead(r)) },
		"sec":      func(bench string) string { v, ok := r.Metric(bench, "ns/op"); return orDash(v/1e9, ok) },
		"status":   r.status,
		"machine":  r.machine,
		"commands": r.commands,
		"goals":    func() string { return goalTable(Judge(r)) },
		"all":      r.all,
		"rows":     r.rows,
		"problems": r.problems,
	}).Parse(docTemplate)
	if err != nil {
		return fmt.Errorf("parse template: %w", err)
	}
	return t.Execute(w, r)
}

// formatDiff is one metric of bench less another, with one decimal, or
// "—" when either is missing.
func (r *Run) formatDiff(bench, unit, minus string) string {
	a, ok := r.Metric(bench, unit)
	b, ok2 := r.Metric(bench, minus)
	if !ok || !ok2 {
		return "—"
	}
	return fmt.Sprintf("%.1f", a-b)
}

// formatMetric is a metric with digits decimals and thousands separated,
// or "—" when the benchmark did not report it.
func (r *Run) formatMetric(bench, unit string, digits int) string {
	v, ok := r.Metric(bench, unit)
	if !ok {
		return "—"
	}
	return number(v, digits)
}

// formatMillis is a metric counted in nanoseconds, shown in milliseconds.
func (r *Run) formatMillis(bench, unit string) string {
	v, ok := r.Metric(bench, unit)
	return orDash(v/1e6, ok)
}

func orDash(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	return number(v, 2)
}

// number formats v with digits decimals and a thin separator every three
// integer digits (15,383).
func number(v float64, digits int) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', digits, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}

// status is empty when bench reported figures, else a note saying why not.
func (r *Run) status(bench string) string {
	if r.Result(bench) != nil {
		return ""
	}
	return fmt.Sprintf("\n\n`%s`: %s.", bench, r.Absence(bench))
}

// machine is the table of machine facts and load averages.
func (r *Run) machine() string {
	rows := [][2]string{
		{"CPU", r.Marks["cpu"]},
		{"cores", r.Marks["cores"]},
		{"memory", r.Marks["memory"]},
		{"OS", r.Marks["os"]},
		{"kernel", r.Marks["kernel"]},
		{"Go", r.Marks["go"]},
		{"servers and clients", r.Marks["peers"]},
		{"commit", r.Marks["commit"]},
		{"started", r.Marks["start"]},
		{"took", r.took()},
		{"load average at start (1, 5, 15 min)", r.Marks["loadavg-start"]},
		{"load average at end", r.Marks["loadavg-end"]},
	}
	var b strings.Builder
	b.WriteString("| | |\n|---|---|\n")
	for _, row := range rows {
		if row[1] == "" {
			row[1] = "—"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], cell(row[1]))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// took is the wall time between the start and end marks.
func (r *Run) took() string {
	start, err1 := time.Parse(time.RFC3339, r.Marks["start"])
	end, err2 := time.Parse(time.RFC3339, r.Marks["end"])
	if err1 != nil || err2 != nil {
		return ""
	}
	return end.Sub(start).Round(time.Second).String()
}

// commands lists the commands as run, each with the load average it started at.
func (r *Run) commands() string {
	if len(r.Commands) == 0 {
		return "(no commands logged)"
	}
	var b strings.Builder
	b.WriteString("| load average at start | command |\n|---|---|\n")
	for _, c := range r.Commands {
		fmt.Fprintf(&b, "| %s | `%s` |\n", cell(c.LoadAvg), cell(c.Line))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// goalTable is one row per goal with this run's figure, a peer's figure
// where the goal has one, and the verdict.
func goalTable(vs []Verdict) string {
	var b strings.Builder
	b.WriteString("| issue | goal | this run | peer, same run | verdict |\n|---|---|---|---|---|\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", v.Issue, cell(v.What), v.Figure, v.Peer, cell(v.Status))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// all lists every benchmark of the run with every metric it reported, so
// nothing a run measured is dropped: the sections above pick from these.
func (r *Run) all() string {
	if len(r.Results) == 0 {
		return "None."
	}
	var b strings.Builder
	b.WriteString("| benchmark | package | figures |\n|---|---|---|\n")
	for _, res := range r.Results {
		var figs []string
		for _, u := range sortedUnits(res.Metrics) {
			v := res.Metrics[u]
			if u == "ns/op" {
				figs = append(figs, opTime(v)+"/op")
				continue
			}
			figs = append(figs, number(v, digitsFor(v))+" "+u)
		}
		name := "`" + res.Name + "`"
		if !isKnown(res.Name) {
			name += " (not in the sections above)"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", name, strings.TrimPrefix(res.Pkg, modulePath), cell(strings.Join(figs, ", ")))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// opTime is a time per operation in nanoseconds, to three significant digits.
func opTime(ns float64) string {
	d, unit := time.Duration(ns), time.Duration(1)
	for d >= 1000*unit {
		unit *= 10
	}
	return d.Round(unit).String()
}

// rows is a table row per variant of a benchmark family (every result
// whose name starts with prefix): its MB/s, CPU per MB and other metrics.
func (r *Run) rows(prefix string) string {
	var b strings.Builder
	for _, res := range r.Results {
		name, ok := strings.CutPrefix(res.Name, prefix)
		if !ok {
			continue
		}
		var other []string
		for _, u := range sortedUnits(res.Metrics) {
			if u != "MB/s" && u != "cpu-ns/MB" && u != "ns/op" {
				other = append(other, number(res.Metrics[u], digitsFor(res.Metrics[u]))+" "+u)
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", name, r.formatMetric(res.Name, "MB/s", 1),
			r.formatMillis(res.Name, "cpu-ns/MB"), cell(strings.Join(other, ", ")))
	}
	if b.Len() == 0 {
		return fmt.Sprintf("| `%s…` | not run | | |", prefix)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func sortedUnits(m map[string]float64) []string {
	units := make([]string, 0, len(m))
	for u := range m {
		units = append(units, u)
	}
	slices.Sort(units)
	return units
}

// digitsFor keeps about three significant digits.
func digitsFor(v float64) int {
	switch a := math.Abs(v); {
	case a >= 100 || a == 0:
		return 0
	case a >= 10:
		return 1
	case a >= 1:
		return 2
	default:
		return 3
	}
}

// problems lists failures and skips with what the tests printed.
func (r *Run) problems() string {
	if len(r.Failures) == 0 && len(r.Skips) == 0 {
		return "None: every benchmark ran and passed."
	}
	var b strings.Builder
	for _, group := range []struct {
		what string
		msgs []Message
	}{{"failed", r.Failures}, {"skipped", r.Skips}} {
		for _, m := range group.msgs {
			fmt.Fprintf(&b, "- `%s` %s", m.Name, group.what)
			if len(m.Lines) > 0 {
				b.WriteString(":\n\n")
				for _, l := range m.Lines {
					b.WriteString("      " + l + "\n")
				}
			}
			b.WriteString("\n")
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// cell makes s safe inside a markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
