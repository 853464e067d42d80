package recorder

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tornSuffix marks spool files that were not completely written when the
// process died; they are not part of the recording and are never uploaded.
const tornSuffix = ".torn"

// recoverSpool queues every session left in the spool. Sealed ones only
// need uploading; those that were live when the process died are sealed
// now as incomplete, with what was flushed.
func (r *Recorder) recoverSpool(ctx context.Context) error {
	ents, err := os.ReadDir(r.Config.SpoolDir())
	if err != nil {
		return fmt.Errorf("scan spool: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || ctx.Err() != nil {
			continue
		}
		dir := filepath.Join(r.Config.SpoolDir(), e.Name())
		if strings.HasPrefix(e.Name(), retiredPrefix) {
			os.RemoveAll(dir) // stored; its removal was cut short
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, manifestObject)); err != nil {
			if err := r.recoverSession(dir); err != nil {
				r.logger().Error("recover crashed recording; left in the spool", "dir", dir, "err", err)
				continue
			}
		}
		r.pending[e.Name()] = true
	}
	return ctx.Err()
}

// recoverSession seals a session that was live when the process died.
func (r *Recorder) recoverSession(dir string) error {
	meta, err := readMeta(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// Open never returned: nothing was recorded under this id.
		return os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	entries, err := readLog(dir)
	if err != nil || len(entries) == 0 {
		if entries, err = sessionEntry(dir); err != nil {
			return err
		}
	}
	entries = extendFromChunks(dir, meta.ID, entries)
	kept := keepIntact(dir, entries)
	lost := quarantine(dir, len(kept))
	m := incompleteManifest(meta.ID, meta.StartedAt, kept)
	m.Reason = fmt.Sprintf("the bastion stopped while the session was live; recovered at %s with %d chunks",
		r.now().UTC().Format(time.RFC3339), len(kept)-1)
	if lost > 0 {
		m.Reason += fmt.Sprintf("; %d unflushed bytes were lost", lost)
	}
	if err := seal(dir, m, r.Key); err != nil {
		return err
	}
	r.logger().Warn("recovered a recording cut short by a crash", "session", meta.ID, "chunks", len(kept)-1)
	r.report(StateChange{Meta: meta, State: StateUploading, Dir: SessionDir(meta.ID, meta.StartedAt),
		EndedAt: m.EndedAt, Bytes: m.Counts.OutputBytes, Events: m.Counts.Events, Reason: m.Reason, Recovered: true})
	return nil
}

// incompleteManifest builds the manifest, in state incomplete, of a
// recording cut short with the chunks in entries: by a crash (recovery) or
// by a replica lost for good (SealFromStore).
func incompleteManifest(id string, started time.Time, entries []logEntry) Manifest {
	m := manifestFrom(id, entries)
	m.State, m.StartedAt = ManifestIncomplete, started
	if m.EndedAt.IsZero() {
		m.EndedAt = started
	}
	return m
}

// sessionEntry rebuilds the log's first entry when the log was lost.
func sessionEntry(dir string) ([]logEntry, error) {
	size, sum, err := hashFile(filepath.Join(dir, sessionObject))
	if err != nil {
		return nil, err
	}
	return []logEntry{{ManifestObject: ManifestObject{Name: sessionObject, Size: size, SHA256: sum}}}, nil
}

// extendFromChunks adds the entries a log would hold for chunks in the
// spool beyond its end: a session that ended (or died) before its first
// flush has no log, and a machine crash may cut a log short of chunks
// already on disk. Each is read back: a complete chunk of this session
// whose header continues the chain is the next entry, with its counts
// taken from its payload (cast records counted as event lines); the first
// that is not ends the list, and keepIntact and quarantine deal with it
// as before.
func extendFromChunks(dir, id string, entries []logEntry) []logEntry {
	for {
		seq := len(entries)
		e, ok := chunkEntry(filepath.Join(dir, chunkName(seq)), id, seq, entries[seq-1].SHA256)
		if !ok {
			e, ok = chunkEntry(filepath.Join(dir, chunkName(seq)+".tmp"), id, seq, entries[seq-1].SHA256)
		}
		if !ok {
			return entries
		}
		entries = append(entries, e)
	}
}

// chunkEntry reads the chunk at path and returns its log entry, if it is
// whole and is chunk seq of session id following prev.
func chunkEntry(path, id string, seq int, prev string) (logEntry, bool) {
	f, err := os.Open(path)
	if err != nil {
		return logEntry{}, false
	}
	defer f.Close()
	return readEntry(f, id, seq, prev)
}

// readEntry reads a chunk object from r and returns its log entry, if it
// is whole and is chunk seq of session id following prev. It serves the
// spool's recovery and the seal of a lost replica's recording from the
// store (sealremote.go).
func readEntry(r io.Reader, id string, seq int, prev string) (logEntry, bool) {
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(r, h)}
	hdr, payload, finish, err := ReadChunk(bufio.NewReader(cr))
	if err != nil || hdr.Session != id || hdr.Seq != seq || hdr.Prev != prev {
		return logEntry{}, false
	}
	stream, err := decodePayload(hdr, payload)
	if err != nil {
		return logEntry{}, false
	}
	e := logEntry{ManifestObject: ManifestObject{Name: chunkName(seq), Seq: seq, Stream: hdr.Stream}, Last: hdr.Last.UTC()}
	var count error
	if isExecStream(hdr.Stream) {
		count = countExecBytes(stream, strings.HasSuffix(hdr.Stream, "."+StreamStdin), &e)
	} else {
		count = countRecords(stream, hdr.Stream != eventsStream, &e)
	}
	if count != nil || finish() != nil {
		return logEntry{}, false
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return logEntry{}, false
	}
	e.Size, e.SHA256 = cr.n, hex.EncodeToString(h.Sum(nil))
	return e, true
}

