package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

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

// event prints the line as it is (it ends in '\n'); a long line has been
// copied through rawLines already.
func (p *jsonPlayer) event(_ time.Time, _ Event, line []byte) error {
	_, err := p.w.Write(line)
	return err
}

func (p *jsonPlayer) rawLines() io.Writer { return p.w }

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
