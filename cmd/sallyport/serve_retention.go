package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// retentionEvery is how often the leading replica deletes the
	// recordings past recordings.retention: daily, as retention is counted
	// in days.
	retentionEvery = 24 * time.Hour
	// retentionPoll is how often a replica looks whether it leads and a
	// run is due, so a new leader takes the job over within it.
	retentionPoll = time.Minute
	// retentionBatch bounds the sessions one run reads at a time.
	retentionBatch = 200
	// objectLockCheckTimeout bounds the bucket's Object Lock check at start.
	objectLockCheckTimeout = 30 * time.Second
)

// validateRetention checks recordings.retention and
// recordings.s3.object_lock against each other.
func (c *Config) validateRetention(add func(string, ...any)) {
	r := c.Recordings
	if err := r.S3.ObjectLock.Validate(); err != nil {
		add("%v", err)
		return
	}
	lock := r.S3.ObjectLock
	if lock.Enabled() && r.Store != "s3" {
		add("recordings.s3.object_lock: needs store s3 (the file store keeps a retention marker instead)")
	}
	lockFor := time.Duration(lock.Days) * 24 * time.Hour
	if lock.Enabled() && r.Retention != 0 && lockFor > r.Retention.D() {
		add("recordings.s3.object_lock.days (%d) is longer than recordings.retention (%s): the objects could not be deleted when retention ends",
			lock.Days, days(r.Retention.D()))
	}
}

// checkObjectLock makes serve refuse to start when the config asks for
// Object Lock and the bucket does not have it.
func checkObjectLock(ctx context.Context, store recorder.Store) error {
	ctx, cancel := context.WithTimeout(ctx, objectLockCheckTimeout)
	defer cancel()
	if err := recorder.CheckObjectLock(ctx, store); err != nil {
		return configErrorf("%v", err)
	}
	return nil
}

// retention deletes the recordings past recordings.retention.
type retention struct {
	store   *sqlstore.Store
	rec     recorder.Store
	keep    time.Duration
	deleted prometheus.Counter
	log     *slog.Logger
	leading func() bool // whether this replica runs the job now
}

// retentionComponent runs the daily retention job on the leading replica;
// without recordings.retention it idles.
func (d *serveDeps) retentionComponent() *component {
	r := &retention{store: d.ap.store, rec: d.recorder.Store, keep: d.ap.cfg.Recordings.Retention.D(),
		log: d.log, leading: d.cluster.leading,
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recordings_deleted_total",
			Help: "Recordings deleted because they were past recordings.retention (counted by the replica that deleted them).",
		})}
	d.metrics.registry.MustRegister(r.deleted)
	return &component{name: "retention", run: r.run}
}

func (r *retention) run(ctx context.Context) error {
	if r.keep == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(retentionPoll)
	defer t.Stop()
	var last time.Time
	for {
		if r.leading() && time.Since(last) >= retentionEvery {
			last = time.Now()
			n, err := r.sweep(ctx, last)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("retention run failed; retrying at the next", "err", err, "deleted", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sweep deletes every recording that ended more than the retention before
// now and is not on legal hold, and returns how many it deleted. One still
// under its store's retention (a marker or Object Lock written under a
// longer setting) is kept and logged.
func (r *retention) sweep(ctx context.Context, now time.Time) (int, error) {
	deleted := 0
	skip := map[string]bool{}
	for {
		due, err := r.store.RetentionDue(ctx, now.Add(-r.keep), retentionBatch+len(skip))
		if err != nil {
			return deleted, err
		}
		progress := false
		for _, s := range due {
			if skip[s.ID] {
				continue
			}
			progress = true
			ok, err := r.deleteOne(ctx, s, now)
			if err != nil {
				return deleted, err
			}
			if ok {
				deleted++
			} else {
				skip[s.ID] = true
			}
		}
		if !progress {
			return deleted, nil
		}
	}
}

// deleteOne deletes one session's recording and marks it so in the
// index; false when it is kept (on hold since it was read, or still under
// the store's retention).
func (r *retention) deleteOne(ctx context.Context, s sqlstore.SessionRecord, now time.Time) (bool, error) {
	if _, held, err := r.store.RecordingHold(ctx, s.ID); err != nil || held {
		return false, err
	}
	n, err := recorder.DeleteRecording(ctx, r.rec, recorder.SessionDir(s.ID, s.StartedAt), now)
	var retained *recorder.RetainedError
	if errors.As(err, &retained) {
		r.log.Info("recording past retention kept: its store keeps it longer", "session", s.ID, "until", retained.Until)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	detail := fmt.Sprintf("%d objects, ended %s, past recordings.retention %s", n,
		s.EndedAt.UTC().Format(time.RFC3339), days(r.keep))
	if err := r.store.MarkRecordingDeleted(ctx, s, now, detail); err != nil {
		return false, err
	}
	r.deleted.Inc()
	r.log.Info("recording deleted by retention", "session", s.ID, "objects", n)
	return true, nil
}

// days writes a duration of whole days as the config does ("400d").
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
