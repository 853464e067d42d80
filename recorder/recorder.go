package recorder

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Default upload retry bounds: fast enough to notice a store that is back,
// slow enough not to hammer one that is down.
const (
	uploadBackoffMin     = 100 * time.Millisecond
	defaultUploadBackoff = 30 * time.Second
)

// idlePoll is how often WaitIdle checks the uploader's queue.
const idlePoll = 10 * time.Millisecond

// errUploaderStopped: what is left in the spool waits for the next Start.
var errUploaderStopped = errors.New("uploader stopped; the rest waits in the spool for the next start")

// ErrRecorderClosed is returned by Open after Shutdown.
var ErrRecorderClosed = errors.New("recorder shut down")

// Recorder opens session recordings, spools them and uploads them to the
// store. Set the fields, call Start once, Open per session, and Shutdown.
type Recorder struct {
	// Config is the recordings block; it must pass Validate.
	Config Config
	// Store receives finished objects. Required.
	Store Store
	// Key signs manifests. Required.
	Key ed25519.PrivateKey
	// Logger receives WARN lines while the store is unreachable; nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnState is called (from recorder goroutines, so it must not block
	// long) whenever a recording changes state, to keep the session index;
	// nil means states are not reported.
	OnState func(StateChange)
	// Metrics receives counters and gauges; nil records none.
	Metrics *Metrics
	// MaxBackoff caps the wait between upload retries; zero means 30s.
	MaxBackoff time.Duration
	// ChunkSize is the amount of stream data (before compression) at which
	// a chunk is cut before the flush interval ends; zero means 4 MiB.
	ChunkSize int
	// BufferSize bounds the bytes a session queues between the relay and
	// the spool; zero means 16 MiB.
	BufferSize int
	// MaxWriteWait is the longest a write waits for buffer space before the
	// recording is declared unable to keep up; zero means 2s.
	MaxWriteWait time.Duration

	// beforeChunk, when set by tests, runs before each chunk is written:
	// it stands in for a slow disk.
	beforeChunk func()

	// compressSlots bounds the chunks compressing at once, across all
	// sessions, to the number of cores.
	compressSlots chan struct{}

	mu      sync.Mutex
	orders  map[string]*stateOrder // per session, see report
	started bool
	closed  bool
	live    map[string]*Session
	pending map[string]bool // sessions with spool objects to upload
	metaUp  map[string]bool // sessions whose session.json is in the store
	busy    bool            // the uploader is in a pass
	wake    chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}

	// sealed holds what finish knows of a session it just sealed, for the
	// uploader's next look at it, which then need not read it back.
	sealed map[string]sealedSession
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Recorder) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// report passes a state change to OnState. Changes of one session are
// delivered one at a time and never backwards: the uploader may finish
// (stored) while the session is still reporting uploading, and an index
// fed from OnState must end at the final state.
func (r *Recorder) report(c StateChange) {
	if r.OnState == nil {
		return
	}
	o := r.reportOrder(c.Meta.ID)
	o.mu.Lock()
	defer o.mu.Unlock()
	if stateRank(c.State) < stateRank(o.last) {
		return
	}
	o.last = c.State
	if stateRank(c.State) == stateRank(StateStored) {
		o.final = r.now()
	}
	r.OnState(c)
}

// stateOrder serialises one session's state reports.
type stateOrder struct {
	mu    sync.Mutex
	last  State
	final time.Time // when a final state was reported; zero before
}

// stateOrderKeep is how long a session's order is kept after its final
// state, so a straggling earlier report is still recognised as late.
const stateOrderKeep = time.Minute

func (r *Recorder) reportOrder(id string) *stateOrder {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.orders == nil {
		r.orders = map[string]*stateOrder{}
	}
	if len(r.orders) >= 1024 && len(r.orders)%256 == 0 {
		r.pruneOrders()
	}
	o := r.orders[id]
	if o == nil {
		o = &stateOrder{}
		r.orders[id] = o
	}
	return o
}

// pruneOrders forgets sessions whose final state is older than
// stateOrderKeep. Called with r.mu held.
func (r *Recorder) pruneOrders() {
	cutoff := r.now().Add(-stateOrderKeep)
	for id, o := range r.orders {
		if o.mu.TryLock() {
			if !o.final.IsZero() && o.final.Before(cutoff) {
				delete(r.orders, id)
			}
			o.mu.Unlock()
		}
	}
}

// stateRank orders states as a session passes them; the final states share
// the last rank.
func stateRank(s State) int {
	switch s {
	case "":
		return -1
	case StateLive:
		return 0
	case StateUploading:
		return 1
	}
	return 2
}

func (r *Recorder) chunkSize() int {
	if r.ChunkSize > 0 {
		return r.ChunkSize
	}
	return defaultChunkSize
}

func (r *Recorder) bufferSize() int {
	if r.BufferSize > 0 {
		return r.BufferSize
	}
	return defaultBufferSize
}

