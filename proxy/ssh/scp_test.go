package ssh

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// scpTurn is bytes one side of an scp transfer sends: the client (c) or
// the target (t).
type scpTurn struct {
	from  byte // 'c' or 't'
	bytes string
}

func shaHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// scpSummary is one recorded event, in short: "op path mode size/bytes
// sha=… ok|error", or "note: text".
func scpSummary(ev recorder.Event) string {
	if ev.Type == recorder.EventNote {
		return "note: " + ev.Text
	}
	s := ev.Op + " " + ev.Path
	if ev.Mode != "" {
		s += " " + ev.Mode
	}
	if ev.Size != nil {
		s += fmt.Sprintf(" %d/%d", ev.Bytes, *ev.Size)
	}
	if ev.SHA256 != "" {
		s += " sha=" + ev.SHA256
	}
	switch {
	case ev.Outcome == nil:
		s += " no-outcome"
	case ev.Outcome.Error == "":
		s += " ok"
	default:
		s += " error=" + ev.Outcome.Error
	}
	return s
}

func runSCP(t *testing.T, command string, turns []scpTurn, piece int) []string {
	t.Helper()
	cmd, err := parseSCPCommand(command)
	require.NoError(t, err)
	var got []string
	p := newSCPParser(func(ev recorder.Event) {
		assert.Equal(t, 7, *ev.Channel)
		if ev.Type == recorder.EventSCP {
			assert.Equal(t, map[bool]string{true: "upload", false: "download"}[cmd.Upload], ev.Direction)
		}
		got = append(got, scpSummary(ev))
	}, 7, cmd)
	for _, turn := range turns {
		feed := p.fromClient
		if turn.from == 't' {
			feed = p.fromServer
		}
		feedInPieces(feed, []byte(turn.bytes), piece)
	}
	p.flush()
	return got
}

