package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// uploadTimeout bounds one object's upload, so a store that accepts the
// connection and then hangs is retried like one that refuses it.
const uploadTimeout = 2 * time.Minute

// upload is the uploader goroutine: it ships spool objects whenever there
// are some, and retries with capped exponential backoff while the store
// fails. It never deletes a spool object the store has not confirmed.
func (r *Recorder) upload(ctx context.Context) {
	defer close(r.done)
	backoff, down := uploadBackoffMin, false
	for {
		err := r.uploadPass(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if down {
				r.logger().Info("recording store reachable again; uploads resumed")
			}
			backoff, down = uploadBackoffMin, false
			select {
			case <-r.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		down = true
		r.Metrics.uploadFailed()
		r.logger().Warn("recording store unreachable; uploads delayed, spool keeps the data", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, r.maxBackoff())
	}
}

// uploadPass uploads what every pending session has in the spool.
func (r *Recorder) uploadPass(ctx context.Context) error {
	r.mu.Lock()
	ids := make([]string, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	r.busy = len(ids) > 0
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.busy = false
		r.Metrics.spooled(len(r.pending))
		r.mu.Unlock()
	}()
	slices.Sort(ids)
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			// Shutdown's deadline: the rest stays in the spool, queued for
			// the next Start, instead of holding the process past it.
			r.mu.Lock()
			for _, left := range ids[i:] {
				r.pending[left] = true
			}
			r.mu.Unlock()
			return err
		}
		r.mu.Lock()
		delete(r.pending, id) // a chunk written from now on queues it again
		r.mu.Unlock()
		if err := r.uploadSession(ctx, id); err != nil {
			r.mu.Lock()
			r.pending[id] = true
			r.mu.Unlock()
			return err
		}
	}
	return nil
}

// uploadSession ships one session's spool objects in chain order: chunks,
// then the signature, then manifest.json last, so a manifest in the store
// means every object it names was confirmed before it.
func (r *Recorder) uploadSession(ctx context.Context, id string) error {
	dir := filepath.Join(r.Config.SpoolDir(), id)
	meta, err := readMeta(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // already uploaded and removed
	}
	if err != nil {
		return err
	}
	key := SessionDir(meta.ID, meta.StartedAt)
	names, sealed, err := spoolObjects(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if name == sessionObject && r.metaUploaded(id, false) {
			continue
		}
		if err := r.putFile(ctx, key+name, filepath.Join(dir, name)); err != nil {
			return err
		}
		if name == sessionObject {
			r.metaUploaded(id, true)
		}
		if _, isChunk := chunkSeq(name); isChunk {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove uploaded %s from spool: %w", name, err)
			}
		}
	}
	if sealed {
		return r.finishUpload(dir, meta, key)
	}
	return nil
}

// spoolObjects lists what to upload: session.json, chunks by number and,
// when the session is sealed, the signature and the manifest.
func spoolObjects(dir string) (names []string, sealed bool, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, fmt.Errorf("read spool %s: %w", dir, err)
	}
	var chunks []string
	for _, e := range ents {
		switch name := e.Name(); {
		case name == manifestObject:
			sealed = true
		default:
			if _, ok := chunkSeq(name); ok {
				chunks = append(chunks, name)
			}
		}
	}
	slices.Sort(chunks) // fixed-width numbers sort in order
	names = append([]string{sessionObject}, chunks...)
	if sealed {
		names = append(names, sigObject, manifestObject)
	}
	return names, sealed, nil
}

func (r *Recorder) putFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open spooled %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat spooled %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	if l, ok := r.Store.(fileLinker); !ok || l.Link(ctx, key, path) != nil {
		// Not a file store, or another filesystem: copy.
		if err := r.Store.Put(ctx, key, f, info.Size()); err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
	}
	r.Metrics.uploaded(info.Size())
	return nil
}

// finishUpload removes a fully uploaded session from the spool and reports
// its final state.
func (r *Recorder) finishUpload(dir string, meta SessionMeta, key string) error {
	body, err := os.ReadFile(filepath.Join(dir, manifestObject))
	if err != nil {
		return fmt.Errorf("read spooled manifest: %w", err)
	}
	m, err := ParseManifest(body)
	if err != nil {
		return fmt.Errorf("spooled manifest of %s: %w", meta.ID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove uploaded session %s from spool: %w", meta.ID, err)
	}
	r.mu.Lock()
	delete(r.metaUp, meta.ID)
	r.mu.Unlock()
	state := map[string]State{ManifestComplete: StateStored, ManifestIncomplete: StateIncomplete,
		ManifestDegraded: StateDegraded}[m.State]
	r.report(StateChange{Meta: meta, State: state, Dir: key, EndedAt: m.EndedAt,
		Bytes: m.Counts.OutputBytes, Events: m.Counts.Events, Reason: m.Reason})
	return nil
}

func readMeta(dir string) (SessionMeta, error) {
	var meta SessionMeta
	body, err := os.ReadFile(filepath.Join(dir, sessionObject))
	if err != nil {
		return meta, err
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return meta, fmt.Errorf("parse spooled session.json in %s: %w", dir, err)
	}
	return meta, nil
}

// metaUploaded reports whether session.json of id is in the store, first
// marking it so when set is true.
func (r *Recorder) metaUploaded(id string, set bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if set {
		r.metaUp[id] = true
	}
	return r.metaUp[id]
}
