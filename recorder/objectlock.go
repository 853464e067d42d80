package recorder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Object Lock retention modes accepted in ObjectLock.Mode (S3's names).
const (
	// LockGovernance: nobody deletes or overwrites a locked object version
	// before its retain-until date, except a user granted
	// s3:BypassGovernanceRetention who asks to bypass it.
	LockGovernance = "GOVERNANCE"
	// LockCompliance: nobody deletes or overwrites a locked object version
	// before its retain-until date, not even the account's root user, and
	// the date cannot be shortened.
	LockCompliance = "COMPLIANCE"
)

// maxLockDays bounds recordings.s3.object_lock.days (S3 allows 100 years).
const maxLockDays = 36500

// ObjectLock is recordings.s3.object_lock: the S3 Object Lock retention
// every uploaded object carries. The bucket must have Object Lock enabled
// (CheckObjectLock).
type ObjectLock struct {
	// Mode is GOVERNANCE or COMPLIANCE. Zero means no Object Lock.
	Mode string `yaml:"mode"`
	// Days is how long after its upload each object is locked. Required
	// with Mode.
	Days int `yaml:"days"`
}

// Enabled reports whether uploads carry a retention.
func (l ObjectLock) Enabled() bool { return l.Mode != "" }

// Validate reports what is wrong with the settings, naming the YAML key.
func (l ObjectLock) Validate() error {
	switch l.Mode {
	case "":
		if l.Days != 0 {
			return errors.New("recordings.s3.object_lock.mode: missing (want GOVERNANCE or COMPLIANCE)")
		}
		return nil
	case LockGovernance, LockCompliance:
	default:
		return fmt.Errorf("recordings.s3.object_lock.mode: %q is not GOVERNANCE or COMPLIANCE", l.Mode)
	}
	if l.Days < 1 || l.Days > maxLockDays {
		return fmt.Errorf("recordings.s3.object_lock.days: %d is not between 1 and %d", l.Days, maxLockDays)
	}
	return nil
}

// until is the retain-until date of an object uploaded at now.
func (l ObjectLock) until(now time.Time) time.Time {
	return now.UTC().AddDate(0, 0, l.Days).Truncate(time.Second)
}

// apply puts the lock into the options of an upload made at now.
func (l ObjectLock) apply(opts *minio.PutObjectOptions, now time.Time) {
	if !l.Enabled() {
		return
	}
	opts.Mode = minio.RetentionMode(l.Mode)
	opts.RetainUntilDate = l.until(now)
}

// CheckObjectLock fails when the config asks for Object Lock and the
// bucket does not have it enabled: uploads would then either fail or be
// stored unlocked. It asks the bucket (GetObjectLockConfiguration); other
// stores pass.
func CheckObjectLock(ctx context.Context, store Store) error {
	s, ok := store.(*S3Store)
	if !ok || !s.lock.Enabled() {
		return nil
	}
	status, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.bucket)
	if err != nil && minio.ToErrorResponse(err).Code != "ObjectLockConfigurationNotFoundError" {
		return fmt.Errorf("recordings.s3.object_lock: read the Object Lock configuration of bucket %s: %w", s.bucket, err)
	}
	if status != "Enabled" {
		return fmt.Errorf("recordings.s3.object_lock asks for %s retention, but bucket %s does not have Object Lock enabled: "+
			"enable it on the bucket (it needs versioning) or remove recordings.s3.object_lock", s.lock.Mode, s.bucket)
	}
	return nil
}

// LegalHolds is what the S3 store asks of the registry while it uploads
// (cmd adapts iga/sqlstore's holds): whether a session's recording is on
// legal hold, so that the objects of a live session put on hold carry the
// S3 legal hold too.
type LegalHolds interface {
	// Held reports whether the recording of session id is on legal hold.
	Held(ctx context.Context, id string) (bool, error)
}

// UseLegalHolds has store ask holds, on every upload, whether the
// session is on legal hold, and set the object's S3 legal hold if so. It
// applies to S3 stores with Object Lock configured, and does nothing for
// others: the file store has no object legal hold (the registry's hold
// keeps the recording whole).
func UseLegalHolds(store Store, holds LegalHolds) {
	if s, ok := store.(*S3Store); ok && s.lock.Enabled() {
		s.holds = holds
	}
}

// heldAt reports whether the object at key belongs to a recording on
// legal hold. A registry that cannot say fails the upload, which the
// uploader retries: an object of a held recording must not go unheld.
func (s *S3Store) heldAt(ctx context.Context, key string) (bool, error) {
	id := sessionOfKey(key)
	if s.holds == nil || id == "" {
		return false, nil
	}
	held, err := s.holds.Held(ctx, id)
	if err != nil {
		return false, fmt.Errorf("upload %s: ask whether session %s is on legal hold: %w", key, id, err)
	}
	return held, nil
}

