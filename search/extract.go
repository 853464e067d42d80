package search

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sallyport/sallyport/recorder"
)

// Entry is one indexed thing: what was found where, and when.
type Entry struct {
	At    time.Time
	Where Where
	Body  string
}

// Bound is how much of one session the index keeps: a session past it is
// indexed up to there and marked cut, so one 10 GB session cannot fill the
// registry database.
type Bound struct {
	// Bytes bounds the indexed text of a session; zero means
	// DefaultBoundBytes.
	Bytes int64
	// Entries bounds its entries; zero means DefaultBoundEntries.
	Entries int
}

// Defaults of Bound, as docs/search.md states them.
const (
	DefaultBoundBytes   = 8 << 20
	DefaultBoundEntries = 50000
)

func (b Bound) bytes() int64 {
	if b.Bytes > 0 {
		return b.Bytes
	}
	return DefaultBoundBytes
}

func (b Bound) entries() int {
	if b.Entries > 0 {
		return b.Entries
	}
	return DefaultBoundEntries
}

// Entry sizes. A text stream (terminal, exec stdio) is indexed in entries
// of about textEntryBytes, cut where a line ends once textEntryGap passed
// since the entry began, so a hit's offset is near the match; no entry is
// longer than maxEntryBytes.
const (
	maxEntryBytes  = 4 << 10
	textEntryBytes = 2 << 10
	textEntryGap   = 2 * time.Second
)

// extractor turns a recording's FeedItems into Entries within a Bound.
type extractor struct {
	bound   Bound
	bytes   int64 // indexed so far, earlier passes included
	entries int
	cut     bool // the bound was reached
	out     []Entry
	texts   map[string]*textBuf // open text entries by stream and kind
	order   []string            // keys of texts, in opening order
}

// textBuf is a text entry being filled.
type textBuf struct {
	at    time.Time
	where Where
	b     []byte
}

func newExtractor(b Bound, bytes int64, entries int) *extractor {
	return &extractor{bound: b, bytes: bytes, entries: entries, texts: map[string]*textBuf{}}
}

// add takes one item of the recording.
func (x *extractor) add(it recorder.FeedItem) error {
	switch {
	case x.cut:
	case it.Event != nil:
		x.event(*it.Event)
	case it.Binary:
	case strings.HasSuffix(it.Stream, ".cast"):
		where := WhereOutput
		if it.Code == "i" {
			where = WhereInput
		}
		x.text(it.Stream+it.Code, where, it.Time, it.Text)
	default:
		where := WhereOutput
		if strings.HasSuffix(it.Stream, ".stdin") {
			where = WhereStdin
		}
		x.text(it.Stream, where, it.Time, it.Text)
	}
	return nil
}

func (x *extractor) event(ev recorder.Event) {
	switch ev.Type {
	case recorder.EventExec:
		x.emit(ev.Time, WhereCommand, ev.Command)
	case recorder.EventCommand:
		if ev.Source != "exec" { // the exec event has the exec's command already
			x.emit(ev.Time, WhereCommand, ev.Command)
		}
	case recorder.EventSFTP, recorder.EventSCP:
		x.emit(ev.Time, WhereFile, fileText(ev))
	case recorder.EventForward:
		if ev.Op != "close" {
			x.emit(ev.Time, WhereForward, ev.Host+":"+strconv.Itoa(ev.Port))
		}
	case recorder.EventQuery:
		x.emit(ev.Time, WhereQuery, queryText(ev))
	case recorder.EventNote:
		x.emit(ev.Time, WhereNote, ev.Text)
	case recorder.EventNotification:
		if n := ev.Notification; n != nil {
			x.emit(ev.Time, WhereNote, "notification "+n.Channel+" "+n.Payload)
		}
	case recorder.EventExecEnd:
		x.streamHashes(ev)
	}
}

