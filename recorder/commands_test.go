package recorder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// termRec is one record of a pty channel as the encoder hands it to the
// tracker: after a pause, output (o), keystrokes (i) or a new width (r).
type termRec struct {
	after time.Duration
	kind  byte
	data  string
}

// human is how long a person takes between two keys, or to read a prompt.
const human = 150 * time.Millisecond

// Real-looking output: bash 5.2's, as a pty delivers it.
const (
	pasteOn     = "\x1b[?2004h" // readline starts reading a line
	pasteOff    = "\x1b[?2004l" // readline is done with it
	colorPrompt = "\x1b]0;user@host: ~\x07\x1b[01;32muser@host\x1b[00m:\x1b[01;34m~\x1b[00m$ "
	enterEcho   = "\r\n" + pasteOff + "\r"
)

// prompt is bash printing its prompt and waiting.
func prompt(p string) termRec { return termRec{time.Millisecond, 'o', pasteOn + p} }

// typed is a person typing s, each character echoed; with keys, the
// keystrokes are recorded too.
func typed(s string, keys bool) []termRec {
	var recs []termRec
	for _, r := range s {
		if keys {
			recs = append(recs, termRec{human, 'i', string(r)}, termRec{time.Millisecond, 'o', string(r)})
		} else {
			recs = append(recs, termRec{human, 'o', string(r)})
		}
	}
	return recs
}

// key is a key that echoes nothing by itself, when keystrokes are recorded.
func key(s string, keys bool) []termRec {
	if keys {
		return []termRec{{human, 'i', s}}
	}
	return nil
}

// enter is the Enter key and its echo.
func enter(keys bool) []termRec {
	if keys {
		return []termRec{{human, 'i', "\r"}, {time.Millisecond, 'o', enterEcho}}
	}
	return []termRec{{human, 'o', enterEcho}}
}

// session joins pieces of a session.
func session(parts ...any) []termRec {
	var recs []termRec
	for _, p := range parts {
		switch p := p.(type) {
		case termRec:
			recs = append(recs, p)
		case []termRec:
			recs = append(recs, p...)
		case string: // output right after what came before
			recs = append(recs, termRec{time.Millisecond, 'o', p})
		}
	}
	return recs
}

func out(after time.Duration, s string) termRec { return termRec{after, 'o', s} }

// track feeds recs to a fresh tracker as the encoder does, from time start.
func track(recs []termRec) (*cmdTracker, []typedCommand) {
	t := newCmdTracker()
	at := int64(time.Hour)
	var got []typedCommand
	for _, r := range recs {
		at += int64(r.after)
		switch r.kind {
		case 'o':
			t.output(at, []byte(r.data))
		case 'i':
			t.keys(at, []byte(r.data))
		case 'r':
			cols, _ := strconv.Atoi(r.data)
			t.resize(cols)
		}
		got = append(got, t.done...)
		t.done = t.done[:0]
	}
	return t, got
}

func texts(cmds []typedCommand) []string {
	var s []string
	for _, c := range cmds {
		s = append(s, c.text)
	}
	return s
}

func TestTrackerCommands(t *testing.T) {
	for _, keys := range []bool{false, true} {
		name := "output only"
		if keys {
			name = "input recorded"
		}
		t.Run(name, func(t *testing.T) {
			for _, tc := range trackerCases(keys) {
				t.Run(tc.name, func(t *testing.T) {
					_, got := track(tc.recs)
					assert.Equal(t, tc.want, texts(got), "got commands %q, want %q", texts(got), tc.want)
				})
			}
		})
	}
}

type trackerCase struct {
	name string
	recs []termRec
	want []string
}

