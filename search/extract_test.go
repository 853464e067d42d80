package search

import (
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

func TestExtractEvents(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ch := 0
	x := newExtractor(Bound{}, 0, 0)
	for _, ev := range []recorder.Event{
		{Type: recorder.EventExec, Command: "bash -s", Channel: &ch},
		{Type: recorder.EventCommand, Source: "exec", Command: "bash -s"}, // the exec event has it
		{Type: recorder.EventCommand, Source: "terminal", Command: "sudo -i"},
		{Type: recorder.EventQuery, SQL: "UPDATE t SET a = $1 WHERE b = $2", Params: []any{"x\x00y", nil, 42.5},
			Outcome: &recorder.Outcome{ErrorCode: "42501", Error: "permission denied"}},
		{Type: recorder.EventQuery, SQL: "SELECT 1; DROP TABLE x", SQLCut: &recorder.Cut{Bytes: 1 << 20, SHA256: "5ca1ab1e"},
			Outcomes: []recorder.Outcome{{Tag: "SELECT 1"}, {ErrorCode: "42501", Error: "must be owner"}}},
		{Type: recorder.EventSFTP, Op: "rename", Path: "/a", To: "/b"},
		{Type: recorder.EventSCP, Op: "file", Direction: "download", Path: "/etc/passwd", SHA256: "abc123"},
		{Type: recorder.EventForward, Op: "open", Host: "10.1.2.3", Port: 5432},
		{Type: recorder.EventForward, Op: "close", Host: "10.1.2.3", Port: 5432},
		{Type: recorder.EventExecEnd, Streams: map[string]recorder.ExecStream{"stdin": {Bytes: 3, SHA256: "f00"}, "stderr": {}}},
		{Type: recorder.EventNote, Text: "stdout cut at 16 MiB"},
		{Type: recorder.EventData, Stream: "stdout", Bytes: 10},
	} {
		ev.Time = at
		if err := x.add(recorder.FeedItem{Time: at, Event: &ev}); err != nil {
			t.Fatal(err)
		}
	}
	want := []Entry{
		{at, WhereCommand, "bash -s"},
		{at, WhereCommand, "sudo -i"},
		{at, WhereQuery, "UPDATE t SET a = $1 WHERE b = $2\nxy\nNULL\n42.5\n42501 permission denied"},
		{at, WhereQuery, "SELECT 1; DROP TABLE x\nsha256 5ca1ab1e\nSELECT 1\n42501 must be owner"},
		{at, WhereFile, "rename /a -> /b"},
		{at, WhereFile, "file download /etc/passwd sha256 abc123"},
		{at, WhereForward, "10.1.2.3:5432"},
		{at, WhereStdin, "stdin sha256 f00 (3 bytes)"},
		{at, WhereNote, "stdout cut at 16 MiB"},
	}
	got := x.flush()
	if len(got) != len(want) {
		t.Fatalf("got %d entries %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func TestExtractText(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	x := newExtractor(Bound{}, 0, 0)
	out := func(sec float64, text string) {
		x.add(recorder.FeedItem{Time: at.Add(time.Duration(sec * float64(time.Second))), Stream: "pty-0.cast", Code: "o", Text: []byte(text)})
	}
	out(0, "$ cat /etc/sha")
	out(3, "dow\r\n") // a line typed slowly stays whole
	out(4, "root:x:0:0\r\n")
	out(4.5, "more")
	x.add(recorder.FeedItem{Time: at, Stream: "exec-1.stdin", Text: []byte("echo hi\n")})
	x.add(recorder.FeedItem{Time: at, Stream: "exec-1.stdout", Binary: true})
	got := x.flush()
	if len(got) != 3 || got[0].Body != "$ cat /etc/shadow\r\n" || got[1].Body != "root:x:0:0\r\nmore" || !got[1].At.Equal(at.Add(4*time.Second)) {
		t.Fatalf("terminal entries: %q", got)
	}
	if got[2].Where != WhereStdin || got[2].Body != "echo hi\n" {
		t.Fatalf("stdin entry: %q", got[2])
	}
}

func TestExtractBound(t *testing.T) {
	x := newExtractor(Bound{Entries: 3, Bytes: 1 << 20}, 0, 0)
	for i := 0; i < 10; i++ {
		x.emit(time.Now(), WhereNote, "note")
	}
	if got := x.flush(); len(got) != 3 || !x.cut {
		t.Fatalf("entries bound 3: got %d entries, cut %v", len(got), x.cut)
	}
	x = newExtractor(Bound{Bytes: 10 << 10}, 8<<10, 0) // 8 KiB indexed by an earlier pass
	x.emit(time.Now(), WhereOutput, strings.Repeat("y", 1500))
	x.emit(time.Now(), WhereOutput, strings.Repeat("z", 1500))
	if got := x.flush(); len(got) != 1 || !x.cut {
		t.Fatalf("bytes bound: got %d entries, cut %v", len(got), x.cut)
	}
	long := recorder.Event{Type: recorder.EventQuery, SQL: strings.Repeat("s", 100000), Params: []any{strings.Repeat("p", 100000), "tail-param"},
		SQLCut: &recorder.Cut{SHA256: "feed"}, Outcome: &recorder.Outcome{Tag: "INSERT 0 1"}}
	if body := queryText(long); len(body) > maxEntryBytes || !strings.HasSuffix(body, "\ntail-param\nsha256 feed\nINSERT 0 1") {
		t.Fatalf("a long statement's entry keeps its parameters, hash and outcome: %d bytes, ends %q", len(body), body[len(body)-40:])
	}
	x = newExtractor(Bound{}, 0, 0)
	x.emit(time.Now(), WhereQuery, strings.Repeat("é", 5000)+"\xff")
	if got := x.flush(); len(got[0].Body) > maxEntryBytes || strings.ContainsRune(got[0].Body, '\uFFFD') {
		t.Fatalf("a long entry is cut on a character boundary: %d bytes", len(got[0].Body))
	}
}
