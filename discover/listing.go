package discover

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

// listingHeader starts the output of the listing command; another first
// line means the command did not run as written (a login shell that is no
// POSIX shell, a target that prints a banner on stdout).
const listingHeader = "sallyport-discovery 1"

// maxComment is how much of a key's comment is kept.
const maxComment = 100

// scriptTemplate lists /etc/passwd (through getent, so directory users
// count too) and, for each account with a login shell, its authorized_keys
// read up to a cap, framed one line at a time:
//
//	u <passwd entry>           every account
//	k <login> <size in bytes>  its keys file follows, each line as "| line"
//	e <login>                  end of that file
//	n <login>                  no keys file
//	d <login>                  a keys file the login may not read
//
// It only reads; regular files only, so a FIFO or device cannot stall it.
const scriptTemplate = `c=%d
echo '` + listingHeader + `'
(getent passwd || cat /etc/passwd) 2>/dev/null | while IFS= read -r l; do
  printf 'u %%s\n' "$l"
  case ${l##*:} in ''|*/nologin|*/false|*/sync|*/halt|*/shutdown) continue;; esac
  n=${l%%%%:*}; h=${l%%:*}; h=${h##*:}
  f=%s
  if [ -f "$f" ] && [ -r "$f" ]; then
    printf 'k %%s %%s\n' "$n" "$(wc -c < "$f")"
    head -c "$c" "$f" | sed 's/^/| /'
    printf '\ne %%s\n' "$n"
  else
    p=$f; while [ "$p" != / ] && [ ! -e "$p" ]; do p=${p%%/*}; [ -n "$p" ] || p=/; done
    if [ "$p" != "$f" ] && [ -x "$p" ]; then printf 'n %%s\n' "$n"; else printf 'd %%s\n' "$n"; fi
  fi
done
`

// Script is the listing command for a keys file path template (as sshd's
// AuthorizedKeysFile: %h home, %u login, %% percent; relative to the
// home) and a per-file cap in bytes.
func Script(keysFile string, capBytes int) (string, error) {
	word, err := keysFileWord(keysFile)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(scriptTemplate, capBytes, word), nil
}

// keysFileWord turns the path template into one shell word that expands
// $h and $n and nothing else.
func keysFileWord(tmpl string) (string, error) {
	if tmpl == "" {
		tmpl = DefaultKeysFile
	}
	if strings.ContainsAny(tmpl, "\x00\n") {
		return "", fmt.Errorf("authorized keys file %q: contains a NUL or newline", tmpl)
	}
	if !strings.HasPrefix(tmpl, "/") && !strings.HasPrefix(tmpl, "%h") {
		tmpl = "%h/" + tmpl
	}
	var b strings.Builder
	lit := func(s string) {
		if s != "" {
			b.WriteString("'" + strings.ReplaceAll(s, "'", `'\''`) + "'")
		}
	}
	for {
		i := strings.IndexByte(tmpl, '%')
		if i < 0 {
			lit(tmpl)
			return b.String(), nil
		}
		lit(tmpl[:i])
		if i+1 >= len(tmpl) {
			return "", fmt.Errorf("authorized keys file: a lone %% at its end")
		}
		switch tmpl[i+1] {
		case 'h':
			b.WriteString(`"$h"`)
		case 'u':
			b.WriteString(`"$n"`)
		case '%':
			lit("%")
		default:
			return "", fmt.Errorf("authorized keys file: %%%c is not supported (use %%h, %%u or %%%%)", tmpl[i+1])
		}
		tmpl = tmpl[i+2:]
	}
}

// listing is the parser's state.
type listing struct {
	capBytes int
	found    Found
	index    map[string]int // login → its account in found
	file     string         // login whose keys are being read; "" between files
	size     int64
	lines    [][]byte
	unknown  int
}

// ParseListing parses the listing command's output: the accounts with a
// login shell and the keys of each, files bigger than capBytes reported
// as cut (their last, partial line dropped), lines that are no key
// reported, option values left out.
func ParseListing(out []byte, capBytes int) (Found, error) {
	first, rest, _ := bytes.Cut(out, []byte("\n"))
	if string(bytes.TrimSpace(first)) != listingHeader {
		return Found{}, fmt.Errorf("the output does not start with %q (is the discovery login's shell a POSIX shell?): %.80q", listingHeader, first)
	}
	l := &listing{capBytes: capBytes, index: map[string]int{}}
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		l.line(line)
	}
	if l.file != "" {
		l.endFile(true) // output cut in the middle of a file
	}
	if l.unknown > 0 {
		l.found.Notes = append(l.found.Notes, fmt.Sprintf("%d line(s) of the listing were not understood and skipped", l.unknown))
	}
	return l.found, nil
}