func TestSCPParser(t *testing.T) {
	hello, abc := shaHex("hello"), shaHex("abc")
	tests := []struct {
		name, command string
		turns         []scpTurn
		want          []string
	}{
		{"upload two files into a directory", "scp -d -t /srv", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 5 a.txt\n"}, {'t', "\x00"}, {'c', "hello\x00"}, {'t', "\x00"},
			{'c', "C0600 3 b\n"}, {'t', "\x00"}, {'c', "abc\x00"}, {'t', "\x00"},
		}, []string{"upload /srv/a.txt 0644 5/5 sha=" + hello + " ok", "upload /srv/b 0600 3/3 sha=" + abc + " ok"}},
		{"upload to a file path", "scp -t /srv/renamed.txt", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 5 a.txt\n"}, {'t', "\x00"}, {'c', "hello\x00"}, {'t', "\x00"},
		}, []string{"upload /srv/renamed.txt 0644 5/5 sha=" + hello + " ok"}},
		{"upload into the home directory", "scp -t .", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 0 empty\n"}, {'t', "\x00"}, {'c', "\x00"}, {'t', "\x00"},
		}, []string{"upload ./empty 0644 0/0 sha=" + shaHex("") + " ok"}},
		{"upload a tree with times", "scp -r -p -t /srv/", []scpTurn{
			{'t', "\x00"}, {'c', "T1700000000 0 1700000000 0\n"}, {'t', "\x00"}, {'c', "D0755 0 d\n"}, {'t', "\x00"},
			{'c', "T1700000000 0 1700000000 0\n"}, {'t', "\x00"}, {'c', "C0640 5 x\n"}, {'t', "\x00"}, {'c', "hello\x00"}, {'t', "\x00"},
			{'c', "D0700 0 e\n"}, {'t', "\x00"}, {'c', "E\n"}, {'t', "\x00"},
			{'c', "E\n"}, {'t', "\x00"}, {'c', "C0644 3 top\n"}, {'t', "\x00"}, {'c', "abc\x00"}, {'t', "\x00"},
		}, []string{"mkdir /srv/d 0755 ok", "upload /srv/d/x 0640 5/5 sha=" + hello + " ok", "mkdir /srv/d/e 0700 ok",
			"upload /srv/top 0644 3/3 sha=" + abc + " ok"}},
		{"download a file", "scp -f /srv/a.txt", []scpTurn{
			{'c', "\x00"}, {'t', "C0644 5 a.txt\n"}, {'c', "\x00"}, {'t', "hello\x00"}, {'c', "\x00"},
		}, []string{"download /srv/a.txt 0644 5/5 sha=" + hello + " ok"}},
		{"download a tree", "scp -r -f -- -dir", []scpTurn{
			{'c', "\x00"}, {'t', "D0755 0 -dir\n"}, {'c', "\x00"}, {'t', "C0644 5 x\n"}, {'c', "\x00"}, {'t', "hello\x00"}, {'c', "\x00"},
			{'t', "E\n"}, {'c', "\x00"},
		}, []string{"mkdir -dir 0755 ok", "download -dir/x 0644 5/5 sha=" + hello + " ok"}},
		{"download of a missing file", "scp -f /srv/nope", []scpTurn{
			{'c', "\x00"}, {'t', "\x01scp: /srv/nope: No such file or directory\n"},
		}, []string{"download /srv/nope error=scp: /srv/nope: No such file or directory"}},
		{"upload into no directory", "scp -d -t /nodir", []scpTurn{
			{'t', "\x01scp: /nodir: No such file or directory\n"},
		}, []string{"upload /nodir error=scp: /nodir: No such file or directory"}},
		{"the target refuses one file, takes the next", "scp -d -t /srv", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 5 a\n"}, {'t', "\x01scp: /srv/a: Permission denied\n"},
			{'c', "C0644 3 b\n"}, {'t', "\x00"}, {'c', "abc\x00"}, {'t', "\x00"},
		}, []string{"upload /srv/a 0644 0/5 error=scp: /srv/a: Permission denied", "upload /srv/b 0644 3/3 sha=" + abc + " ok"}},
		{"the target refuses a directory", "scp -r -t /srv", []scpTurn{
			{'t', "\x00"}, {'c', "D0755 0 d\n"}, {'t', "\x01scp: /srv/d: Permission denied\n"},
			{'c', "C0644 3 b\n"}, {'t', "\x00"}, {'c', "abc\x00"}, {'t', "\x00"},
		}, []string{"mkdir /srv/d 0755 error=scp: /srv/d: Permission denied", "upload /srv/b 0644 3/3 sha=" + abc + " ok"}},
		{"the target fails to write", "scp -t /srv/a", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 3 a\n"}, {'t', "\x00"}, {'c', "abc\x00"}, {'t', "\x01scp: /srv/a: No space left on device\n"},
		}, []string{"upload /srv/a 0644 3/3 sha=" + abc + " error=scp: /srv/a: No space left on device"}},
		{"the source fails to read", "scp -f /srv/a", []scpTurn{
			{'c', "\x00"}, {'t', "C0644 3 a\n"}, {'c', "\x00"}, {'t', "abc\x01scp: /srv/a: Input/output error\n"}, {'c', "\x00"},
		}, []string{"download /srv/a 0644 3/3 error=scp: /srv/a: Input/output error"}},
		{"cut mid-file", "scp -f /srv/a", []scpTurn{
			{'c', "\x00"}, {'t', "C0644 10 a\n"}, {'c', "\x00"}, {'t', "hello"},
		}, []string{"download /srv/a 0644 5/10 error=incomplete: 5 of 10 bytes",
			"note: scp download of /srv/a: the stream could not be followed from byte 16 of what the target sent: the channel ended during /srv/a"}},
		{"cut before the last answer", "scp -t /srv/a", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 3 a\n"}, {'t', "\x00"}, {'c', "abc\x00"},
		}, []string{"upload /srv/a 0644 3/3 sha=" + abc + " error=incomplete: all 3 bytes crossed but the target did not confirm them",
			"note: scp upload of /srv/a: the stream could not be followed from byte 14 of what the client sent: the channel ended during /srv/a"}},
		{"more data than announced", "scp -t /srv/a", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 3 a\n"}, {'t', "\x00"}, {'c', "abcdef\x00"},
		}, []string{"upload /srv/a 0644 3/3 sha=" + abc + " error=incomplete: all 3 bytes crossed but the target did not confirm them",
			"note: scp upload of /srv/a: the stream could not be followed from byte 13 of what the client sent: /srv/a carries more than the 3 bytes announced"}},
		{"a size that is no number", "scp -t /srv/a", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 99999999999999999999999 a\n"}, {'t', "\x00"}, {'c', "abc"},
		}, []string{`note: scp upload of /srv/a: the stream could not be followed from byte 0 of what the client sent: a control line has no size scp accepts ("99999999999999999999999")`}},
		{"a negative size", "scp -t /srv/a", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 -3 a\n"},
		}, []string{`note: scp upload of /srv/a: the stream could not be followed from byte 0 of what the client sent: a control line has no size scp accepts ("-3")`}},
		{"a name with a slash", "scp -r -t /srv", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 3 ../etc/passwd\n"},
		}, []string{`note: scp upload of /srv: the stream could not be followed from byte 0 of what the client sent: a control line names "../etc/passwd", which is no file name`}},
		{"garbage instead of a control line", "scp -t /srv/a", []scpTurn{
			{'t', "\x00"}, {'c', "GET / HTTP/1.0\n"}, {'t', "\x00"},
		}, []string{`note: scp upload of /srv/a: the stream could not be followed from byte 0 of what the client sent: "GET / HTTP/1.0" is not a control line`}},
		{"a line without end", "scp -t /srv/a", []scpTurn{
			{'t', "\x00"}, {'c', "C0644 3 " + strings.Repeat("a", 5000)},
		}, []string{"note: scp upload of /srv/a: the stream could not be followed from byte 0 of what the client sent: a line is longer than 4096 bytes"}},
		{"the source speaks out of turn", "scp -t /srv/a", []scpTurn{
			{'c', "C0644 3 a\n"}, {'t', "\x00"},
		}, []string{"note: scp upload of /srv/a: the stream could not be followed from byte 0 of what the client sent: it sent out of turn"}},
	}
	for _, tt := range tests {
		for _, piece := range []int{1 << 20, 1} {
			t.Run(fmt.Sprintf("%s/pieces of %d", tt.name, piece), func(t *testing.T) {
				got := runSCP(t, tt.command, tt.turns, piece)
				assert.Equal(t, tt.want, got)
			})
		}
	}
}