func (r *Recorder) maxWriteWait() time.Duration {
	if r.MaxWriteWait > 0 {
		return r.MaxWriteWait
	}
	return defaultMaxWriteWait
}

func (r *Recorder) maxBackoff() time.Duration {
	if r.MaxBackoff > 0 {
		return r.MaxBackoff
	}
	return defaultUploadBackoff
}

// Start checks the configuration, recovers sessions left in the spool by a
// previous process (sealing those that were live as incomplete), and starts
// the uploader. ctx bounds the recovery only.
func (r *Recorder) Start(ctx context.Context) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(r.Config.SpoolDir(), 0o700); err != nil {
		return fmt.Errorf("create spool: %w", err)
	}
	r.mu.Lock()
	r.started, r.live, r.pending, r.metaUp = true, map[string]*Session{}, map[string]bool{}, map[string]bool{}
	r.sealed = map[string]sealedSession{}
	r.wake, r.done = make(chan struct{}, 1), make(chan struct{})
	r.compressSlots = make(chan struct{}, runtime.GOMAXPROCS(0))
	r.mu.Unlock()
	if err := r.recoverSpool(ctx); err != nil {
		return err
	}
	upCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go r.upload(upCtx)
	return nil
}

func (r *Recorder) check() error {
	if err := r.Config.Validate(); err != nil {
		return err
	}
	if r.Store == nil {
		return errors.New("recorder: no store")
	}
	if len(r.Key) != ed25519.PrivateKeySize {
		return errors.New("recorder: no signing key")
	}
	return nil
}

// Open starts recording a session: session.json is durably in the spool
// when it returns. The proxy must Close the session.
func (r *Recorder) Open(ctx context.Context, meta SessionMeta) (*Session, error) {
	if err := validSessionID(meta.ID); err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	if meta.StartedAt.IsZero() {
		meta.StartedAt = r.now()
	}
	meta.StartedAt = meta.StartedAt.UTC()
	capture := r.capture(meta.Target)
	if meta.Protocol == "ssh" {
		meta.ExecCapture = &capture
	}
	body, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("open recording %s: encode session.json: %w", meta.ID, err)
	}
	s, err := r.register(meta)
	if err != nil {
		return nil, err
	}
	s.capture = capture
	s.spool, err = createSpool(filepath.Join(r.Config.SpoolDir(), meta.ID), append(body, '\n'))
	if err != nil {
		r.forget(s)
		return nil, fmt.Errorf("open recording %s: %w", meta.ID, err)
	}
	r.Metrics.addLive(1)
	// Not queued for upload yet: the flusher queues it at its first tick
	// or first chunk, or sealed at Close (see writeChunks).
	r.report(StateChange{Meta: meta, State: StateLive, Dir: s.dir})
	go s.run(r.Config.flushInterval())
	return s, nil
}

// register reserves the session id.
func (r *Recorder) register(meta SessionMeta) (*Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.started:
		return nil, errors.New("open recording: recorder not started")
	case r.closed:
		return nil, ErrRecorderClosed
	case r.live[meta.ID] != nil:
		return nil, fmt.Errorf("open recording %s: already open", meta.ID)
	}
	if _, err := os.Stat(filepath.Join(r.Config.SpoolDir(), meta.ID)); err == nil {
		return nil, fmt.Errorf("open recording %s: already in the spool", meta.ID)
	}
	s := &Session{rec: r, meta: meta, dir: SessionDir(meta.ID, meta.StartedAt),
		q: &queue{}, spare: &queue{}, space: make(chan struct{}), failed: make(chan struct{}),
		wake: make(chan struct{}, 1), finished: make(chan struct{})}
	r.live[meta.ID] = s
	return s, nil
}

// forget drops a session from the live set once it is sealed (or failed to open).
func (r *Recorder) forget(s *Session) {
	r.mu.Lock()
	delete(r.live, s.meta.ID)
	r.mu.Unlock()
	if s.spool != nil {
		r.Metrics.addLive(-1)
	}
}

// queueUpload tells the uploader that a session has objects in the spool.
func (r *Recorder) queueUpload(id string) {
	r.mu.Lock()
	r.pending[id] = true
	r.Metrics.spooled(len(r.pending))
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// WaitIdle waits until every sealed recording has been uploaded and every
// chunk written so far is in the store, or ctx is done.
func (r *Recorder) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(idlePoll)
	defer t.Stop()
	for {
		r.mu.Lock()
		idle := len(r.pending) == 0 && !r.busy
		r.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for uploads: %w", ctx.Err())
		case <-r.done:
			return fmt.Errorf("wait for uploads: %w", errUploaderStopped)
		case <-t.C:
		}
	}
}

// Shutdown refuses new sessions, waits for uploads to drain until ctx is
// done, and stops the uploader. What is not uploaded stays in the spool for
// the next Start.
func (r *Recorder) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	err := r.WaitIdle(ctx)
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	if errors.Is(err, errUploaderStopped) {
		return nil // a second Shutdown
	}
	return err
}