func (l *listing) line(line []byte) {
	if body, ok := bytes.CutPrefix(line, []byte("| ")); ok && l.file != "" {
		l.lines = append(l.lines, body)
		return
	}
	if l.file != "" && (len(line) == 0 || string(line) == "|") {
		if len(line) > 0 {
			l.lines = append(l.lines, nil)
		}
		return
	}
	tag, arg, _ := strings.Cut(string(line), " ")
	switch {
	case tag == "u":
		l.account(arg)
	case tag == "k" && l.file == "":
		l.startFile(arg)
	case tag == "e" && l.file != "":
		l.endFile(false)
	case tag == "d":
		l.problem(arg, "authorized_keys is not readable by the discovery login")
	case tag == "n", len(line) == 0:
	default:
		l.unknown++
	}
}

// account adds the account of a passwd entry when its shell is a login
// shell.
func (l *listing) account(entry string) {
	f := strings.Split(entry, ":")
	if len(f) != 7 || f[0] == "" || !loginShell(f[6]) {
		return
	}
	if _, dup := l.index[f[0]]; dup {
		return // getent lists a local account before a directory one
	}
	l.index[f[0]] = len(l.found.Accounts)
	l.found.Accounts = append(l.found.Accounts, iga.DiscoveredAccount{Account: f[0], Login: f[0],
		Attributes: []string{"uid " + clean(f[2], 12), "shell " + clean(f[6], 64)}})
}

// loginShell mirrors the script's test.
func loginShell(shell string) bool {
	if shell == "" {
		return false
	}
	base := shell[strings.LastIndexByte(shell, '/')+1:]
	return !slices.Contains([]string{"nologin", "false", "sync", "halt", "shutdown"}, base)
}

func (l *listing) startFile(arg string) {
	login, size, _ := strings.Cut(arg, " ")
	l.file, l.lines = login, nil
	l.size, _ = strconv.ParseInt(strings.TrimSpace(size), 10, 64)
}

// endFile parses the keys of the file just read; truncated says the
// output ended inside it.
func (l *listing) endFile(truncated bool) {
	login, lines := l.file, l.lines
	l.file, l.lines = "", nil
	i, ok := l.index[login]
	if !ok {
		return
	}
	cut := truncated || l.size > int64(l.capBytes)
	if cut {
		l.problem(login, fmt.Sprintf("authorized_keys is %d bytes, more than the %d read: cut, keys past it are missing", l.size, l.capBytes))
		if len(lines) > 0 {
			lines = lines[:len(lines)-1] // may end mid-key
		}
	}
	a := &l.found.Accounts[i]
	for n, line := range lines {
		k, err := parseKeyLine(line)
		if err != nil {
			a.Problems = append(a.Problems, fmt.Sprintf("authorized_keys line %d is not a key: %v", n+1, err))
		} else if k != nil {
			a.Keys = append(a.Keys, *k)
		}
	}
}

func (l *listing) problem(login, msg string) {
	if i, ok := l.index[login]; ok {
		l.found.Accounts[i].Problems = append(l.found.Accounts[i].Problems, msg)
	}
}

// parseKeyLine parses one authorized_keys line; nil for a blank line or a
// comment.
func parseKeyLine(line []byte) (*iga.DiscoveredKey, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return nil, nil
	}
	pub, comment, options, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, err
	}
	k := &iga.DiscoveredKey{Type: pub.Type(), Fingerprint: ssh.FingerprintSHA256(pub), Comment: clean(comment, maxComment)}
	for _, o := range options {
		name, _, _ := strings.Cut(o, "=")
		k.Options = append(k.Options, clean(strings.ToLower(name), 32))
	}
	return k, nil
}

// clean keeps printable characters of s, at most n runes: what the target
// wrote reaches terminals and the registry.
func clean(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if n == 0 {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			n--
		}
	}
	return b.String()
}
