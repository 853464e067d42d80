package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Format is how Replay renders a recording.
type Format string

// Replay formats.
const (
	// FormatText prints the session in time order as a reader would see
	// it: terminal output with escape sequences removed, exec channels'
	// stdin, stdout and stderr as "[ch0 stdout] …" lines (binary stretches
	// as one line with their length and SHA-256), and every event as one
	// "# time …" line with its numbers.
	FormatText Format = "text"
	// FormatJSON prints JSON lines: the session metadata, then every
	// terminal record and event in order.
	FormatJSON Format = "json"
	// FormatPTY writes one terminal's raw output in real time for a
	// terminal to render; a session without a terminal plays its events
	// as a timeline.
	FormatPTY Format = "pty"
)

// ReplayOptions control Replay.
type ReplayOptions struct {
	// Format; zero means FormatText.
	Format Format
	// Speed multiplies playback speed in FormatPTY; zero means 1.
	Speed float64
	// IdleLimit caps any pause in FormatPTY; zero means no cap.
	IdleLimit time.Duration
	// Channel is the pty channel FormatPTY plays; zero is channel 0.
	Channel int
	// Sleep waits between records in FormatPTY; nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// player renders records; each Replay format is one.
type player interface {
	start(meta SessionMeta) error
	cast(stream string, at time.Time, code string, data []byte) error
	event(at time.Time, ev Event, line []byte) error
	finish() error
}

// rawLiner is a player that prints event lines as they are (jsonPlayer):
// a line too long to hold whole is copied to its writer while it is read,
// and its event call gets no line.
type rawLiner interface{ rawLines() io.Writer }

// streamReader is a player that reads the streams other than events.jsonl
// with cursors of its own, to put them in time order (textPlayer).
type streamReader interface{ ownStreams() }

// Replay renders the recording in src to w, streaming: memory stays flat
// however long the recording. It checks the hash chain as it reads and
// fails at the first broken link; Verify says more.
func Replay(ctx context.Context, src Source, w io.Writer, opts ReplayOptions) error {
	bw := bufio.NewWriterSize(w, readBufferSize)
	p, err := newPlayer(ctx, src, bw, opts)
	if err != nil {
		return err
	}
	starts := map[string]time.Time{}
	started := false
	_, err = src.walk(ctx, func(h ChunkHeader, payload *bufio.Reader) error {
		if !started {
			started = true
			if err := p.start(sessionMetaOf(ctx, src)); err != nil {
				return err
			}
		}
		if _, own := p.(streamReader); own && h.Stream != eventsStream {
			return nil // the player reads this stream with a cursor; walk checks the chunk
		}
		return playChunk(p, h, payload, starts)
	})
	if err == nil {
		err = p.finish()
	}
	if err == nil && (opts.Format == "" || opts.Format == FormatText) {
		err = noteContinuation(ctx, src, bw)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("replay %s: %w", src.label(), err)
	}
	return nil
}

func sessionMetaOf(ctx context.Context, src Source) SessionMeta {
	var meta SessionMeta
	if b, err := src.readSmall(ctx, sessionObject, maxManifestSize); err == nil {
		_ = json.Unmarshal(b, &meta)
	}
	return meta
}

func newPlayer(ctx context.Context, src Source, w *bufio.Writer, opts ReplayOptions) (player, error) {
	switch opts.Format {
	case "", FormatText:
		return newTextPlayer(ctx, src, w), nil
	case FormatJSON:
		return &jsonPlayer{w: w}, nil
	case FormatPTY:
		return newPTYPlayer(ctx, src, w, opts), nil
	}
	return nil, fmt.Errorf("replay: format %q is not pty, text or json", opts.Format)
}

// playChunk decodes one chunk's payload line by line. Raw exec streams
// have no lines: players that show them read them at their data events.
func playChunk(p player, h ChunkHeader, payload *bufio.Reader, starts map[string]time.Time) error {
	if isExecStream(h.Stream) {
		_, err := io.Copy(io.Discard, payload)
		return err
	}
	var raw io.Writer
	if rl, ok := p.(rawLiner); ok && h.Stream == eventsStream {
		raw = rl.rawLines()
	}
	lr := newLineReader(payload)
	var ev castEvent
	for {
		line, err := lr.next(raw)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err == nil {
			err = playLine(p, h, line, lr.long, starts, &ev)
		}
		if err != nil {
			return fmt.Errorf("chunk %d: %w", h.Seq, err)
		}
	}
}

// playLine plays one line; long says it is the shrunk form of a line too
// long to hold, which a rawLiner has already printed.
func playLine(p player, h ChunkHeader, line []byte, long bool, starts map[string]time.Time, ce *castEvent) error {
	if h.Stream == eventsStream {
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("event line: %w", err)
		}
		if long {
			line = nil
		}
		return p.event(ev.Time, ev, line)
	}
	if _, ok := starts[h.Stream]; !ok {
		starts[h.Stream] = h.First
	}
	if len(line) > 0 && line[0] == '{' { // the asciicast header
		return nil
	}
	if err := parseCastEvent(line, ce); err != nil {
		return err
	}
	at := starts[h.Stream].Add(time.Duration(ce.t * float64(time.Second)))
	return p.cast(h.Stream, at, ce.code, ce.data)
}

// ExportCast writes the terminal of pty channel ch as one asciicast v2
// file, as `asciinema play` accepts it. It streams and checks the chain.
func ExportCast(ctx context.Context, src Source, w io.Writer, ch int) error {
	name, found := castStream(ch), false
	_, err := src.walk(ctx, func(h ChunkHeader, payload *bufio.Reader) error {
		if h.Stream != name {
			return nil
		}
		found = true
		_, err := io.Copy(w, payload)
		return err
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", src.label(), err)
	}
	if !found {
		return fmt.Errorf("export %s: no terminal recorded on channel %d", src.label(), ch)
	}
	return nil
}
