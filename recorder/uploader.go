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
// means every object it names was confirmed before it. A sealed session of
// which nothing is in the store yet goes to a file store on the spool's
// filesystem whole, by one directory rename.
func (r *Recorder) uploadSession(ctx context.Context, id string) error {
	dir := filepath.Join(r.Config.SpoolDir(), id)
	ss, sp, err := r.lookAtSpool(id, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // already uploaded and removed
	}
	if err != nil {
		return err
	}
	meta := ss.meta
	key := SessionDir(meta.ID, meta.StartedAt)
	if sp.sealed && ss.spooled { // e.g. recovered at start: a survivor may have sealed it meanwhile
		if done, err := r.continueSealed(ctx, dir, key, ss, sp); done || err != nil {
			return err
		}
	}
	if sp.sealed {
		if r.moveSession(dir, meta, key, sp, ss.manifest) {
			return nil
		}
	}
	logSynced := sp.sealed // a sealed spool is never recovered from its log
	for _, name := range sp.upload {
		if name == sessionObject && r.metaUploaded(id, false) || name == sigObject || name == manifestObject {
			continue // the seal goes last, by storeSeal
		}
		// In a sealed spool every file is durable (seal synced it); a live
		// session's newest chunk may not be yet.
		if err := r.putFile(ctx, key+name, filepath.Join(dir, name), sp.sealed); err != nil {
			return err
		}
		if name == sessionObject {
			r.metaUploaded(id, true)
		}
		if _, isChunk := chunkSeq(name); isChunk {
			// The log's line for this chunk must outlive the chunk's spool
			// copy: a crash before the flusher's next sync would otherwise
			// seal a manifest without a chunk the store holds.
			if !logSynced {
				if err := syncLog(dir); err != nil {
					return fmt.Errorf("sync chunk log of %s: %w", id, err)
				}
				logSynced = true
			}
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("remove uploaded %s from spool: %w", name, err)
			}
		}
	}
	if sp.sealed {
		if continued, err := r.storeSeal(ctx, dir, key, ss, sp); continued || err != nil {
			return err
		}
		if err := removeSpool(dir, sp.all); err != nil {
			return fmt.Errorf("remove uploaded session %s from spool: %w", meta.ID, err)
		}
		r.stored(meta, key, ss.manifest)
	}
	return nil
}

// storeSeal stores a sealed spool's signature and manifest, each only
// where there is none (writeSeal). Should another replica have sealed the
// session from the store meanwhile (a survivor that took this replica for
// lost, in the same moment it came back), that seal stands, and the spool
// goes beside it as a continuation: continued is then true.
func (r *Recorder) storeSeal(ctx context.Context, dir, key string, ss sealedSession, sp spoolDir) (continued bool, err error) {
	sig, err := os.ReadFile(filepath.Join(dir, sigObject))
	if err != nil {
		return false, fmt.Errorf("read spooled signature of %s: %w", ss.meta.ID, err)
	}
	body, err := os.ReadFile(filepath.Join(dir, manifestObject))
	if err != nil {
		return false, fmt.Errorf("read spooled manifest of %s: %w", ss.meta.ID, err)
	}
	wctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	err = writeSeal(wctx, r.Store, key, sig, body)
	cancel()
	if !errors.Is(err, ErrExists) {
		if err != nil {
			return false, fmt.Errorf("upload seal of %s: %w", ss.meta.ID, err)
		}
		r.Metrics.uploaded(int64(len(sig) + len(body)))
		return false, nil
	}
	if _, err := awaitManifest(ctx, Source{store: r.Store, dir: key, id: ss.meta.ID}); err != nil {
		return false, err
	}
	r.logger().Warn("another replica sealed this session from the store meanwhile; its seal stands, this replica's chunks go beside it",
		"session", ss.meta.ID)
	if continued, err = r.continueSealed(ctx, dir, key, ss, sp); err == nil && !continued {
		err = fmt.Errorf("upload seal of %s: the store holds another seal, which cannot be continued", ss.meta.ID)
	}
	return continued, err
}

// lookAtSpool reads what is in a session's spool directory, and its
// metadata and (once sealed) manifest, unless finish handed them over.
func (r *Recorder) lookAtSpool(id, dir string) (sealedSession, spoolDir, error) {
	ss, handed := r.takeSealed(id)
	if !handed {
		var err error
		if ss.meta, err = readMeta(dir); err != nil {
			return ss, spoolDir{}, err
		}
	}
	sp, err := readSpool(dir)
	if err != nil || !sp.sealed || handed {
		return ss, sp, err
	}
	ss.manifest, err = spooledManifest(dir, ss.meta)
	ss.spooled = true
	return ss, sp, err
}

// sealedSession is what finish hands the uploader about a session it
// sealed: its metadata and manifest, as written to the spool.
type sealedSession struct {
	meta     SessionMeta
	manifest Manifest
	// spooled: read from the spool, not handed over by finish: left by an
	// earlier process, or a retry; its store may hold a seal by another
	// replica (see continueSealed).
	spooled bool
}

// handOver queues a session finish has sealed for upload.
func (r *Recorder) handOver(ss sealedSession) {
	r.mu.Lock()
	r.sealed[ss.meta.ID] = ss
	r.mu.Unlock()
	r.queueUpload(ss.meta.ID)
}

// takeSealed returns and forgets what finish handed over about id. Only
// the first look needs it: should that upload fail, later ones read the
// spool, so a long outage does not hold every manifest in memory.
func (r *Recorder) takeSealed(id string) (sealedSession, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss, ok := r.sealed[id]
	delete(r.sealed, id)
	return ss, ok
}

