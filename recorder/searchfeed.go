package recorder

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"time"
)

// FeedItem is one thing a recording holds, in chain order, as the search
// index (package search) reads it: an event, a terminal record, or a piece
// of an exec stream.
type FeedItem struct {
	// Time is when it happened; for a piece of an exec stream, when the
	// chunk holding it began.
	Time time.Time
	// Stream is the recording stream: "events.jsonl", "pty-0.cast",
	// "exec-0.stdin", ...
	Stream string
	// Event is set for a line of events.jsonl.
	Event *Event
	// Code is a terminal record's kind: "o" output or "i" input.
	Code string
	// Text is a terminal record's data or a piece of an exec stream, with
	// escape sequences removed; nil when Binary. It is valid until fn
	// returns.
	Text []byte
	// Binary says a piece of an exec stream is not text; its stream's
	// SHA-256 is in the channel's exec_end event.
	Binary bool
}

// FeedCursor is where a Feed stopped, to go on from there later: the next
// chunk, the hash its header must name as previous, and when each terminal
// stream began (its records' times count from there). The zero value
// starts at the beginning. It marshals to JSON.
type FeedCursor struct {
	Next   int                  `json:"next"`
	Prev   string               `json:"prev"`
	Starts map[string]time.Time `json:"starts,omitempty"`
}

// feedPiece is how much of an exec stream one FeedItem carries.
const feedPiece = 32 << 10

// Feed reads the chunks of src from cur on, in chain order, at most max of
// them (zero: all), passing each item to fn, and returns the cursor after
// the last chunk read. A recording still being written (no manifest yet)
// is read up to its first chunk not in the store; Feed reads it on from
// there when called again. It checks every link of the hash chain it reads
// and fails at a broken one; it does not check the signature (Verify does).
func Feed(ctx context.Context, src Source, cur FeedCursor, max int, fn func(FeedItem) error) (FeedCursor, error) {
	m, _, err := src.loadManifest(ctx)
	if err != nil {
		return cur, fmt.Errorf("feed %s: %w", src.label(), err)
	}
	if cur.Next <= 1 {
		if cur, err = src.feedStart(ctx); err != nil {
			return cur, err
		}
	}
	names, err := src.chainOrder(ctx, m)
	if err != nil {
		return cur, fmt.Errorf("feed %s: %w", src.label(), err)
	}
	f := feeder{fn: fn, cur: cur, strips: map[string]*ansiStripper{}}
	enough := func(read int) bool { return max > 0 && read >= max }
	if _, _, err := src.walkFrom(ctx, names, &f.cur, enough, f.chunk); err != nil && !errors.Is(err, ErrNotFound) {
		return f.cur, fmt.Errorf("feed %s: %w", src.label(), err)
	}
	return f.cur, nil
}

// walkFrom reads the chunks of names from cur on, in chain order, passing
// each to fn and moving cur past it, until one is not there yet (a gap in
// names, or ErrNotFound from the store: not uploaded yet) or enough, asked
// before each chunk with how many were read, says so. It returns how many
// it read and how many of names it left unread. Feed and Tail share it.
func (s Source) walkFrom(ctx context.Context, names []string, cur *FeedCursor, enough func(read int) bool, fn chunkFunc) (read, left int, err error) {
	for i, name := range names {
		seq, _ := chunkSeq(path.Base(name)) // a continuation's chunks are below continuationDir
		if seq < cur.Next {
			continue
		}
		if seq > cur.Next || enough(read) {
			return read, len(names) - i, nil
		}
		prev, err := s.walkChunk(ctx, name, cur.Prev, fn)
		if err != nil {
			return read, len(names) - i, err
		}
		cur.Next, cur.Prev = seq+1, prev
		read++
	}
	return read, 0, nil
}

// LoadContinuation returns the continuation of the recording src, as its
// continuation/manifest.json says, or nil when it has none: the chunks a
// lost replica stored beside a recording a survivor sealed, which Feed
// reads after the sealed ones. It checks neither the signature nor the
// chunks (Verify does): the search indexer uses it to verify a recording
// before Feed reads a continuation the indexer has not read yet.
func LoadContinuation(ctx context.Context, src Source) (*Continuation, error) {
	c, _, err := src.loadContinuation(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the continuation of %s: %w", src.label(), err)
	}
	return c, nil
}

// noteStart notes, at a terminal stream's first chunk h, when the stream
// began: the asciicast's time zero, its header's record.
func (c *FeedCursor) noteStart(h ChunkHeader) {
	if c.Starts == nil {
		c.Starts = map[string]time.Time{}
	}
	if _, ok := c.Starts[h.Stream]; !ok {
		c.Starts[h.Stream] = h.First
	}
}

func (s Source) feedStart(ctx context.Context) (FeedCursor, error) {
	body, err := s.readSmall(ctx, sessionObject, maxManifestSize)
	if err != nil {
		return FeedCursor{}, fmt.Errorf("feed %s: read session.json: %w", s.label(), err)
	}
	sum := sha256.Sum256(body)
	return FeedCursor{Next: 1, Prev: hex.EncodeToString(sum[:])}, nil
}

// feeder turns chunks into FeedItems.
type feeder struct {
	fn     func(FeedItem) error
	cur    FeedCursor
	strips map[string]*ansiStripper // per stream: a sequence may span records
	ce     castEvent
}

func (f *feeder) chunk(h ChunkHeader, payload *bufio.Reader) error {
	switch {
	case h.Stream == eventsStream:
		return readLines(payload, f.event)
	case isExecStream(h.Stream):
		return f.exec(h, payload)
	}
	f.cur.noteStart(h)
	return readLines(payload, func(line []byte) error { return f.cast(h.Stream, line) })
}

func (f *feeder) event(line []byte) error {
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return fmt.Errorf("event line: %w", err)
	}
	return f.fn(FeedItem{Time: ev.Time, Stream: eventsStream, Event: &ev})
}

func (f *feeder) cast(stream string, line []byte) error {
	if len(line) > 0 && line[0] == '{' { // the asciicast header
		return nil
	}
	if err := parseCastEvent(line, &f.ce); err != nil {
		return err
	}
	if f.ce.code != "o" && f.ce.code != "i" {
		return nil
	}
	at := f.cur.Starts[stream].Add(time.Duration(f.ce.t * float64(time.Second)))
	text := f.stripper(stream + f.ce.code).strip(f.ce.data)
	return f.fn(FeedItem{Time: at, Stream: stream, Code: f.ce.code, Text: text})
}

func (f *feeder) stripper(key string) *ansiStripper {
	s := f.strips[key]
	if s == nil {
		s = &ansiStripper{}
		f.strips[key] = s
	}
	return s
}

// exec passes an exec stream's chunk on in pieces, a character cut at a
// piece's end carried to the next.
func (f *feeder) exec(h ChunkHeader, payload *bufio.Reader) error {
	buf := make([]byte, feedPiece)
	carry := 0
	for {
		n, err := io.ReadFull(payload, buf[carry:])
		n += carry
		if n > 0 {
			keep := 0
			if err == nil {
				keep = incompleteTail(buf[:n])
			}
			if ferr := f.piece(h, buf[:n-keep]); ferr != nil {
				return ferr
			}
			carry = copy(buf, buf[n-keep:n])
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (f *feeder) piece(h ChunkHeader, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if !printable(b) {
		return f.fn(FeedItem{Time: h.First, Stream: h.Stream, Binary: true})
	}
	return f.fn(FeedItem{Time: h.First, Stream: h.Stream, Text: f.stripper(h.Stream).strip(b)})
}