// trackerCases are sessions and the commands typed in them, with
// keystrokes recorded (keys) or not: either way the same commands.
func trackerCases(keys bool) []trackerCase {
	long := "echo " + strings.Repeat("a", 68)
	var ahead []termRec // a script piped into ssh -tt: all of it sent before the first prompt
	if keys {
		ahead = []termRec{{0, 'i', "PS1='$ '\necho one; echo two\nexit\n"}}
	}
	return []trackerCase{
		{"coloured prompt", session(prompt(colorPrompt), typed("ls -l", keys), enter(keys),
			"total 0\r\n", prompt(colorPrompt)), []string{"ls -l"}},
		{"backspace with readline", session(prompt(colorPrompt), typed("echo abc", keys),
			out(human, "\b\x1b[K"), out(human, "\b\x1b[K"), typed("xyz", keys), enter(keys), "axyz\r\n", prompt(colorPrompt)),
			[]string{"echo axyz"}},
		{"backspace echoed by the tty (dash)", session(out(0, "$ "), typed("ecgo", keys), out(human, "\b \b"),
			out(human, "\b \b"), typed("ho hi", keys), enter(keys), "hi\r\n$ "), []string{"echo hi"}},
		{"insert in the middle", session(prompt(colorPrompt), typed("echo abc", keys), out(human, "\b"), out(human, "\b"),
			out(human, "Xbc\b\b"), enter(keys), "aXbc\r\n", prompt(colorPrompt)), []string{"echo aXbc"}},
		{"output with prompt-like lines", session(prompt("$ "), typed("cat transcript", keys), enter(keys),
			"$ rm -rf /\r\n# reboot\r\n> drop table x;\r\nuser@host:~$ halt\r\n", out(5*time.Millisecond, "$ sudo halt\r\n# "),
			out(5*time.Millisecond, "shutdown\r\n"), prompt("$ ")), []string{"cat transcript"}},
		{"output with prompt-like lines (dash)", session(out(0, "$ "), typed("cat transcript", keys), enter(keys),
			"$ rm -rf /\r\n# ", out(5*time.Millisecond, "reboot\r\n"), out(5*time.Millisecond, "$ halt\r\n$ ")),
			[]string{"cat transcript"}},
		{"vim on the alternate screen", session(prompt(colorPrompt), typed("vim notes", keys), enter(keys),
			"\x1b[?1049h\x1b[22;0;0t\x1b[?1h\x1b=\x1b[?2004h\x1b[H\x1b[2J~\r\n~\r\n$ ", typed("ifake", keys),
			out(human, "\r\n"+pasteOn+"$ inside\r\n"), typed(":wq", keys), enter(keys),
			"\x1b[?2004l\x1b[?1l\x1b>\x1b[?1049l\x1b[23;0;0t", prompt(colorPrompt), typed("ls", keys), enter(keys)),
			[]string{"vim notes", "ls"}},
		{"Ctrl-C abandons the line", session(prompt(colorPrompt), typed("ls -la foo", keys),
			key("\x03", keys), "^C"+pasteOff+"\r"+pasteOn+pasteOff+"\r\r\n", prompt(colorPrompt),
			typed("pwd", keys), enter(keys)), []string{"pwd"}},
		{"Ctrl-C abandons the line (dash)", session(out(0, "$ "), typed("ls", keys), key("\x03", keys),
			"^C\r\n$ ", typed("id", keys), enter(keys)), []string{"id"}},
		{"progress bar redrawn with CR", session(prompt("$ "), typed("fetch", keys), enter(keys),
			"\r 10% $ ", out(time.Second, "\r 50% $ "), out(time.Second, "\r100% done\r\n"), prompt("$ "),
			typed("ls", keys), enter(keys)), []string{"fetch", "ls"}},
		{"empty line", session(prompt("$ "), enter(keys), prompt("$ "), typed("  ", keys), enter(keys), prompt("$ ")), nil},
		{"completion listing", session(prompt("$ "), typed("cat fi", keys), key("\t\t", keys),
			out(time.Millisecond, "\r\nfile1  file2  \r\n$ cat fi"), typed("le1", keys), enter(keys), prompt("$ ")),
			[]string{"cat file1"}},
		{"continuation prompt", session(prompt("$ "), typed("for i in 1 2", keys), enter(keys), prompt("> "),
			typed("do echo $i; done", keys), enter(keys), "1\r\n2\r\n", prompt("$ ")),
			[]string{"for i in 1 2", "do echo $i; done"}},
		{"long line wrapping at 40 columns", session(termRec{0, 'r', "40"}, prompt(colorPrompt),
			typed(long[:27], keys), out(time.Millisecond, " \r"), typed(long[27:67], keys), out(time.Millisecond, " \r"),
			typed(long[67:], keys), enter(keys)), []string{long}},
		{"typing pauses after > in a command", session(out(0, "$ "), typed("echo a > f", keys), enter(keys), "$ "),
			[]string{"echo a > f"}},
		{"bracketed paste", session(prompt("$ "), key("\x1b[200~echo one\recho two\x1b[201~", keys),
			out(time.Millisecond, "\x1b[7mecho one\x1b[27m\r\n\r\x1b[7mecho two\x1b[27m"), key("\x03", keys),
			out(time.Millisecond, "^C"+pasteOff+"\r"+pasteOn+pasteOff+"\r\r\n"), prompt("$ "),
			key("\x1b[200~ls -la\x1b[201~", keys), out(time.Millisecond, "\x1b[7mls -la\x1b[27m"),
			key("\r", keys), out(time.Millisecond, "\r\x1b[C\x1b[Cls -la"+enterEcho)),
			[]string{"ls -la"}}, // a multi-line paste given up with ^C never ran
		{"UTF-8 split across reads", session(prompt("$ "), typed("echo gr", keys), out(human, "\xc3"), out(time.Millisecond, "\xb6"),
			typed("ße", keys), enter(keys)), []string{"echo größe"}},
		{"typed ahead (ssh -tt < script)", session(ahead,
			out(0, "Last login: Mon Dec  7 14:24:40 2026 from 127.0.0.1\r\r\nPS1='$ '\r\necho one; echo two\r\nexit\r\n"),
			out(180*time.Millisecond, pasteOn+"root@vm:~# PS1='$ '\r\n"+pasteOff+"\r"), pasteOn+"$ ",
			"echo one; echo two\r\n"+pasteOff+"\rone\r\ntwo\r\n", pasteOn+"$ exit\r\n"+pasteOff+"\rlogout\r\n"),
			[]string{"PS1='$ '", "echo one; echo two", "exit"}},
	}
}