// syncLog makes a live session's chunk log durable.
func syncLog(dir string) error {
	err := syncFile(filepath.Join(dir, logObject))
	if errors.Is(err, fs.ErrNotExist) {
		err = syncFile(filepath.Join(dir, legacyLogObject))
	}
	return err
}

// spoolDir is what a session's spool directory holds.
type spoolDir struct {
	// upload is what to upload in order: session.json, chunks by number
	// and, when the session is sealed, the signature and the manifest.
	upload []string
	sealed bool
	// all is every name in the directory.
	all []string
}

func readSpool(dir string) (spoolDir, error) {
	var sp spoolDir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return sp, fmt.Errorf("read spool %s: %w", dir, err)
	}
	var chunks []string
	for _, e := range ents {
		name := e.Name()
		sp.all = append(sp.all, name)
		switch {
		case name == manifestObject:
			sp.sealed = true
		default:
			if _, ok := chunkSeq(name); ok {
				chunks = append(chunks, name)
			}
		}
	}
	slices.Sort(chunks) // fixed-width numbers sort in order
	sp.upload = append([]string{sessionObject}, chunks...)
	if sp.sealed {
		sp.upload = append(sp.upload, sigObject, manifestObject)
	}
	return sp, nil
}

// moveSession stores a sealed session by renaming its spool directory into
// the file store, when the store can (fileLinker on the same filesystem),
// nothing of the session is in the store yet, and the directory holds
// exactly the manifest's objects and the chunk log. Otherwise it reports
// false and the objects are uploaded one by one.
func (r *Recorder) moveSession(dir string, meta SessionMeta, key string, sp spoolDir, m Manifest) bool {
	l, ok := r.Store.(fileLinker)
	if !ok || r.metaUploaded(meta.ID, false) || !onlyObjects(sp.all, m) {
		return false // not a file store, or e.g. chunks recovery set aside as torn
	}
	// A session that lived past a flush has a log. It is not an object,
	// and the file store never lists it (see logObject); removed first all
	// the same, so that the store holds it only if a crash undoes this
	// unlink and not the rename. Should the unlink fail, the move still
	// keeps the log out of every listing.
	if slices.Contains(sp.all, logObject) {
		os.Remove(filepath.Join(dir, logObject))
	}
	if err := l.moveDir(key, dir); err != nil {
		return false // another filesystem, or objects already there: one by one
	}
	var n int64
	for _, o := range m.Objects {
		n += o.Size
	}
	r.Metrics.uploaded(n)
	r.stored(meta, key, m)
	return true
}

// onlyObjects reports whether names, a sealed spool directory's listing,
// are exactly the objects m names, its signature and manifest, and
// possibly the chunk log.
func onlyObjects(names []string, m Manifest) bool {
	want := map[string]bool{sigObject: true, manifestObject: true}
	for _, o := range m.Objects {
		want[o.Name] = true
	}
	seen := 0
	for _, name := range names {
		switch {
		case want[name]:
			seen++
		case name != logObject:
			return false
		}
	}
	return seen == len(want)
}

func (r *Recorder) putFile(ctx context.Context, key, path string, synced bool) error {
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
	if l, ok := r.Store.(fileLinker); !ok || l.linkFile(key, path, synced) != nil {
		// Not a file store, or another filesystem: copy.
		if err := r.Store.Put(ctx, key, f, info.Size()); err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
	}
	r.Metrics.uploaded(info.Size())
	return nil
}

// spooledManifest reads a sealed spool's manifest.
func spooledManifest(dir string, meta SessionMeta) (Manifest, error) {
	body, err := os.ReadFile(filepath.Join(dir, manifestObject))
	if err != nil {
		return Manifest{}, fmt.Errorf("read spooled manifest: %w", err)
	}
	m, err := ParseManifest(body)
	if err != nil {
		return Manifest{}, fmt.Errorf("spooled manifest of %s: %w", meta.ID, err)
	}
	return m, nil
}

// retiredPrefix starts the name a spool directory takes once its session
// is in the store, on its way out; no session id starts with it, and the
// next start removes any such directory (recoverSpool).
const retiredPrefix = ".stored-"

// removeSpool deletes an uploaded session's spool directory: first renamed
// out of the spool's set of sessions in one atomic step, so a crash part
// way through the deletion never leaves a session.json without its manifest
// (recovery would seal that as incomplete and overwrite the stored one),
// then its files by the names already listed, without walking it again.
// Nothing here needs to survive a crash: a rename lost to one leaves a
// stored, sealed session in the spool, which is uploaded again (a no-op).
func removeSpool(dir string, names []string) error {
	retired := filepath.Join(filepath.Dir(dir), retiredPrefix+filepath.Base(dir))
	if err := rename(dir, retired); err != nil {
		return err
	}
	for _, name := range names {
		os.Remove(filepath.Join(retired, name)) // uploaded chunks are gone already
	}
	if os.Remove(retired) == nil {
		return nil
	}
	return os.RemoveAll(retired) // something appeared meanwhile
}

// stored forgets an uploaded session and reports its final state.
func (r *Recorder) stored(meta SessionMeta, key string, m Manifest) {
	r.mu.Lock()
	delete(r.metaUp, meta.ID)
	r.mu.Unlock()
	r.report(StateChange{Meta: meta, State: manifestIndexState(m.State), Dir: key, EndedAt: m.EndedAt,
		Bytes: m.Counts.OutputBytes, Events: m.Counts.Events, Reason: m.Reason})
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
