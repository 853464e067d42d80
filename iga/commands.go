package iga

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// This file holds the command patterns of an entitlement's `commands:`
// (docs/registry.md, "Commands"): how a pattern is validated, and how an
// exec command line is matched against one.
//
// The target's shell runs the command line, so a pattern's `*` must never
// let the client add shell syntax. A `*` therefore matches a short, closed
// set of characters — letters, digits and _ . , : = + @ % - — one or more
// of them, never whitespace, '/', quotes, backslashes, glob or shell
// characters. Everything else in a pattern is literal and matches itself
// byte for byte; nothing is normalised.

// MaxCommandPattern is the longest command pattern a registry accepts, in bytes.
const MaxCommandPattern = 4096

// maxMatchedCommand is the longest exec command line that is matched at
// all. Linux refuses a single argument (the shell's -c string) longer
// than 128 KiB, so a longer line could not run anyway; refusing it
// outright keeps matching cheap.
const maxMatchedCommand = 128 << 10

// wildcardChars is what a `*` may match: letters, digits and characters
// that no POSIX shell, bash or zsh gives a meaning to inside a word.
const wildcardChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,:=+@%-"

var wildcardSet = func() (set [256]bool) {
	for i := range len(wildcardChars) {
		set[wildcardChars[i]] = true
	}
	return set
}()

// CheckCommandPattern reports what is wrong with a command pattern, nil
// when it is usable: not empty, at most MaxCommandPattern bytes of UTF-8
// without control characters, no leading or trailing whitespace, no `**`,
// and a first word (the program) written out without `*`.
func CheckCommandPattern(p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return fmt.Errorf("the command is empty; write the command line the identity may run")
	case strings.Trim(p, "* ") == "":
		return fmt.Errorf("%s alone would allow any command; write the program and its arguments", AuditQuote(p))
	case len(p) > MaxCommandPattern:
		return fmt.Errorf("the command is %d bytes, longer than %d", len(p), MaxCommandPattern)
	case !utf8.ValidString(p):
		return fmt.Errorf("%s is not valid UTF-8", AuditQuote(p))
	case strings.ContainsFunc(p, isControl):
		return fmt.Errorf("%s contains a control character (newline, tab, NUL…); one command per entry, spaces between words", AuditQuote(p))
	case strings.TrimSpace(p) != p:
		return fmt.Errorf("%s starts or ends with whitespace; commands are matched exactly, remove it", AuditQuote(p))
	case strings.Contains(p, "**"):
		return fmt.Errorf("%s has ** ; one * already matches one or more characters", AuditQuote(p))
	}
	if prog, _, _ := strings.Cut(p, " "); strings.Contains(prog, "*") {
		return fmt.Errorf("%s has * in the program; write the program out (a * there would choose what runs)", AuditQuote(p))
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) }

// CommandMatches reports whether an exec command line is allowed by a
// pattern. A pattern without `*` matches only the identical string. In a
// pattern with `*`, the literal parts match themselves exactly and each
// `*` matches one or more characters of wildcardChars; a `*` that begins
// a word (after a space) does not match a leading '-', so a wildcard
// argument never becomes an option. A command with a "." or ".." path
// component is never matched by a pattern with `*` (it would leave the
// directory the pattern names), nor is one longer than 128 KiB.
func CommandMatches(pattern, command string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == command
	}
	if len(command) > maxMatchedCommand || hasDotComponent(command) {
		return false
	}
	lits := strings.Split(pattern, "*")
	if !strings.HasPrefix(command, lits[0]) {
		return false
	}
	// reach[i]: some way of matching the pattern so far ends at command[i].
	reach := make([]bool, len(command)+1)
	reach[len(lits[0])] = true
	for i, lit := range lits[1:] {
		wordStart := strings.HasSuffix(lits[i], " ")
		reach = afterLiteral(command, afterStar(command, reach, wordStart), lit)
	}
	return reach[len(command)]
}

// afterStar returns where a `*` can end, given where it can start: one or
// more wildcard characters on from each start.
func afterStar(s string, start []bool, wordStart bool) []bool {
	end := make([]bool, len(s)+1)
	run := false // inside a stretch of wildcard characters entered from a start
	for i := 0; i < len(s); i++ {
		if !wildcardSet[s[i]] {
			run = false
			continue
		}
		if start[i] && !(wordStart && s[i] == '-') {
			run = true
		}
		if run {
			end[i+1] = true
		}
	}
	return end
}

// afterLiteral returns where lit ends when it starts at a reachable index.
func afterLiteral(s string, at []bool, lit string) []bool {
	out := make([]bool, len(s)+1)
	for i, ok := range at {
		if ok && strings.HasPrefix(s[i:], lit) {
			out[i+len(lit)] = true
		}
	}
	return out
}

// hasDotComponent reports whether a path component of any word is "." or
// "..": a wildcard standing for it would climb out of a directory.
func hasDotComponent(s string) bool {
	for _, c := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ' ' || isControl(r) }) {
		if c == "." || c == ".." {
			return true
		}
	}
	return false
}

// MatchCommand returns the first of patterns that allows command.
func MatchCommand(patterns []string, command string) (string, bool) {
	for _, p := range patterns {
		if CommandMatches(p, command) {
			return p, true
		}
	}
	return "", false
}

// stdinInterpreters are programs that, run with no program argument or
// with "-" or "-s", read the program to run from stdin: allowing them
// allows whatever the client sends there.
var stdinInterpreters = []string{
	"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh",
	"python", "python2", "python3", "perl", "ruby", "node", "php", "lua", "tclsh", "pwsh", "osascript",
}

// StdinInterpreter reports whether a command pattern runs an interpreter
// that reads its program from stdin (`bash`, `sh -s`, `python3 -`), and
// names it. The exec recording keeps what arrived on stdin, but the
// entitlement itself no longer says what may run.
func StdinInterpreter(pattern string) (string, bool) {
	words := strings.Fields(pattern)
	if len(words) == 0 {
		return "", false
	}
	prog := path.Base(words[0])
	if !slices.Contains(stdinInterpreters, strings.TrimRight(prog, "0123456789.")) && !slices.Contains(stdinInterpreters, prog) {
		return "", false
	}
	if len(words) == 1 || slices.Contains(words[1:], "-") || slices.Contains(words[1:], "-s") {
		return prog, true
	}
	return "", false
}

// SingleCommand is the one command an entitlement allows, when it allows
// exactly one command line without `*`: the certificate's force-command.
func SingleCommand(e Entitlement) (string, bool) {
	if len(e.Commands) == 1 && !strings.Contains(e.Commands[0], "*") {
		return e.Commands[0], true
	}
	return "", false
}
