// Command benchdoc writes docs/benchmarks.md from the log of `make bench`.
//
// make bench runs, in this order:
//
//	benchdoc mark start > LOG            machine facts, time, load average
//	benchdoc command go test ... >> LOG  the command line as run, then
//	go test ... 2>&1 | tee -a LOG        its output, for each command
//	benchdoc mark end >> LOG             time and load average
//	benchdoc render -o docs/benchmarks.md LOG
//
// render reads the go test -bench output, fills the template
// (benchmarks.md.tmpl, embedded: the prose is edited there) and judges each
// goal of the issues. It writes the document even when a benchmark failed,
// naming the failure, and then exits 1 so that make bench fails too.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  benchdoc mark start|end         print machine facts and load average as log lines
  benchdoc command ARG...         print the command line (as a shell would run it) as a log line
  benchdoc render [-o FILE] LOG   write the document from the log (stdout without -o)`

// errFailures is returned by render after writing a document that names
// failed benchmarks.
var errFailures = errors.New("some benchmarks failed; see the document's last section")

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "mark":
		return mark(args[1:], stdout)
	case "command":
		if len(args) < 2 {
			return errors.New(usage)
		}
		fmt.Fprintf(stdout, "%scommand %s | %s\n", markPrefix, loadAvg(), shellJoin(args[1:]))
		return nil
	case "render":
		return render(args[1:], stdout)
	}
	return errors.New(usage)
}

func mark(args []string, stdout io.Writer) error {
	var marks [][2]string
	switch strings.Join(args, " ") {
	case "start":
		marks = startMarks()
	case "end":
		marks = endMarks()
	default:
		return errors.New(usage)
	}
	for _, m := range marks {
		fmt.Fprintf(stdout, "%s%s %s\n", markPrefix, m[0], m[1])
	}
	return nil
}

func render(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	out := fs.String("o", "", "write the document to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(usage)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("read bench log: %w", err)
	}
	defer f.Close()
	r, err := Parse(f)
	if err != nil {
		return fmt.Errorf("parse bench log %s: %w", fs.Arg(0), err)
	}
	var doc bytes.Buffer
	if err := Render(&doc, r); err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(doc.Bytes())
	} else {
		err = os.WriteFile(*out, doc.Bytes(), 0o644)
	}
	if err != nil {
		return fmt.Errorf("write document: %w", err)
	}
	if len(r.Failures) > 0 {
		return errFailures
	}
	return nil
}

// plainArg needs no quoting in a POSIX shell.
var plainArg = regexp.MustCompile(`^[A-Za-z0-9_./=:,+@%-]+$`)

// shellJoin quotes args as a shell would need them typed.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if plainArg.MatchString(a) {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
