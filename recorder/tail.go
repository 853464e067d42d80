package recorder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// A live session runs on one replica, and only that replica's recorder can
// tap it (Watch). Every replica reads the shared store, though: Tail follows
// a live session's recording there as its chunks are uploaded, so the
// console of any replica can watch a session another runs, with no
// replica-to-replica networking. It lags the session by the flush
// interval (chunks are cut at least that often and queued for upload at
// once), the upload, and at most one poll. A console that watches asks,
// through the registry, for the session to be flushed every
// WatchedFlushInterval meanwhile (StoreTail.Faster), so the lag is below a
// second at the defaults.

// Defaults of TailOptions.
const (
	// DefaultTailPoll is how often Tail asks the store for new chunks
	// while they come: half the default flush interval, so a chunk is
	// seen within half a second of its upload.
	DefaultTailPoll = 500 * time.Millisecond
	// DefaultTailMaxPoll is the longest Tail waits between polls of a
	// quiet session: an idle watcher costs the store one listing and one
	// manifest read per that.
	DefaultTailMaxPoll = 2 * time.Second
)

// Polls of a session watched faster (StoreTail.Faster): its recorder
// flushes every WatchedFlushInterval, and a poll as often keeps the view
// within a second of the session; one the session is quiet in waits at
// most WatchedTailMaxPoll, so the first output after a pause is as prompt.
// A watcher costs the store one listing and one manifest read per poll.
const (
	WatchedTailPoll    = 125 * time.Millisecond
	WatchedTailMaxPoll = 500 * time.Millisecond
)

// tailQuiet is how long a session may send nothing before Tail polls
// less often: a session at work is polled every Poll, so its records lag
// by one flush interval and one poll at most.
const tailQuiet = 5 * time.Second

// tailBatchBytes bounds the data one poll's records hold once Tail follows
// the session (a poll reads chunks until they hold this much): they are
// put in time order before they are sent, so this, and a chunk, is what
// a watcher holds in memory.
const tailBatchBytes = 8 << 20

// WatchFailed is the kind of Watched that Tail sends when it cannot follow
// the recording any further (a chunk that breaks the hash chain): Data is
// why. The channel closes after it.
const WatchFailed = "failed"

// TailOptions tunes Tail. The zero value follows at the defaults.
type TailOptions struct {
	// Poll is how often the store is asked for new chunks while they come.
	// Zero means DefaultTailPoll.
	Poll time.Duration
	// MaxPoll bounds the wait between polls, which doubles from Poll while
	// nothing new comes. Zero means DefaultTailMaxPoll (or Poll, if larger).
	MaxPoll time.Duration
	// Logger receives store errors a later poll retries. Nil: slog.Default().
	Logger *slog.Logger
}

func (o TailOptions) poll() time.Duration {
	if o.Poll > 0 {
		return o.Poll
	}
	return DefaultTailPoll
}

func (o TailOptions) maxPoll() time.Duration {
	if o.MaxPoll > 0 {
		return max(o.MaxPoll, o.poll())
	}
	return max(DefaultTailMaxPoll, o.poll())
}

func (o TailOptions) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// StoreTail follows live sessions' recordings in Store, for the console's
// live view of the sessions other replicas run.
type StoreTail struct {
	Store Store
	// FlushInterval is the recorders' recordings.flush_interval, which the
	// view lags by. Zero means the default, 1s.
	FlushInterval time.Duration
	// Faster says the replica that runs a watched session is asked to
	// flush its recording every WatchedFlushInterval while it is watched
	// (the console's AskFlush): the tail polls every WatchedTailPoll (up
	// to WatchedTailMaxPoll) unless Options say otherwise, and Lag counts
	// the faster flush.
	Faster  bool
	Options TailOptions
}

// WatchRecording follows the recording of session id, started at started,
// as Tail does.
func (t StoreTail) WatchRecording(ctx context.Context, id string, started time.Time) (<-chan Watched, func()) {
	return Tail(ctx, SessionSource(t.Store, id, started), t.options())
}

// Lag is how long a record takes at most, when the store is quick, from
// the session to a watcher: a flush interval, then a poll, and another
// poll it may be held back for (tailer.flush).
func (t StoreTail) Lag() time.Duration {
	flush := Config{FlushInterval: t.FlushInterval}.flushInterval()
	if t.Faster {
		flush = min(flush, WatchedFlushInterval)
	}
	return flush + 2*t.options().poll()
}