// sessionOfKey is the session id of an object key of a recording,
// "YYYY/MM/DD/<id>/<name>" or ".../<id>/continuation/<name>"; "" for any
// other key.
func sessionOfKey(key string) string {
	parts := strings.Split(key, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// holdLate closes the race with sallyport recording hold: an upload that
// asked before the hold was written, and so carries none, asks again once
// the object is stored, and sets its legal hold if the answer changed.
// Either the hold command lists the object (it was stored before the
// hold), or this second look sees the hold.
func (s *S3Store) holdLate(ctx context.Context, key string, opts minio.PutObjectOptions) error {
	if s.holds == nil || opts.LegalHold == minio.LegalHoldEnabled {
		return nil
	}
	held, err := s.heldAt(ctx, key)
	if err != nil || !held {
		return err
	}
	status := minio.LegalHoldEnabled
	if err := s.client.PutObjectLegalHold(ctx, s.bucket, s.prefix+key, minio.PutObjectLegalHoldOptions{Status: &status}); err != nil {
		return fmt.Errorf("set legal hold ON on s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	return nil
}

// SetLegalHold turns the S3 legal hold of every object of the recording
// in dir on or off, and returns how many objects it set. Stores without
// Object Lock configured have no object legal hold: there the registry's
// hold alone keeps the recording (0 objects, no error).
func SetLegalHold(ctx context.Context, store Store, dir string, on bool) (int, error) {
	s, ok := store.(*S3Store)
	if !ok || !s.lock.Enabled() {
		return 0, nil
	}
	keys, err := store.List(ctx, dir)
	if err != nil {
		return 0, err
	}
	status := minio.LegalHoldDisabled
	if on {
		status = minio.LegalHoldEnabled
	}
	for i, k := range keys {
		opts := minio.PutObjectLegalHoldOptions{Status: &status}
		if err := s.client.PutObjectLegalHold(ctx, s.bucket, s.prefix+k, opts); err != nil {
			return i, fmt.Errorf("set legal hold %s on s3://%s/%s%s: %w", status, s.bucket, s.prefix, k, err)
		}
	}
	return len(keys), nil
}

// LockReport is what Verify sees of a recording's protection in the
// store: the S3 Object Lock retention and legal hold of its objects, or
// the file store's retention marker.
type LockReport struct {
	// Mode is the objects' Object Lock mode; empty for the file store.
	Mode string `json:"mode,omitempty"`
	// RetainUntil is the earliest retain-until date of the objects (the
	// file store's marker): none of them can be deleted before it.
	RetainUntil time.Time `json:"retain_until,omitzero"`
	// Objects is how many objects were looked at; Unlocked how many of
	// them carry no retention; LegalHold how many are under legal hold.
	Objects   int `json:"objects"`
	Unlocked  int `json:"unlocked,omitempty"`
	LegalHold int `json:"legal_hold,omitempty"`
	// Problem says why the lock could not be read; empty when it was.
	Problem string `json:"problem,omitempty"`
}

// String renders the lock for the verify report.
func (l LockReport) String() string {
	if l.Problem != "" {
		return "lock not read: " + l.Problem
	}
	var parts []string
	switch {
	case l.Mode != "":
		parts = append(parts, fmt.Sprintf("object lock %s until %s", l.Mode, l.RetainUntil.Format(time.RFC3339)))
	case !l.RetainUntil.IsZero():
		parts = append(parts, "retention marker: kept until "+l.RetainUntil.Format(time.RFC3339))
	}
	if l.Unlocked > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d objects carry no retention", l.Unlocked, l.Objects))
	}
	if l.LegalHold > 0 {
		parts = append(parts, fmt.Sprintf("legal hold on %d of %d objects", l.LegalHold, l.Objects))
	}
	if len(parts) == 0 {
		return "no retention lock"
	}
	return strings.Join(parts, "; ")
}

// readLock reports the lock of the recording in src; nil when its store
// keeps none (a file store without retention, S3 without Object Lock).
func readLock(ctx context.Context, src Source) *LockReport {
	if src.dir == "" { // a copied directory: out of the store
		return nil
	}
	switch s := src.store.(type) {
	case *S3Store:
		if s.lock.Enabled() {
			return s.lockReport(ctx, src.dir)
		}
	case *FileStore:
		until, err := s.retainedUntil(ctx, src.dir)
		if err != nil {
			return &LockReport{Problem: err.Error()}
		}
		if !until.IsZero() {
			return &LockReport{RetainUntil: until}
		}
	}
	return nil
}

// lockReport reads every object's retention and legal hold.
func (s *S3Store) lockReport(ctx context.Context, dir string) *LockReport {
	keys, err := s.List(ctx, dir)
	if err != nil {
		return &LockReport{Problem: err.Error()}
	}
	l := &LockReport{Objects: len(keys)}
	for _, k := range keys {
		if err := s.addLock(ctx, k, l); err != nil {
			return &LockReport{Problem: err.Error()}
		}
	}
	return l
}

func (s *S3Store) addLock(ctx context.Context, key string, l *LockReport) error {
	mode, until, err := s.client.GetObjectRetention(ctx, s.bucket, s.prefix+key, "")
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchObjectLockConfiguration" {
		return fmt.Errorf("read retention of s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	if mode == nil || until == nil {
		l.Unlocked++
	} else {
		l.Mode = string(*mode)
		if l.RetainUntil.IsZero() || until.Before(l.RetainUntil) {
			l.RetainUntil = until.UTC()
		}
	}
	hold, err := s.client.GetObjectLegalHold(ctx, s.bucket, s.prefix+key, minio.GetObjectLegalHoldOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchObjectLockConfiguration" {
		return fmt.Errorf("read legal hold of s3://%s/%s%s: %w", s.bucket, s.prefix, key, err)
	}
	if hold != nil && *hold == minio.LegalHoldEnabled {
		l.LegalHold++
	}
	return nil
}
