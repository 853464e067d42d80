package ssh

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// scpCommand is the remote end of a legacy scp transfer (`scp -O`), as
// OpenSSH's scp asks the target's shell to run it:
//
//	scp [-v] [-r] [-p] [-d] -t|-f [--] PATH
//
// Each flag at most once, in any order, one space between words, exactly
// one of -t (the client sends files) and -f (it fetches them), and one
// path. The target's shell runs the line, so a command that fits this
// grammar is a file transfer and nothing else; the sftp entitlement admits
// only such a line.
type scpCommand struct {
	// Upload is true for -t (files go to the target), false for -f.
	Upload    bool
	Recursive bool // -r
	Preserve  bool // -p
	Dir       bool // -d: the target must be a directory
	Verbose   bool // -v
	// Path is the path as the shell will see it, unquoted.
	Path string
}

// maxSCPCommand bounds the command line: a path of PATH_MAX and the flags.
const maxSCPCommand = 4096 + 64

// errNotSCP means the command does not start like scp at all: it is an
// exec request for whatever it names, not a file transfer.
var errNotSCP = errors.New("not an scp command")

// parseSCPCommand reads command by the grammar above. It returns errNotSCP
// when command does not begin with "scp ", and another error, which says
// what is wrong, when it does but is not exactly a transfer.
func parseSCPCommand(command string) (scpCommand, error) {
	var c scpCommand
	rest, ok := strings.CutPrefix(command, "scp ")
	if !ok {
		return c, errNotSCP
	}
	if len(command) > maxSCPCommand {
		return c, fmt.Errorf("the command line is longer than %d bytes", maxSCPCommand)
	}
	mode := false
	for {
		word, after, found := strings.Cut(rest, " ")
		if !found || !strings.HasPrefix(word, "-") {
			break
		}
		if word == "--" {
			rest = after
			return c.withPath(mode, rest, true)
		}
		if err := c.flag(word, &mode); err != nil {
			return c, err
		}
		rest = after
	}
	return c.withPath(mode, rest, false)
}

// flag sets one option word of the command line.
func (c *scpCommand) flag(word string, mode *bool) error {
	seen := func(b *bool) error {
		if *b {
			return fmt.Errorf("the option %s is given twice", word)
		}
		*b = true
		return nil
	}
	switch word {
	case "-t", "-f":
		if *mode {
			return errors.New("it gives more than one of -t and -f")
		}
		*mode, c.Upload = true, word == "-t"
		return nil
	case "-r":
		return seen(&c.Recursive)
	case "-p":
		return seen(&c.Preserve)
	case "-d":
		return seen(&c.Dir)
	case "-v":
		return seen(&c.Verbose)
	}
	return fmt.Errorf("the option %.32q is not one scp sends to its remote end", word)
}

// withPath checks the path word that ends the line. afterDashes is true
// when "--" came before it, as OpenSSH sends for paths starting with '-'.
func (c scpCommand) withPath(mode bool, word string, afterDashes bool) (scpCommand, error) {
	if !mode {
		return c, errors.New("it has neither -t nor -f")
	}
	path, err := scpPath(word)
	if err != nil {
		return c, err
	}
	if strings.HasPrefix(path, "-") && !afterDashes {
		return c, errors.New("a path starting with '-' must follow --")
	}
	c.Path = path
	return c, nil
}

// scpPlain are the characters a path may hold without quotes: none of them
// means anything to a POSIX shell (no globs, no expansions, no word or
// command separators). A leading '~' expands to a home directory, which is
// still a path.
const scpPlain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/~+-=@%:,"

// scpPath returns the path that word stands for: plain characters only,
// or one single-quoted string (inside which the shell expands nothing)
// holding printable text. Anything else — several words, other quoting,
// control characters, line or paragraph separators, invalid UTF-8 — is
// refused.
func scpPath(word string) (string, error) {
	switch {
	case word == "":
		return "", errors.New("it names no path")
	case !utf8.ValidString(word):
		return "", errors.New("the path is not valid UTF-8")
	case strings.Trim(word, scpPlain) == "":
		return word, nil
	}
	inner, ok := strings.CutPrefix(word, "'")
	if ok {
		inner, ok = strings.CutSuffix(inner, "'")
	}
	if !ok || inner == "" || strings.Contains(inner, "'") {
		return "", errors.New("the path must be one word of letters, digits and ._/~+-=@%:, or one single-quoted string; several paths, spaces, globs and shell syntax are not a file transfer")
	}
	if i := strings.IndexFunc(inner, notPrintablePath); i >= 0 {
		r, _ := utf8.DecodeRuneInString(inner[i:])
		return "", fmt.Errorf("the path holds the character %U, which a file transfer does not need", r)
	}
	return inner, nil
}

// notPrintablePath reports the runes a quoted path may not hold: control
// and format characters (NUL, newline, CR, tab, bidi overrides) and the
// Unicode line and paragraph separators.
func notPrintablePath(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}