// TestTrackerTimeAndOffset: an event is placed at the Enter key when
// keystrokes are recorded, else at the newline's echo; its offset is where
// the prompt's line starts in the channel's output.
func TestTrackerTimeAndOffset(t *testing.T) {
	banner := "Last login: Mon Dec  7 14:24:40 2026\r\n"
	for _, keys := range []bool{false, true} {
		recs := session(out(0, banner), prompt(colorPrompt), typed("uptime", keys), enter(keys))
		_, got := track(recs)
		require.Len(t, got, 1)
		var output strings.Builder
		at, enterAt := int64(time.Hour), int64(0)
		for _, r := range recs {
			at += int64(r.after)
			if r.kind == 'o' {
				output.WriteString(r.data)
			}
			if r.data == "\r" || r.data == enterEcho && enterAt == 0 {
				enterAt = at
			}
		}
		assert.Equal(t, enterAt, got[0].at, "keys %v: got time %d, want the Enter key's %d", keys, got[0].at, enterAt)
		assert.Equal(t, int64(len(banner)), got[0].offset, "keys %v: offset", keys)
		assert.True(t, strings.HasPrefix(output.String()[got[0].offset:], pasteOn+colorPrompt+"uptime"))
	}
}

// TestTrackerLongLine: a command longer than maxCommandLine is kept up to
// it and marked cut; the tracker's memory stays bounded however long a
// line without a newline runs.
func TestTrackerLongLine(t *testing.T) {
	long := "echo " + strings.Repeat("x", 10000)
	tr, got := track(session(prompt("$ "), out(human, long), enter(false)))
	require.Len(t, got, 1)
	assert.True(t, got[0].cut, "the event says the line was cut")
	assert.Equal(t, long[:maxCommandLine-2], got[0].text)

	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, no newline
	for range 4 {
		tr.output(int64(2*time.Hour), blob)
	}
	assert.LessOrEqual(t, cap(tr.line), 2*maxCommandLine, "line buffer after 4 MiB on one line")
}

// TestTrackerPassword: what is typed at a prompt that does not echo
// (sudo, read -s) is never part of a command, keystrokes recorded or not.
func TestTrackerPassword(t *testing.T) {
	for _, keys := range []bool{false, true} {
		_, got := track(session(prompt(colorPrompt), typed("sudo ls", keys), enter(keys),
			"[sudo] password for root: ", key("hunter2\r", keys), out(time.Second, "\r\nfile1\r\n"),
			prompt(colorPrompt), typed(`read -s -p "Password: " p`, keys), enter(keys), "Password: ",
			key("hunter2\r", keys), prompt(colorPrompt), typed("exit", keys), enter(keys)))
		assert.Equal(t, []string{"sudo ls", `read -s -p "Password: " p`, "exit"}, texts(got), "keys %v", keys)
		for _, c := range got {
			assert.NotContains(t, c.text, "hunter2")
		}
	}
}

