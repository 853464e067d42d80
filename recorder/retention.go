package recorder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// retainSuffix names the file store's retention marker of a recording:
// "YYYY/MM/DD/<id>.retain-until", beside the session directory (not in
// it, so it is no object of the recording), holding the RFC 3339 time
// before which the recording must not be deleted.
const retainSuffix = ".retain-until"

// RetainedError is the refusal to delete a recording still under
// retention: Until says when it may be deleted.
type RetainedError struct {
	Dir   string
	Until time.Time
}

func (e *RetainedError) Error() string {
	return fmt.Sprintf("recording %s is under retention until %s: it cannot be deleted before then",
		strings.TrimSuffix(e.Dir, "/"), e.Until.UTC().Format(time.RFC3339))
}

// retainer is what a store needs to delete recordings under retention.
type retainer interface {
	// retainedUntil is the latest time before which some object of the
	// recording in dir must be kept; zero when none must.
	retainedUntil(ctx context.Context, dir string) (time.Time, error)
	// deleteRecording deletes every object of the recording in dir.
	deleteRecording(ctx context.Context, dir string) (int, error)
}

// DeleteRecording deletes every object of the recording in dir (a
// SessionDir) and returns how many it deleted. While the store keeps the
// recording under retention at now it deletes nothing and returns a
// *RetainedError that says until when.
func DeleteRecording(ctx context.Context, store Store, dir string, now time.Time) (int, error) {
	r, ok := store.(retainer)
	if !ok {
		return 0, fmt.Errorf("delete recording %s: the store cannot delete", dir)
	}
	until, err := r.retainedUntil(ctx, dir)
	if err != nil {
		return 0, fmt.Errorf("delete recording %s: %w", dir, err)
	}
	if now.Before(until) {
		return 0, &RetainedError{Dir: dir, Until: until}
	}
	n, err := r.deleteRecording(ctx, dir)
	if err != nil {
		return n, fmt.Errorf("delete recording %s: %w", dir, err)
	}
	return n, nil
}

// sessionDirOf is the session directory holding the object at path p, or
// "" for a key that is no object of a session ("YYYY/MM/DD/<id>/<name>").
func (s *FileStore) sessionDirOf(p string) string {
	rel, err := filepath.Rel(s.root, p)
	if err != nil || strings.Count(filepath.ToSlash(rel), "/") != 4 {
		return ""
	}
	return filepath.Dir(p)
}

