package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// textPlayer prints terminal output as plain text and events as "#" lines.
type textPlayer struct {
	w           *bufio.Writer
	strip       ansiStripper
	atLineStart bool
}

func (p *textPlayer) start(meta SessionMeta) error {
	_, err := fmt.Fprintf(p.w, "# session %s: %s on %s (%s, login %s) from %s, started %s\n",
		meta.ID, meta.Identity, meta.Target, meta.Protocol, meta.Login, meta.Source, meta.StartedAt.Format(time.RFC3339))
	return err
}

func (p *textPlayer) cast(_ string, _ time.Time, code string, data []byte) error {
	if code != "o" {
		return nil
	}
	out := p.strip.strip(data)
	if len(out) > 0 {
		p.atLineStart = out[len(out)-1] == '\n'
	}
	_, err := p.w.Write(out)
	return err
}

func (p *textPlayer) event(at time.Time, ev Event, _ []byte) error {
	if !p.atLineStart {
		p.w.WriteByte('\n')
		p.atLineStart = true
	}
	_, err := fmt.Fprintf(p.w, "# %s %s\n", at.UTC().Format(time.RFC3339Nano), describe(ev))
	return err
}

func (p *textPlayer) finish() error { return nil }

// describe renders an event on one line for people.
func describe(ev Event) string {
	switch ev.Type {
	case EventExec:
		return "exec: " + ev.Command
	case EventSFTP:
		return strings.TrimSpace(fmt.Sprintf("sftp %s %s %s", ev.Op, ev.Path, ev.To))
	case EventForward:
		return fmt.Sprintf("forward to %s:%d", ev.Host, ev.Port)
	case EventQuery:
		return describeQuery(ev)
	case EventNote:
		return "note: " + ev.Text
	case EventEnd:
		if ev.ExitStatus != nil {
			return fmt.Sprintf("end: exit status %d %s", *ev.ExitStatus, ev.Reason)
		}
		return "end: " + ev.Reason
	}
	b, _ := json.Marshal(ev)
	return ev.Type + ": " + string(b)
}

func describeQuery(ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "query (%.1f ms): %s", ev.DurationMS, oneLine(ev.SQL))
	if len(ev.Params) > 0 {
		params, _ := json.Marshal(ev.Params)
		fmt.Fprintf(&b, " params=%s", params)
	}
	if o := ev.Outcome; o != nil {
		switch {
		case o.Error != "" || o.ErrorCode != "":
			fmt.Fprintf(&b, " -> error %s: %s", o.ErrorCode, o.Error)
		case o.Rows != nil:
			fmt.Fprintf(&b, " -> %s (%d rows)", o.Tag, *o.Rows)
		default:
			fmt.Fprintf(&b, " -> %s", o.Tag)
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// jsonPlayer prints one JSON object per line.
type jsonPlayer struct {
	w *bufio.Writer
}

// jsonRecord is a terminal record in FormatJSON.
type jsonRecord struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // output, input, resize
	Channel string    `json:"stream"`
	Data    string    `json:"data"`
}

func (p *jsonPlayer) start(meta SessionMeta) error {
	return p.line(struct {
		Type    string      `json:"type"`
		Session SessionMeta `json:"session"`
	}{"session", meta})
}

func (p *jsonPlayer) cast(stream string, at time.Time, code string, data []byte) error {
	kind := map[string]string{"o": "output", "i": "input", "r": "resize"}[code]
	if kind == "" {
		kind = code
	}
	return p.line(jsonRecord{Time: at.UTC(), Type: kind, Channel: stream, Data: string(data)})
}

func (p *jsonPlayer) event(_ time.Time, _ Event, line []byte) error {
	_, err := p.w.Write(line) // already ends in '\n'
	return err
}

func (p *jsonPlayer) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.w.Write(append(b, '\n'))
	return err
}

func (p *jsonPlayer) finish() error { return nil }

// ptyPlayer writes one terminal's raw output with its original timing.
type ptyPlayer struct {
	ctx      context.Context
	w        *bufio.Writer
	opts     ReplayOptions
	stream   string
	timeline bool // no terminal: play events instead
	last     time.Time
}

func newPTYPlayer(ctx context.Context, src Source, w *bufio.Writer, opts ReplayOptions) *ptyPlayer {
	p := &ptyPlayer{ctx: ctx, w: w, opts: opts, stream: castStream(opts.Channel)}
	if p.opts.Speed <= 0 {
		p.opts.Speed = 1
	}
	if m, _, err := src.loadManifest(ctx); err == nil && m != nil {
		p.timeline = true
		for _, st := range m.Streams {
			if st.Name == p.stream {
				p.timeline = false
			}
		}
	}
	return p
}

func (p *ptyPlayer) start(SessionMeta) error { return nil }

func (p *ptyPlayer) cast(stream string, at time.Time, code string, data []byte) error {
	if stream != p.stream || p.timeline || (code != "o") {
		return nil
	}
	if err := p.wait(at); err != nil {
		return err
	}
	_, err := p.w.Write(data)
	return err
}

func (p *ptyPlayer) event(at time.Time, ev Event, _ []byte) error {
	if !p.timeline {
		return nil
	}
	if err := p.wait(at); err != nil {
		return err
	}
	_, err := fmt.Fprintf(p.w, "%s %s\r\n", at.UTC().Format("15:04:05.000"), describe(ev))
	return err
}

// wait sleeps for the gap since the previous record, scaled and capped,
// flushing first so the terminal shows what came before the pause.
func (p *ptyPlayer) wait(at time.Time) error {
	gap := time.Duration(0)
	if !p.last.IsZero() && at.After(p.last) {
		gap = time.Duration(float64(at.Sub(p.last)) / p.opts.Speed)
	}
	p.last = at
	if p.opts.IdleLimit > 0 {
		gap = min(gap, p.opts.IdleLimit)
	}
	if gap <= time.Millisecond {
		return nil
	}
	if err := p.w.Flush(); err != nil {
		return err
	}
	if p.opts.Sleep != nil {
		return p.opts.Sleep(p.ctx, gap)
	}
	t := time.NewTimer(gap)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

func (p *ptyPlayer) finish() error { return nil }
