package recorder

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// logObject is the spool's append-only list of the objects written so far,
// so that a session recovered after a crash can be sealed even though its
// early chunks were already uploaded and deleted from the spool. A session
// gets one only once its chunks may be uploaded while it is live (keepLog):
// until then every chunk is in the spool, and recovery reads what the log
// would say from the chunks themselves (extendFromChunks). It is never a
// store object: it ends in the suffix the file store treats as an
// unfinished write and never lists, so a sealed spool directory can become
// the session's directory in the file store by one rename (see
// FileStore.moveDir) even if a crash leaves the log behind in it.
const logObject = "chunks.log.tmp"

// legacyLogObject is the log's name in spools written by earlier versions,
// still read by recovery.
const legacyLogObject = "chunks.log"

// logEntry is one line of chunks.log.
type logEntry struct {
	ManifestObject
	Records int64     `json:"records"`
	Output  int64     `json:"output"`
	Input   int64     `json:"input"`
	Last    time.Time `json:"last"`
}

// spoolSession is one session's spool directory. Only the session's flusher
// goroutine writes to it.
type spoolSession struct {
	dir      string
	id       string
	log      *os.File
	unsynced []*os.File
	syncing  chan error // result of the sync in flight, nil when none
	prev     string     // hex SHA-256 of the last object written
	entries  []logEntry
}

// createSpool makes the session's spool directory and durably writes
// session.json, the first link of the hash chain: once it returns, a crash
// leaves a spool that recovery finalises as incomplete. It costs two
// fsyncs, session.json's data and its name in the directory.
func createSpool(dir string, meta []byte) (*spoolSession, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil { // the spool itself was removed
			return nil, fmt.Errorf("create spool directory: %w", err)
		}
	}
	tmp := filepath.Join(dir, sessionObject+".tmp")
	if err := writeFileSync(tmp, bytes.NewReader(meta), int64(len(meta))); err != nil {
		return nil, fmt.Errorf("write session.json: %w", err)
	}
	// Renamed into place so that a session.json that exists is whole:
	// recovery deletes a spool without one (Open never returned).
	if err := rename(tmp, filepath.Join(dir, sessionObject)); err != nil {
		return nil, fmt.Errorf("write session.json: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	s := &spoolSession{dir: dir, id: filepath.Base(dir)}
	sum := sha256.Sum256(meta)
	e := logEntry{ManifestObject: ManifestObject{Name: sessionObject, Size: int64(len(meta)), SHA256: hex.EncodeToString(sum[:])}}
	return s, s.appendLog(e)
}

// keepLog starts the session's chunk log, with every entry so far, before
// the uploader may take (and delete) a chunk of the live session: from
// then on recovery needs it. Its first lines and its name are synced now
// (two fsyncs, once per session that lives past a flush interval); later
// lines with the chunks they name.
func (s *spoolSession) keepLog() error {
	if s.log != nil {
		return nil
	}
	var lines []byte
	for _, e := range s.entries {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode chunk log entry: %w", err)
		}
		lines = append(append(lines, line...), '\n')
	}
	log, err := os.OpenFile(filepath.Join(s.dir, logObject), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open chunk log: %w", err)
	}
	if _, err := log.Write(lines); err != nil {
		log.Close()
		return fmt.Errorf("write chunk log: %w", err)
	}
	if err := log.Sync(); err != nil {
		log.Close()
		return fmt.Errorf("sync chunk log: %w", err)
	}
	s.log = log
	return syncDir(s.dir)
}

func (s *spoolSession) appendLog(e logEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode chunk log entry: %w", err)
	}
	if s.log != nil {
		if _, err := s.log.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("append chunk log: %w", err)
		}
	}
	s.entries = append(s.entries, e)
	s.prev = e.SHA256
	return nil
}

// chunkStats is what the flusher knows about a chunk it hands to writeChunk.
type chunkStats struct {
	stream        string
	first, last   time.Time
	records       int64
	output, input int64
}

// writeChunk writes the next chunk of the chain: a chunk/2 with payload
// stored in encoding, or a plain chunk/1 when encoding is empty. The file
// appears under its final name only after its log entry, so recovery
// finds every chunk it can name. It is synced by the next sync call.
func (s *spoolSession) writeChunk(payload []byte, encoding string, st chunkStats) error {
	seq, format := len(s.entries), chunkFormat
	if encoding == "" {
		format = chunkFormatV1
	}
	hdr := ChunkHeader{Format: format, Session: s.id, Seq: seq, Stream: st.stream,
		Prev: s.prev, Encoding: encoding, Size: int64(len(payload)), First: st.first, Last: st.last}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("encode chunk %d header: %w", seq, err)
	}
	hb = append(hb, '\n')
	h := sha256.New()
	h.Write(hb)
	h.Write(payload)
	name := chunkName(seq)
	final := filepath.Join(s.dir, name)
	f, err := os.OpenFile(final+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create chunk %d: %w", seq, err)
	}
	if err := writeAll(f, hb, payload); err != nil {
		f.Close()
		os.Remove(final + ".tmp")
		return fmt.Errorf("write chunk %d: %w", seq, err)
	}
	startWriteback(f)
	s.unsynced = append(s.unsynced, f)
	e := logEntry{ManifestObject: ManifestObject{Name: name, Seq: seq, Stream: st.stream,
		Size: int64(len(hb) + len(payload)), SHA256: hex.EncodeToString(h.Sum(nil))},
		Records: st.records, Output: st.output, Input: st.input, Last: st.last}
	if err := s.appendLog(e); err != nil {
		return err
	}
	if err := rename(final+".tmp", final); err != nil {
		return fmt.Errorf("publish chunk %d: %w", seq, err)
	}
	return nil
}

