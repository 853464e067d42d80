package main

import (
	"context"
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
	if err := recorder.ValidateLockRetention(lock, r.Retention.D()); err != nil {
		add("%v", err)
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

// retentionIndex is the session index as the retention job sees it.
type retentionIndex struct{ s *sqlstore.Store }

func (x retentionIndex) Expired(ctx context.Context, before time.Time, limit int) ([]recorder.Expiring, error) {
	rs, err := x.s.RetentionDue(ctx, before, limit)
	out := make([]recorder.Expiring, 0, len(rs))
	for _, r := range rs {
		out = append(out, recorder.Expiring{ID: r.ID, StartedAt: r.StartedAt, EndedAt: r.EndedAt})
	}
	return out, err
}

func (x retentionIndex) Held(ctx context.Context, id string) (bool, error) {
	_, held, err := x.s.RecordingHold(ctx, id)
	return held, err
}

func (x retentionIndex) Deleted(ctx context.Context, id string, at time.Time, detail string) error {
	return x.s.MarkRecordingDeleted(ctx, id, at, detail)
}

// newRetention is the retention job over the registry and store.
func newRetention(cfg *Config, store *sqlstore.Store, rec recorder.Store, log *slog.Logger) *recorder.Retention {
	return &recorder.Retention{Store: rec, Index: retentionIndex{store}, Keep: cfg.Recordings.Retention.D(), Logger: log}
}

// retentionComponent runs the daily retention job on the leading replica;
// without recordings.retention it idles.
func (d *serveDeps) retentionComponent() *component {
	r := newRetention(d.ap.cfg, d.ap.store, d.recorder.Store, d.log)
	deleted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sallyport_recordings_deleted_total",
		Help: "Recordings deleted because they were past recordings.retention (counted by the replica that deleted them).",
	})
	d.metrics.registry.MustRegister(deleted)
	r.OnDelete = deleted.Inc
	return &component{name: "retention", run: func(ctx context.Context) error {
		runRetention(ctx, r, d.cluster.leading, d.log)
		return nil
	}}
}

// runRetention sweeps once a day while this replica leads, until ctx ends.
func runRetention(ctx context.Context, r *recorder.Retention, leading func() bool, log *slog.Logger) {
	if r.Keep == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(retentionPoll)
	defer t.Stop()
	var last time.Time
	for {
		if leading() && time.Since(last) >= retentionEvery {
			last = time.Now()
			if n, err := r.Sweep(ctx, last); err != nil && ctx.Err() == nil {
				log.Warn("retention run failed; retrying at the next", "err", err, "deleted", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