// options are the tail's, with the faster polls when Faster.
func (t StoreTail) options() TailOptions {
	o := t.Options
	if t.Faster && o.Poll == 0 {
		o.Poll = WatchedTailPoll
	}
	if t.Faster && o.MaxPoll == 0 {
		o.MaxPoll = WatchedTailMaxPoll
	}
	return o
}

// Tail follows the recording of a live session in its store: the records
// uploaded from now on, as the Watched records Recorder.Watch gives, and
// first the size of each terminal and the latest exec commands in the
// recording so far. It checks the hash chain of every chunk it reads. The
// channel closes after a WatchEnd record, once the recording is sealed
// (its manifest is in the store); after a WatchFailed one, when a chunk
// cannot be read as recorded; or when ctx ends or stop is called. Store
// errors are retried at the next poll. Keystrokes are never sent.
func Tail(ctx context.Context, src Source, opts TailOptions) (events <-chan Watched, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	t := &tailer{src: Source{store: tailStore{src.store}, dir: src.dir, id: src.id}, opts: opts,
		out: make(chan Watched, watchBuffer), done: make(chan struct{})}
	go t.run(ctx)
	var once sync.Once
	return t.out, func() {
		once.Do(func() {
			cancel()
			<-t.done
		})
	}
}

// tailer is one Tail: where it is in the chain, and what a new watcher is
// shown first.
type tailer struct {
	src  Source
	opts TailOptions
	out  chan Watched
	done chan struct{}

	cur    FeedCursor
	live   bool       // caught up: records are sent, not only noted
	batch  []Watched  // records read and not sent yet, sent in time order
	held   int        // bytes of data in batch
	seen   time.Time  // the newest record read before this poll
	end    *Watched   // the end event, sent last
	start  watchStart // terminal sizes; exec commands until live
	ce     castEvent  // reused by cast
	logged bool       // a store error was logged since the last good poll
	fresh  time.Time  // when a poll last found chunks
}

// run polls until the recording is sealed or ctx ends.
func (t *tailer) run(ctx context.Context) {
	defer close(t.done)
	defer close(t.out)
	wait := time.Duration(0)
	t.fresh = time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		read, sealed, err := t.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if done := t.settle(ctx, sealed, err); done {
			return
		}
		wait = t.next(wait, read, err)
		timer.Reset(wait)
	}
}

// settle sends what a poll produced and says whether following is over.
func (t *tailer) settle(ctx context.Context, sealed bool, err error) bool {
	var se storeError
	switch {
	case err != nil && !errors.As(err, &se):
		t.send(ctx, Watched{Time: time.Now().UTC(), Kind: WatchFailed, Data: []byte(err.Error())})
		return true
	case err != nil:
		if !t.logged {
			t.opts.logger().Warn("live view: reading the recording from the store failed; retrying", "session", t.src.id, "err", err)
			t.logged = true
		}
		return false
	}
	t.logged = false
	if !t.live {
		t.live = true
		t.sendState(ctx)
	}
	if sealed {
		t.send(ctx, t.endRecord())
	}
	return sealed
}

// next is the wait before the next poll: Poll while chunks come, twice
// the last wait (up to MaxPoll) once none came for tailQuiet or the store
// fails.
func (t *tailer) next(wait time.Duration, read int, err error) time.Duration {
	now := time.Now()
	if read > 0 && err == nil {
		t.fresh = now
	}
	if err == nil && now.Sub(t.fresh) < tailQuiet {
		return t.opts.poll()
	}
	return min(max(2*wait, t.opts.poll()), t.opts.maxPoll())
}

// poll reads the chunks uploaded since the last poll and sends their
// records. sealed is true once the manifest is in the store and every
// chunk it names was read.
func (t *tailer) poll(ctx context.Context) (read int, sealed bool, err error) {
	m, _, err := t.src.loadManifest(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("follow %s: %w", t.src.label(), err)
	}
	if t.cur.Next == 0 {
		cur, err := t.src.feedStart(ctx)
		if errors.Is(err, ErrNotFound) && m == nil {
			return 0, false, nil // session.json is uploaded within a flush interval
		}
		if err != nil {
			return 0, false, err
		}
		t.cur = cur
	}
	names, err := t.src.chainOrder(ctx, m)
	if err != nil {
		return 0, false, fmt.Errorf("follow %s: %w", t.src.label(), err)
	}
	read, left, err := t.readChunks(ctx, names)
	sealed = err == nil && m != nil && left == 0
	if err == nil {
		t.flush(ctx, read == 0 || sealed)
	}
	return read, sealed, err
}