// TestTrackerAnySplit: where reads split a session does not change the
// commands found (sequences, characters and lines span reads).
func TestTrackerAnySplit(t *testing.T) {
	var whole strings.Builder
	for range 3 {
		whole.WriteString(string(termSample(40 << 10))) // listings, compiler output, prompt-like lines
		whole.WriteString("\r\n" + pasteOn + colorPrompt + "make test\r\n" + pasteOff + "\r")
		whole.WriteString("\x1b[?25l 42%\r\x1b[?25h\x1b[?1049h$ vim\r\n\x1b[?1049l")
		whole.WriteString(pasteOn + colorPrompt + "echo größe\r\n" + pasteOff + "\r")
	}
	want := []string{"make test", "echo größe", "make test", "echo größe", "make test", "echo größe"}
	data := []byte(whole.String())
	rng := rand.New(rand.NewPCG(7, 8))
	for _, size := range []int{1, 3, 17, 4096, 32000, len(data)} {
		tr := newCmdTracker()
		var got []typedCommand
		for i := 0; i < len(data); {
			n := min(len(data)-i, 1+rng.IntN(size))
			tr.output(int64(time.Hour), data[i:i+n])
			got = append(got, tr.done...)
			tr.done = tr.done[:0]
			i += n
		}
		assert.Equal(t, want, texts(got), "reads of up to %d bytes", size)
	}
}

// cmdClock is a settable Recorder.Now.
type cmdClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *cmdClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *cmdClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRecordedCommandEvents: a terminal session's typed commands are
// command events in the recording, with their channel, time, offset and
// Source "terminal", next to the exec command lines.
func TestRecordedCommandEvents(t *testing.T) {
	clock := &cmdClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) { r.Now = clock.now })
	s, err := h.rec.Open(ctxT(t), testMeta("s-cmds"))
	require.NoError(t, err)
	ch := 1
	require.NoError(t, s.Event(Event{Type: EventCommand, Channel: intp(0), Command: "uname -a", Source: "exec"}))
	require.NoError(t, s.OpenTerminal(ch, 120, 40, "xterm-256color"))
	var sent bytes.Buffer
	for _, r := range session(out(0, "Welcome\r\n"), prompt(colorPrompt), typed("ls -l /etc", false), enter(false),
		"total 0\r\n", prompt(colorPrompt), typed("vim x", false), enter(false), "\x1b[?1049h$ nope\r\n\x1b[?1049l",
		prompt(colorPrompt), typed("exit", false), enter(false)) {
		clock.advance(r.after)
		require.NoError(t, s.Output(ch, []byte(r.data)))
		sent.WriteString(r.data)
	}
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-cmds")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, Replay(context.Background(), src, &buf, ReplayOptions{Format: FormatJSON}))

	var cmds []Event
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var ev Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
		if ev.Type == EventCommand {
			cmds = append(cmds, ev)
		}
	}
	require.Len(t, cmds, 4, "got %+v", cmds)
	assert.Equal(t, "exec", cmds[0].Source)
	var typedCmds []string
	for i, ev := range cmds[1:] {
		typedCmds = append(typedCmds, ev.Command)
		assert.Equal(t, "terminal", ev.Source)
		require.NotNil(t, ev.Channel)
		assert.Equal(t, ch, *ev.Channel)
		assert.True(t, strings.HasPrefix(sent.String()[ev.Offset:], pasteOn+colorPrompt+ev.Command), "command %d offset %d", i, ev.Offset)
		if i > 0 {
			assert.True(t, ev.Time.After(cmds[i].Time), "events in time order")
		}
	}
	assert.Equal(t, []string{"ls -l /etc", "vim x", "exit"}, typedCmds)
}

// BenchmarkCommandTracker measures the tracker alone on terminal output
// (benchData, in relay reads), as the flusher runs it for every pty record.
func BenchmarkCommandTracker(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			ps := pieces(benchData[kind]())
			tr := newCmdTracker()
			b.SetBytes(relayRead)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				tr.output(int64(i), ps[i%len(ps)])
				tr.done = tr.done[:0]
			}
		})
	}
}