// countRecords counts a chunk's stream lines into e: events, or asciicast
// events with the bytes of their output and input.
func countRecords(stream io.Reader, cast bool, e *logEntry) error {
	if !cast {
		return countLines(stream, e)
	}
	r := bufio.NewReaderSize(stream, readBufferSize)
	var ev castEvent
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		if err != nil {
			return err // a torn last line: the chunk is not whole
		}
		if line[0] == '{' {
			continue // the asciicast header
		}
		e.Records++
		if err := parseCastEvent(line, &ev); err != nil {
			return err
		}
		switch ev.code {
		case "o":
			e.Output += int64(len(ev.data))
		case "i":
			e.Input += int64(len(ev.data))
		}
	}
}

// countLines counts event lines without holding one: a line has no
// length limit.
func countLines(stream io.Reader, e *logEntry) error {
	buf := make([]byte, readBufferSize)
	last := byte('\n')
	for {
		n, err := stream.Read(buf)
		if n > 0 {
			e.Records += int64(bytes.Count(buf[:n], []byte{'\n'}))
			last = buf[n-1]
		}
		if errors.Is(err, io.EOF) {
			if last != '\n' {
				return io.ErrUnexpectedEOF // a torn last line: the chunk is not whole
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// countExecBytes counts a raw exec chunk's bytes into e, as one record.
func countExecBytes(stream io.Reader, stdin bool, e *logEntry) error {
	n, err := io.Copy(io.Discard, stream)
	if err != nil {
		return err
	}
	e.Records++
	if stdin {
		e.Input += n
	} else {
		e.Output += n
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// keepIntact returns the longest prefix of the log whose chunks are either
// intact in the spool or gone because they were uploaded. A chunk still
// under its temporary name but complete is published.
func keepIntact(dir string, entries []logEntry) []logEntry {
	for i, e := range entries[1:] {
		final := filepath.Join(dir, e.Name)
		// The crash may have been the process's alone, with the chunk still
		// in the page cache: the manifest about to name it must not reach
		// the disk before it does (seal syncs the names).
		if matches(final, e) && syncFile(final) == nil {
			continue
		}
		if matches(final+".tmp", e) && syncFile(final+".tmp") == nil {
			if os.Rename(final+".tmp", final) == nil {
				continue
			}
		}
		if exists(final) || exists(final+".tmp") {
			return entries[:i+1] // damaged: keep what precedes it
		}
		// Neither name exists: the uploader confirmed and removed it.
	}
	return entries
}

// quarantine renames chunk files beyond the kept prefix so they are never
// uploaded, and returns how many bytes they held.
func quarantine(dir string, kept int) int64 {
	ents, _ := os.ReadDir(dir)
	var lost int64
	for _, e := range ents {
		seq, ok := chunkSeq(strings.TrimSuffix(e.Name(), ".tmp"))
		if !ok || seq < kept && !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if info, err := e.Info(); err == nil {
			lost += info.Size()
		}
		p := filepath.Join(dir, e.Name())
		os.Rename(p, p+tornSuffix)
	}
	return lost
}

func matches(path string, e logEntry) bool {
	size, sum, err := hashFile(path)
	return err == nil && size == e.Size && sum == e.SHA256
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReader(f))
	return n, hex.EncodeToString(h.Sum(nil)), err
}