// readChunks reads the chunks from the cursor on, as many as the store
// holds in a row (once live, until they hold tailBatchBytes), and returns how many it
// read and how many of names it left.
func (t *tailer) readChunks(ctx context.Context, names []string) (read, left int, err error) {
	mark, held := 0, 0
	enough := func(int) bool {
		mark, held = len(t.batch), t.held // what the batch was before the chunk about to be read
		return t.held >= tailBatchBytes
	}
	read, left, err = t.src.walkFrom(ctx, names, &t.cur, enough, t.chunk)
	if err == nil {
		return read, left, nil
	}
	t.batch, t.held = t.batch[:mark], held // the chunk is read again at the next poll
	if errors.Is(err, ErrNotFound) {
		return read, left, nil
	}
	return read, left, fmt.Errorf("follow %s: %w", t.src.label(), err)
}

// flush sends the batch in time order; records of one time keep chain
// order. One flush of the session cuts a chunk per stream, uploaded one
// after the other, so a poll may find a flush's terminal chunk and not yet
// its exec-stream chunk, whose records may be older. So, unless all (a
// poll that found nothing new: every flush it saw is whole; or the
// recording is sealed), only records no newer than what earlier polls
// read are sent; the newer wait one poll for the rest of their flush.
func (t *tailer) flush(ctx context.Context, all bool) {
	if len(t.batch) == 0 {
		return
	}
	slices.SortStableFunc(t.batch, func(a, b Watched) int { return a.Time.Compare(b.Time) })
	newest := t.batch[len(t.batch)-1].Time
	n := len(t.batch)
	if !all {
		n, _ = slices.BinarySearchFunc(t.batch, t.seen, func(ev Watched, at time.Time) int {
			if ev.Time.After(at) {
				return 1
			}
			return -1
		})
	}
	for _, ev := range t.batch[:n] {
		if !t.send(ctx, ev) {
			break
		}
		t.held -= len(ev.Data)
	}
	rest := copy(t.batch, t.batch[n:])
	clear(t.batch[rest:])
	t.batch = t.batch[:rest]
	if newest.After(t.seen) {
		t.seen = newest
	}
}

// sendState tells a new watcher what Recorder.Watch tells one: the size of
// each terminal, and the latest exec commands.
func (t *tailer) sendState(ctx context.Context) {
	for _, ev := range t.start.records(time.Now().UTC()) {
		t.send(ctx, ev)
	}
	t.start.execs = nil
}

// endRecord is the end event read, or, for a recording sealed without one
// (its replica was lost and another sealed it), one saying so.
func (t *tailer) endRecord() Watched {
	if t.end != nil {
		return *t.end
	}
	ev := Event{Time: time.Now().UTC(), Type: EventEnd, Reason: "the recording was sealed without an end event (its replica was lost)"}
	line, _ := appendEvent(nil, &ev) // a time and two strings always encode
	return Watched{Time: ev.Time, Kind: WatchEnd, Data: line}
}

// send hands ev to the watcher, waiting for room: Tail reads the store,
// so a slow watcher holds back only itself.
func (t *tailer) send(ctx context.Context, ev Watched) bool {
	select {
	case t.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// tailStore marks the store's own failures (storeError), which a later
// poll may not meet, apart from a recording's damage, which every poll
// would.
type tailStore struct{ Store }

// storeError is a failure of the store, not of the recording.
type storeError struct{ err error }

func (e storeError) Error() string { return e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

func (s tailStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, storeError{err}
	}
	return tailReader{rc}, nil
}

func (s tailStore) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := s.Store.List(ctx, prefix)
	if err != nil {
		return nil, storeError{err}
	}
	return keys, nil
}

// tailReader marks an object's read errors (a connection lost mid-body)
// as the store's.
type tailReader struct{ io.ReadCloser }

func (r tailReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = storeError{err}
	}
	return n, err
}

// readLines calls each with every line of a chunk's payload.
func readLines(payload *bufio.Reader, each func([]byte) error) error {
	lr := newLineReader(payload)
	for {
		line, err := lr.next(nil)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err == nil {
			err = each(line)
		}
		if err != nil {
			return err
		}
	}
}
