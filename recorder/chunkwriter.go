package recorder

import (
	"fmt"
	"sync"
)

// chunkJob is a cut chunk on its way to the spool, or with sync set a
// request to make everything written before it durable.
type chunkJob struct {
	payload []byte // the stream bytes
	stats   chunkStats
	sync    bool
	// plain stores the chunk uncompressed (chunk/1): the session is
	// producing output faster than it compresses.
	plain bool
	// ready is closed once stored holds the payload as it is stored.
	ready    chan struct{}
	stored   []byte
	encoding string
}

// Pipeline depth of a session: chunks cut but not yet written. Chunks are
// compressed concurrently (a busy session uses every core) and written in
// chain order; a writer that falls behind holds back the flusher and,
// through the bounded queue, the relay.
const (
	pendingChunks = 2
	spareBuffers  = pendingChunks + 1
)

// encodeChunk compresses j's payload, using at most one core per
// compression slot across all sessions, and hands the payload buffer back
// for reuse. With Config.Compression none, or when the session has fallen
// behind, the chunk is stored plain: compression costs more CPU than the
// rest of recording, and must never be why a session cannot be recorded
// (fail_closed would end it).
func (r *Recorder) encodeChunk(j *chunkJob, free chan []byte) {
	defer close(j.ready)
	enc := r.Config.encoding()
	if enc == "" || j.plain {
		j.stored = j.payload
		return
	}
	dst := takeOutput(len(j.payload))
	r.compressSlots <- struct{}{}
	j.stored, j.encoding = compressChunk(dst, j.payload, enc), enc
	<-r.compressSlots
	giveBuffer(free, j.payload)
}

// compressChunk appends payload, compressed as enc says, to dst.
func compressChunk(dst, payload []byte, enc string) []byte {
	if enc == encodingGzip {
		return appendGzip(dst, payload)
	}
	return appendZstd(dst, payload)
}

// outputs are the buffers compressed chunks wait in for the spool, shared
// by every session: a busy session reuses one per chunk in flight instead
// of allocating it, and what no session needs any more goes with the next
// garbage collections. (The session's own spare buffers are sized for its
// payloads, which a compressed chunk fills a fraction of.)
var outputs sync.Pool // of *[]byte

// takeOutput returns an empty buffer that holds n bytes compressed,
// incompressible data included, without growing.
func takeOutput(n int) []byte {
	n += n>>8 + 1024 // the worst case of zstd and gzip: stored blocks' headers
	if p, ok := outputs.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

// giveOutput hands a compressed chunk's buffer back once it is written.
func giveOutput(b []byte) {
	outputs.Put(&b)
}

// writeChunks is the session's chunk writer: it stores each chunk in
// chain order once it is encoded, and starts the syncs the flusher asks
// for. It runs until jobs is closed. A chunk the spool refuses is lost:
// the session is failed (or degraded) and the chain continues intact.
//
// Each chunk is queued for upload as soon as it is written, so the store
// follows a live session, except while the session is closing: finish
// queues the sealed session. The first flush tick queues the session even
// without a chunk, so a live session's session.json is in the store within
// one flush interval; a session shorter than that reaches the uploader
// only sealed.
func (s *Session) writeChunks(jobs <-chan *chunkJob, free chan []byte, done chan<- struct{}) {
	defer close(done)
	queued := false
	for j := range jobs {
		if j.sync {
			if err := s.spool.syncAsync(); err != nil {
				s.fail(fmt.Errorf("sync spool: %w", err))
			}
			if !queued {
				queued = s.queueUpload()
			}
			continue
		}
		if s.rec.beforeChunk != nil {
			s.rec.beforeChunk()
		}
		<-j.ready
		n := int(j.stats.output + j.stats.input)
		if err := s.spool.writeChunk(j.stored, j.encoding, j.stats); err != nil {
			s.lost(n, err)
		} else {
			s.rec.Metrics.recorded(n)
			if !s.isClosing() {
				queued = s.queueUpload()
			}
		}
		if j.encoding != "" {
			giveOutput(j.stored)
		} else {
			giveBuffer(free, j.stored) // the payload itself, stored plain
		}
	}
}

// queueUpload hands the live session to the uploader, which may then
// delete its uploaded chunks from the spool: the chunk log must be kept
// from now on. Without one the chunks stay in the spool until the seal.
func (s *Session) queueUpload() bool {
	if err := s.spool.keepLog(); err != nil {
		s.fail(err)
		return false
	}
	s.rec.queueUpload(s.meta.ID)
	return true
}

// isClosing reports whether Close was called.
func (s *Session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// takeBuffer returns a spare buffer, or nil for append to allocate.
func takeBuffer(free chan []byte) []byte {
	select {
	case b := <-free:
		return b
	default:
		return nil
	}
}

// giveBuffer keeps b for reuse unless it is large and was mostly unused
// (see recycle) or enough buffers are spare already.
func giveBuffer(free chan []byte, b []byte) {
	if b = recycle(b); b != nil {
		select {
		case free <- b:
		default:
		}
	}
}