// FuzzSCPParser: any two byte streams, cut anywhere, are followed without
// panics, with bounded state and at most one note. Seeds are in
// testdata/fuzz/FuzzSCPParser.
func FuzzSCPParser(f *testing.F) {
	f.Fuzz(func(t *testing.T, command string, cli, srv []byte, piece int) {
		cmd, err := parseSCPCommand(command)
		if err != nil {
			cmd = scpCommand{Upload: len(command)%2 == 0, Recursive: true, Path: "/x"}
		}
		piece = max(piece, 1)
		notes := 0
		p := newSCPParser(func(ev recorder.Event) {
			if ev.Type == recorder.EventNote {
				notes++
			}
		}, 0, cmd)
		// The sides alternate, a piece of each at a time.
		for len(cli) > 0 || len(srv) > 0 {
			k := min(piece, len(cli))
			p.fromClient(cli[:k])
			cli = cli[k:]
			k = min(piece, len(srv))
			p.fromServer(srv[:k])
			srv = srv[k:]
			if len(p.line) > maxSCPLine || len(p.dirs) > 0 && len(p.dirs[len(p.dirs)-1]) > maxSCPPath {
				t.Fatalf("kept a line of %d bytes or a path too long", len(p.line))
			}
		}
		p.flush()
		if notes > 1 {
			t.Fatalf("got %d notes, want at most 1", notes)
		}
	})
}
