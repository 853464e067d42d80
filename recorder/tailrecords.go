package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// chunk turns one chunk of the recording into Watched records: in the
// batch once Tail is live; before, it only notes what a new watcher is
// shown first (terminal sizes, exec commands) and the end event.
func (t *tailer) chunk(h ChunkHeader, payload *bufio.Reader) error {
	switch {
	case h.Stream == eventsStream:
		return readLines(payload, t.event)
	case isExecStream(h.Stream):
		return t.exec(h, payload)
	}
	ch, err := castChannel(h.Stream)
	if err != nil {
		return err
	}
	t.cur.noteStart(h)
	return readLines(payload, func(line []byte) error { return t.cast(h.Stream, ch, line) })
}

// add puts ev in the batch once Tail is live.
func (t *tailer) add(ev Watched) {
	if t.live {
		t.batch = append(t.batch, ev)
		t.held += len(ev.Data)
	}
}

// event handles one events.jsonl line. Data events are left out (the
// exec streams' chunks carry the bytes), and the end event is held back:
// it is sent last, once the recording is sealed.
func (t *tailer) event(line []byte) error {
	line = bytes.TrimRight(line, "\n")
	var head struct {
		Time time.Time `json:"time"`
		Type string    `json:"type"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return fmt.Errorf("event line: %w", err)
	}
	ev := Watched{Time: head.Time, Kind: WatchEvent, Data: bytes.Clone(line)}
	switch head.Type {
	case EventData:
		return nil
	case EventEnd:
		ev.Kind = WatchEnd
		t.end = &ev
		return nil
	case EventExec:
		if !t.live {
			t.start.exec(ev.Data)
		}
	}
	t.add(ev)
	return nil
}

// cast handles one line of terminal ch's asciicast: its header (the size
// the terminal opened with), output and resizes. Keystrokes ("i") are
// never watched.
func (t *tailer) cast(stream string, ch int, line []byte) error {
	start := t.cur.Starts[stream]
	if len(line) > 0 && line[0] == '{' {
		var hd castHeader
		if err := json.Unmarshal(line, &hd); err != nil {
			return fmt.Errorf("asciicast header of %s: %w", stream, err)
		}
		t.start.size(ch, hd.Width, hd.Height)
		t.add(Watched{Time: start, Kind: WatchTerminal, Channel: ch, Cols: hd.Width, Rows: hd.Height})
		return nil
	}
	if err := parseCastEvent(line, &t.ce); err != nil {
		return err
	}
	at := start.Add(time.Duration(t.ce.t * float64(time.Second)))
	switch t.ce.code {
	case "o":
		t.add(Watched{Time: at, Kind: WatchOutput, Channel: ch, Data: bytes.Clone(t.ce.data)})
	case "r":
		cols, rows, ok := parseCastSize(t.ce.data)
		if ok {
			t.start.size(ch, cols, rows)
			t.add(Watched{Time: at, Kind: WatchResize, Channel: ch, Cols: cols, Rows: rows})
		}
	}
	return nil
}

// exec sends an exec stream's chunk in pieces, each timed at the chunk's
// first record. Before Tail is live the bytes are only hashed (walkChunk
// reads what is left).
func (t *tailer) exec(h ChunkHeader, payload *bufio.Reader) error {
	if !t.live {
		return nil
	}
	ch, stream, err := execChannel(h.Stream)
	if err != nil {
		return err
	}
	for {
		buf := make([]byte, feedPiece)
		n, err := io.ReadFull(payload, buf)
		if n > 0 {
			t.add(Watched{Time: h.First, Kind: WatchData, Channel: ch, Stream: stream, Data: buf[:n]})
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// castChannel is the pty channel of an asciicast stream ("pty-0.cast").
func castChannel(stream string) (int, error) {
	num, ok := strings.CutPrefix(strings.TrimSuffix(stream, ".cast"), "pty-")
	ch, err := strconv.Atoi(num)
	if !ok || err != nil || ch < 0 {
		return 0, fmt.Errorf("stream %q is not a terminal's", stream)
	}
	return ch, nil
}

// execChannel is the channel and direction of an exec stream
// ("exec-1.stdout"); isExecStream has checked its shape.
func execChannel(stream string) (int, string, error) {
	num, dir, _ := strings.Cut(strings.TrimPrefix(stream, "exec-"), ".")
	ch, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", fmt.Errorf("stream %q: %w", stream, err)
	}
	return ch, dir, nil
}

// parseCastSize parses a resize event's "COLSxROWS".
func parseCastSize(b []byte) (cols, rows int, ok bool) {
	c, r, found := bytes.Cut(b, []byte("x"))
	cols, err1 := strconv.Atoi(string(c))
	rows, err2 := strconv.Atoi(string(r))
	return cols, rows, found && err1 == nil && err2 == nil && cols > 0 && rows > 0
}