func writeAll(f *os.File, parts ...[]byte) error {
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// syncAsync starts making everything written so far durable in the
// background, so the flusher keeps encoding while the disk works. It first
// waits for the previous sync and returns its error: at most two flush
// intervals of data are ever unsynced, and a disk slower than the session
// shows up as back-pressure.
func (s *spoolSession) syncAsync() error {
	err := s.waitSync()
	if len(s.unsynced) == 0 {
		// Nothing was written since the last sync: an idle session costs no
		// fsync (500 idle sessions would otherwise ask the disk for 1,000 a second).
		return err
	}
	files := s.unsynced
	s.unsynced = nil
	done := make(chan error, 1)
	s.syncing = done
	log, dir := s.log, s.dir
	go func() { done <- syncFiles(files, log, dir) }()
	return err
}

// sync makes everything written so far durable before it returns.
func (s *spoolSession) sync() error {
	err := s.waitSync()
	files := s.unsynced
	s.unsynced = nil
	if serr := syncFiles(files, s.log, s.dir); err == nil {
		err = serr
	}
	return err
}

func (s *spoolSession) waitSync() error {
	if s.syncing == nil {
		return nil
	}
	err := <-s.syncing
	s.syncing = nil
	return err
}

// syncFiles fsyncs and closes chunk files, then the log and the directory.
func syncFiles(files []*os.File, log *os.File, dir string) error {
	var firstErr error
	for _, f := range files {
		if err := f.Sync(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("sync chunk: %w", err)
		}
		f.Close()
	}
	if log != nil {
		if err := log.Sync(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("sync chunk log: %w", err)
		}
	}
	if err := syncDir(dir); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// syncChunks makes the data of every chunk written so far durable, for
// the seal that follows and names them: the directory is left to seal,
// which syncs it anyway, and the log too, as a sealed spool is never
// recovered from its log and an unsealed one is read from its chunks
// where its log falls short (extendFromChunks).
func (s *spoolSession) syncChunks() error {
	err := s.waitSync()
	for _, f := range s.unsynced {
		if serr := f.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("sync chunk: %w", serr)
		}
		f.Close()
	}
	s.unsynced = nil
	return err
}

// close makes the log and everything written durable, for recovery, and
// releases the spool's files.
func (s *spoolSession) close() error {
	err := s.sync()
	s.release()
	return err
}

// release closes the log, if the session has one.
func (s *spoolSession) release() {
	if s.log != nil {
		s.log.Close()
	}
}

// manifest builds the manifest of everything in the log.
func manifestFrom(id string, entries []logEntry) Manifest {
	m := Manifest{Format: manifestFormat, Session: id}
	idx := map[string]int{}
	for _, e := range entries {
		m.Objects = append(m.Objects, e.ManifestObject)
		if e.Seq == 0 {
			continue
		}
		if _, ok := idx[e.Stream]; !ok {
			idx[e.Stream] = len(m.Streams)
			m.Streams = append(m.Streams, StreamSummary{Name: e.Stream})
		}
		st := &m.Streams[idx[e.Stream]]
		st.Chunks++
		st.Bytes += e.Size
		st.Records += e.Records
		m.Counts.OutputBytes += e.Output
		m.Counts.InputBytes += e.Input
		if e.Stream == eventsStream {
			m.Counts.Events += e.Records
		}
		m.EndedAt = e.Last
	}
	return m
}

// seal signs m and writes manifest.json.sig, then manifest.json: a spool
// directory with manifest.json is finished and only waits for upload. The
// data of every chunk m names must be durable already (syncChunks); their
// names need not be.
//
// A sealed spool must never lack what its manifest names, and a sealed
// spool is what the uploader may move into the file store whole, so:
// fsync the signature and the manifest's temporary file (their data), then
// the directory (the chunks' and the signature's names: they are durable
// before manifest.json can be), rename manifest.json into place and fsync
// the directory again (the seal itself, before the uploader or Close's
// caller relies on it). Until that rename a crash leaves an unsealed
// spool, which recovery seals again, overwriting the signature: that is why
// the signature needs no temporary file of its own.
func seal(dir string, m Manifest, key ed25519.PrivateKey) error {
	m.Signer = fingerprintOf(key)
	body, sig, err := signedManifest(m, key)
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, sigObject), bytes.NewReader(sig), int64(len(sig))); err != nil {
		return fmt.Errorf("write manifest signature: %w", err)
	}
	tmp := filepath.Join(dir, manifestObject+".tmp")
	if err := writeFileSync(tmp, bytes.NewReader(body), int64(len(body))); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := rename(tmp, filepath.Join(dir, manifestObject)); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return syncDir(dir)
}

// readLog parses the chunk log, ignoring a torn last line.
func readLog(dir string) ([]logEntry, error) {
	f, err := os.Open(filepath.Join(dir, logObject))
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.Open(filepath.Join(dir, legacyLogObject))
	}
	if err != nil {
		return nil, fmt.Errorf("open chunk log: %w", err)
	}
	defer f.Close()
	var out []logEntry
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil { // EOF, possibly after a torn line
			return out, nil
		}
		var e logEntry
		if json.Unmarshal(line, &e) != nil || e.Seq != len(out) {
			return out, nil
		}
		out = append(out, e)
	}
}