// streamHashes indexes the SHA-256 of each exec stream, so a hash finds
// the session that moved those bytes even when they were binary.
func (x *extractor) streamHashes(ev recorder.Event) {
	for _, name := range []string{"stdin", "stdout", "stderr"} {
		st, ok := ev.Streams[name]
		if !ok || st.Bytes == 0 || st.SHA256 == "" {
			continue
		}
		where := WhereOutput
		if name == "stdin" {
			where = WhereStdin
		}
		x.emit(ev.Time, where, fmt.Sprintf("%s sha256 %s (%d bytes)", name, st.SHA256, st.Bytes))
	}
}

func fileText(ev recorder.Event) string {
	parts := []string{ev.Op, ev.Direction, ev.Path}
	if ev.To != "" {
		parts = append(parts, "-> "+ev.To)
	}
	if ev.SHA256 != "" {
		parts = append(parts, "sha256 "+ev.SHA256)
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// A query entry keeps the start of a long statement and of each long
// parameter, so that the parameters, the outcome and the hash of a cut
// statement still fit in maxEntryBytes.
const (
	maxSQLBytes   = 2 << 10
	maxParamBytes = 256
)

// queryText is a query's SQL, its parameters one per line, and how it
// ended (each statement of a multi-statement query).
func queryText(ev recorder.Event) string {
	var b strings.Builder
	b.WriteString(clip(ev.SQL, maxSQLBytes))
	for _, p := range ev.Params {
		b.WriteString("\n")
		b.WriteString(clip(paramText(p), maxParamBytes))
	}
	if ev.SQLCut != nil { // the statement was longer than kept: its whole text's hash finds it
		b.WriteString("\nsha256 " + ev.SQLCut.SHA256)
	}
	outcomes := ev.Outcomes
	if len(outcomes) == 0 && ev.Outcome != nil {
		outcomes = []recorder.Outcome{*ev.Outcome}
	}
	for _, o := range outcomes {
		if text := strings.TrimSpace(strings.Join([]string{o.Tag, o.ErrorCode, o.Error}, " ")); text != "" {
			b.WriteString("\n" + text)
		}
	}
	return b.String()
}

func paramText(p any) string {
	switch v := p.(type) {
	case string:
		return v
	case nil:
		return "NULL"
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Sprint(p)
	}
	return string(b)
}

// text appends stream text to its open entry, closing the entry first
// when it is full, or old and at a line's end.
func (x *extractor) text(key string, where Where, at time.Time, b []byte) {
	if len(b) == 0 {
		return
	}
	tb := x.texts[key]
	if tb != nil && (len(tb.b) >= textEntryBytes || (at.Sub(tb.at) >= textEntryGap && endsLine(tb.b))) {
		x.closeText(key)
		tb = nil
	}
	if tb == nil {
		tb = &textBuf{at: at, where: where}
		x.texts[key] = tb
		x.order = append(x.order, key)
	}
	tb.b = append(tb.b, b...)
}

func endsLine(b []byte) bool { return len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') }

func (x *extractor) closeText(key string) {
	tb := x.texts[key]
	delete(x.texts, key)
	if tb != nil && strings.TrimSpace(string(tb.b)) != "" {
		x.emit(tb.at, tb.where, string(tb.b))
	}
}

// flush closes every open text entry, in the order they were opened, and
// returns the entries so far.
func (x *extractor) flush() []Entry {
	for _, k := range x.order {
		x.closeText(k)
	}
	x.order = x.order[:0]
	out := x.out
	x.out = nil
	return out
}

// emit adds an entry, cut to maxEntryBytes, unless the bound is reached.
func (x *extractor) emit(at time.Time, where Where, body string) {
	body = clip(strings.ReplaceAll(strings.ToValidUTF8(body, "\uFFFD"), "\x00", ""), maxEntryBytes) // PostgreSQL text holds no NUL
	if strings.TrimSpace(body) == "" || x.cut {
		return
	}
	if x.entries+1 > x.bound.entries() || x.bytes+int64(len(body)) > x.bound.bytes() {
		x.cut = true
		return
	}
	x.entries++
	x.bytes += int64(len(body))
	x.out = append(x.out, Entry{At: at, Where: where, Body: body})
}

// clip cuts s to at most n bytes on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