// markRetention writes the retention marker of the session directory dir
// (an absolute path) unless it has one: a recording is kept Retention
// from when its first object was stored, and a later, shorter retention
// setting does not shorten it. The last directory marked is remembered,
// as the next object usually goes there too.
func (s *FileStore) markRetention(dir string) error {
	if s.Retention <= 0 || dir == "" {
		return nil
	}
	if last := s.marked.Load(); last != nil && *last == dir {
		return nil
	}
	marker := dir + retainSuffix
	if _, err := os.Stat(marker); err == nil {
		s.marked.Store(&dir)
		return nil
	}
	until := time.Now().UTC().Add(s.Retention).Format(time.RFC3339)
	if err := writeFileSync(marker+".tmp", strings.NewReader(until), int64(len(until))); err != nil {
		return fmt.Errorf("write retention marker %s: %w", marker, err)
	}
	if err := rename(marker+".tmp", marker); err != nil {
		return fmt.Errorf("write retention marker %s: %w", marker, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	s.marked.Store(&dir)
	return nil
}

// retainedUntil reads the recording's retention marker; zero when it has
// none (stored without a retention).
func (s *FileStore) retainedUntil(ctx context.Context, dir string) (time.Time, error) {
	p, err := s.path(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return time.Time{}, err
	}
	b, err := os.ReadFile(p + retainSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read retention marker: %w", err)
	}
	until, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	if err != nil {
		// A marker that does not parse keeps the recording: deleting on a
		// damaged marker is the one mistake that cannot be undone.
		return time.Time{}, fmt.Errorf("retention marker %s%s: %q is not an RFC 3339 time", p, retainSuffix, b)
	}
	return until, nil
}

// deleteRecording removes the session directory, then its marker, and
// makes both removals durable.
func (s *FileStore) deleteRecording(ctx context.Context, dir string) (int, error) {
	p, err := s.path(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return 0, err
	}
	keys, err := s.List(ctx, dir)
	if err != nil {
		return 0, err
	}
	if err := os.RemoveAll(p); err != nil {
		return 0, err
	}
	if err := os.Remove(p + retainSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return len(keys), err
	}
	s.marked.Store(nil)
	return len(keys), syncDir(filepath.Dir(p))
}

// retainedUntil is the latest Object Lock retain-until date of the
// recording's objects; zero without Object Lock configured.
func (s *S3Store) retainedUntil(ctx context.Context, dir string) (time.Time, error) {
	if !s.lock.Enabled() {
		return time.Time{}, nil
	}
	keys, err := s.List(ctx, dir)
	if err != nil {
		return time.Time{}, err
	}
	var latest time.Time
	for _, k := range keys {
		_, until, err := s.client.GetObjectRetention(ctx, s.bucket, s.prefix+k, "")
		if err != nil && minio.ToErrorResponse(err).Code != "NoSuchObjectLockConfiguration" {
			return time.Time{}, fmt.Errorf("read retention of s3://%s/%s%s: %w", s.bucket, s.prefix, k, err)
		}
		if until != nil && until.After(latest) {
			latest = until.UTC()
		}
	}
	return latest, nil
}

// deleteRecording deletes every version of every object below dir: a
// bucket with Object Lock is versioned, and deleting by key alone would
// only hide the locked versions behind delete markers.
func (s *S3Store) deleteRecording(ctx context.Context, dir string) (int, error) {
	opts := minio.ListObjectsOptions{Prefix: s.prefix + dir, Recursive: true, WithVersions: s.lock.Enabled()}
	n := 0
	for info := range s.client.ListObjects(ctx, s.bucket, opts) {
		if info.Err != nil {
			return n, fmt.Errorf("list s3://%s/%s: %w", s.bucket, opts.Prefix, info.Err)
		}
		ro := minio.RemoveObjectOptions{VersionID: info.VersionID}
		if err := s.client.RemoveObject(ctx, s.bucket, info.Key, ro); err != nil {
			return n, fmt.Errorf("delete s3://%s/%s: %w", s.bucket, info.Key, err)
		}
		n++
	}
	return n, nil
}

// Expiring is a stored recording past retention, as the session index
// knows it.
type Expiring struct {
	ID        string
	StartedAt time.Time
	EndedAt   time.Time
}

// RetentionIndex is what the retention job needs of the session index
// (cmd adapts iga/sqlstore to it).
type RetentionIndex interface {
	// Expired returns up to limit stored recordings whose session ended
	// before endedBefore and that are not on legal hold, oldest first.
	Expired(ctx context.Context, endedBefore time.Time, limit int) ([]Expiring, error)
	// Held reports whether the recording of session id is on legal hold.
	Held(ctx context.Context, id string) (bool, error)
	// Deleted records (and audits) that the recording of session id was
	// deleted at at; detail says what went.
	Deleted(ctx context.Context, id string, at time.Time, detail string) error
}

// ValidateLockRetention checks recordings.s3.object_lock against
// recordings.retention (keep; zero: kept for ever): an object locked for
// longer than the recording is kept could not be deleted when retention
// ends, so the job would fail on it every day.
func ValidateLockRetention(lock ObjectLock, keep time.Duration) error {
	lockFor := time.Duration(lock.Days) * 24 * time.Hour
	if lock.Enabled() && keep != 0 && lockFor > keep {
		return fmt.Errorf("recordings.s3.object_lock.days (%d) is longer than recordings.retention (%s): the objects could not be deleted when retention ends",
			lock.Days, days(keep))
	}
	return nil
}

// retentionBatch bounds the recordings one sweep reads at a time.
const retentionBatch = 200

// Retention deletes the recordings past their retention.
type Retention struct {
	Store Store
	Index RetentionIndex
	// Keep is how long after its session ended a recording is kept.
	// Required (positive).
	Keep time.Duration
	// Logger receives what is kept and deleted; nil: slog.Default().
	Logger *slog.Logger
	// OnDelete is told of each deletion (metrics); nil: nothing.
	OnDelete func()
}

// Sweep deletes every recording whose session ended more than Keep before
// now and is not on legal hold, and returns how many it deleted. One the
// store still keeps under retention (a marker or Object Lock written under
// a longer setting) is kept and logged; the first other failure ends the
// sweep.
func (r *Retention) Sweep(ctx context.Context, now time.Time) (int, error) {
	deleted := 0
	kept := map[string]bool{}
	for {
		due, err := r.Index.Expired(ctx, now.Add(-r.Keep), retentionBatch+len(kept))
		if err != nil {
			return deleted, err
		}
		progress := false
		for _, e := range due {
			if kept[e.ID] {
				continue
			}
			progress = true
			ok, err := r.deleteOne(ctx, e, now)
			if err != nil {
				return deleted, err
			}
			if ok {
				deleted++
			} else {
				kept[e.ID] = true
			}
		}
		if !progress {
			return deleted, nil
		}
	}
}

// deleteOne deletes one recording and has the index mark it so; false
// when it is kept (held since it was read, or under the store's retention).
func (r *Retention) deleteOne(ctx context.Context, e Expiring, now time.Time) (bool, error) {
	if held, err := r.Index.Held(ctx, e.ID); err != nil || held {
		return false, err
	}
	n, err := DeleteRecording(ctx, r.Store, SessionDir(e.ID, e.StartedAt), now)
	var retained *RetainedError
	if errors.As(err, &retained) {
		r.logger().Info("recording past retention kept: its store keeps it longer", "session", e.ID, "until", retained.Until)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	detail := fmt.Sprintf("%d objects, ended %s, past recordings.retention %s", n,
		e.EndedAt.UTC().Format(time.RFC3339), days(r.Keep))
	if err := r.Index.Deleted(ctx, e.ID, now, detail); err != nil {
		return false, err
	}
	if r.OnDelete != nil {
		r.OnDelete()
	}
	r.logger().Info("recording deleted by retention", "session", e.ID, "objects", n)
	return true, nil
}

func (r *Retention) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// days writes a duration of whole days as the config does ("400d").
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
