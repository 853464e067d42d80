package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ExecView is what a page shows of a recording's exec channels: each
// command with its stdin, stdout and stderr as text, in time order, within
// a budget; the streams' exact bytes are ExportStream's.
type ExecView struct {
	// Terminal says the recording has a terminal (a pty channel) too.
	Terminal bool          `json:"terminal"`
	Channels []ExecChannel `json:"channels"`
	// Omitted counts the bytes of stretches past the budget, not shown.
	Omitted int64 `json:"omitted,omitempty"`
}

// ExecChannel is one exec channel: its command, what crossed its streams
// and how it ended.
type ExecChannel struct {
	Channel   int           `json:"channel"`
	Command   string        `json:"command"`
	Stretches []ExecStretch `json:"stretches"`
	// Notes are the channel's notes: a stream cut at the capture limit,
	// an exit signal.
	Notes []string `json:"notes,omitempty"`
	// End is the channel's exec_end event (exit status or signal, and
	// each stream's length, SHA-256 and how much was kept); nil when the
	// recording has none.
	End *Event `json:"end,omitempty"`
}

// ExecStretch is one stretch of a stream, as a data event places it.
type ExecStretch struct {
	Time time.Time `json:"time"`
	// Stream is stdin, stdout or stderr; Name the stream as export
	// --stream names it ("exec-0.stdout").
	Stream string `json:"stream"`
	Name   string `json:"name"`
	// Bytes is the stretch's length. Text is its start as text (escape
	// sequences removed), More what follows it; a binary stretch has its
	// SHA-256 instead.
	Bytes  int64  `json:"bytes"`
	Text   string `json:"text,omitempty"`
	More   int64  `json:"more,omitempty"`
	Binary bool   `json:"binary,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// ReadExec reads the exec channels of the recording in src for a page,
// keeping at most budget bytes of text in all (the rest is counted in
// Omitted). It reads events.jsonl and the exec streams only, and checks
// every chunk it reads against the manifest; it does not check the chain
// (Verify does).
func ReadExec(ctx context.Context, src Source, budget int64) (ExecView, error) {
	var v ExecView
	r := newExecReader(ctx, src)
	if err := r.index(); err != nil {
		return v, fmt.Errorf("read exec channels of %s: %w", src.label(), err)
	}
	defer r.closeAll()
	for _, ref := range r.refs {
		v.Terminal = v.Terminal || strings.HasSuffix(ref.stream, ".cast")
	}
	b := execViewBuilder{r: &r, v: &v, budget: budget, chans: map[int]int{}}
	events := newLineReader(bufio.NewReaderSize(newStreamCursor(ctx, src, r.refs, eventsStream), readBufferSize))
	for {
		line, err := events.next(nil)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return v, nil
		}
		if err == nil {
			var ev Event
			if err = json.Unmarshal(line, &ev); err == nil {
				err = b.add(ev)
			}
		}
		if err != nil {
			return v, fmt.Errorf("read exec channels of %s: %w", src.label(), err)
		}
	}
}

// execViewBuilder adds events to an ExecView.
type execViewBuilder struct {
	r      *execReader
	v      *ExecView
	budget int64
	chans  map[int]int // channel -> index in v.Channels
	shown  int         // stretches in the view
}

// channel returns the channel's entry, adding it on its first event.
func (b *execViewBuilder) channel(ch int) *ExecChannel {
	i, ok := b.chans[ch]
	if !ok {
		i = len(b.v.Channels)
		b.chans[ch] = i
		b.v.Channels = append(b.v.Channels, ExecChannel{Channel: ch})
	}
	return &b.v.Channels[i]
}

// maxViewStretches bounds the stretches of a view: a chatty command's many
// small ones cost a page more than their bytes.
const maxViewStretches = 5000

func (b *execViewBuilder) add(ev Event) error {
	switch ev.Type {
	case EventExec:
		b.channel(chanOf(ev)).Command = ev.Command
	case EventNote:
		if _, ok := b.chans[chanOf(ev)]; ok && ev.Channel != nil {
			c := b.channel(chanOf(ev))
			c.Notes = append(c.Notes, describeNote(ev))
		}
	case EventExecEnd:
		e := ev
		b.channel(chanOf(ev)).End = &e
		for _, dir := range execStreams {
			b.r.release(chanOf(ev), dir)
		}
	case EventData:
		return b.data(ev)
	}
	return nil
}

func (b *execViewBuilder) data(ev Event) error {
	c := b.channel(chanOf(ev))
	if b.budget <= 0 || b.shown >= maxViewStretches {
		b.v.Omitted += ev.Bytes
		return b.r.skip(ev)
	}
	st, err := b.r.stretch(ev, min(b.budget, maxTextStretch))
	if err != nil {
		return err
	}
	s := ExecStretch{Time: ev.Time, Stream: ev.Stream, Name: st.name, Bytes: ev.Bytes, Binary: st.binary, SHA256: st.sum,
		Text: string(st.text), More: st.more}
	b.budget -= int64(len(st.text)) + 64 // a stretch costs a row even when short
	c.Stretches = append(c.Stretches, s)
	b.shown++
	return nil
}

// ExecTotal is one stream's line of an exec channel's totals.
type ExecTotal struct {
	// Stream is stdin, stdout or stderr; Name the stream as export
	// --stream names it.
	Stream, Name string
	ExecStream
}

// Totals lists the channel's streams from its exec_end in the order
// stdin, stdout, stderr; nil without one.
func (c ExecChannel) Totals() []ExecTotal {
	if c.End == nil {
		return nil
	}
	var out []ExecTotal
	for _, dir := range execStreams {
		if st, ok := c.End.Streams[dir]; ok {
			out = append(out, ExecTotal{Stream: dir, Name: execStreamName(c.Channel, dir), ExecStream: st})
		}
	}
	return out
}
