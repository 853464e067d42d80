// Package auditexport sends the audit trail to SIEMs: it maps audit events
// to OCSF (or keeps sallyport's own JSON), delivers them to file, syslog
// and HTTP sinks, and runs the delivery loop that drains the registry's
// outbox at least once, in order, per sink. `sallyport serve` runs it; the
// outbox itself is the registry's (iga/sqlstore, schema step 0010).
package auditexport

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// ErrBusy is what an Outbox returns when another process is exporting to
// the sink now: this one leaves the sink to it.
var ErrBusy = errors.New("sink busy in another process")

// Outbox is the subset of the registry store the exporter uses.
type Outbox interface {
	// RegisterSinks records the sinks the outbox keeps events for.
	RegisterSinks(ctx context.Context, sinks []string) error
	// ExportBatch passes deliver up to limit events with ids above after
	// that sink has not had, oldest first, and marks them delivered when
	// it returns nil. It returns how many it delivered, or ErrBusy.
	ExportBatch(ctx context.Context, sink string, after int64, limit int, deliver func(context.Context, []iga.AuditEvent) error) (int, error)
	// OutboxLag counts the events sink has not had and dates the oldest.
	OutboxLag(ctx context.Context, sink string) (int, time.Time, error)
	// PruneOutbox deletes the events every sink has had.
	PruneOutbox(ctx context.Context) (int64, error)
}

// Delivery pacing. A sink that fails is retried with backoff from
// retryMin, doubling to retryMax, so an hour-long outage costs a try a
// minute, and events flow within retryMax of its return.
const (
	batchSize    = 200              // audit events per delivery
	pollInterval = time.Second      // how soon a new event leaves when the outbox was empty
	busyPoll     = 5 * time.Second  // how often a replica looks whether the sink's exporter went away
	retryMin     = time.Second      // first wait after a failure
	retryMax     = time.Minute      // longest wait between tries
	lagInterval  = 5 * time.Second  // how often the lag gauges are read
	pruneEvery   = time.Minute      // how often delivered events are pruned
	sendTimeout  = 45 * time.Second // one batch, all the sink's own timeouts included
	// rescanEvery is how often a sink's outbox is read from the start
	// rather than after the last event delivered: on PostgreSQL an event
	// can commit after one with a higher id was delivered, and it leaves
	// then. Between rescans the reads skip what the sink already had,
	// which a long outage of another sink leaves in the outbox.
	rescanEvery = 30 * time.Second
)

// Destination is a sink and the format of its records.
type Destination struct {
	Sink    Sink
	Encoder Encoder
}

// Exporter drains the outbox to every destination.
type Exporter struct {
	Outbox       Outbox
	Destinations []Destination
	// Metrics receives lag and failures; nil: none kept.
	Metrics *Metrics
	// Logger reports outages (once when a sink starts failing, once when
	// it recovers); nil: slog.Default().
	Logger *slog.Logger
	// Sleep waits d or until ctx ends; nil: a timer. A seam for tests.
	Sleep func(ctx context.Context, d time.Duration)
	// SendTimeout bounds one batch's delivery. Zero: sendTimeout.
	SendTimeout time.Duration
}

// Run exports until ctx ends, one goroutine per sink, and prunes the
// outbox of delivered events. With no destination it only prunes, so the
// outbox of a registry nobody exports does not grow.
func (x *Exporter) Run(ctx context.Context) error {
	names := make([]string, len(x.Destinations))
	for i, d := range x.Destinations {
		names[i] = d.Sink.Name()
	}
	if err := x.Outbox.RegisterSinks(ctx, names); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, d := range x.Destinations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.runSink(ctx, d)
		}()
	}
	x.prune(ctx, names)
	wg.Wait()
	for _, d := range x.Destinations {
		d.Sink.Close()
	}
	return nil
}

// prune deletes delivered events every pruneEvery, and keeps this
// process's sinks registered (a sink no process names is forgotten).
func (x *Exporter) prune(ctx context.Context, names []string) {
	for ctx.Err() == nil {
		if err := x.Outbox.RegisterSinks(ctx, names); err != nil && ctx.Err() == nil {
			x.logger().Warn("audit export: register sinks", "err", err)
		}
		if _, err := x.Outbox.PruneOutbox(ctx); err != nil && ctx.Err() == nil {
			x.logger().Warn("audit export: prune outbox", "err", err)
		}
		x.sleep(ctx, pruneEvery)
	}
}

// runSink delivers to one sink until ctx ends.
func (x *Exporter) runSink(ctx context.Context, d Destination) {
	name := d.Sink.Name()
	backoff := time.Duration(0)
	var lagRead, rescanned time.Time
	var after int64
	for ctx.Err() == nil {
		if time.Since(lagRead) >= lagInterval {
			x.observeLag(ctx, name)
			lagRead = time.Now()
		}
		if time.Since(rescanned) >= rescanEvery {
			after, rescanned = 0, time.Now()
		}
		n, last, err := x.deliverBatch(ctx, d, after)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrBusy):
			x.sleep(ctx, busyPoll)
		case err != nil:
			backoff = x.failed(name, backoff, err)
			x.sleep(ctx, backoff)
		default:
			backoff = x.recovered(ctx, name, backoff)
			x.Metrics.delivered(name, n)
			if n == 0 {
				x.sleep(ctx, pollInterval)
				continue
			}
			after = max(after, last)
		}
	}
}

// recovered logs a sink's return after failures and returns the reset
// backoff.
func (x *Exporter) recovered(ctx context.Context, name string, backoff time.Duration) time.Duration {
	if backoff > 0 {
		x.logger().Info("audit export: sink is back", "sink", name)
		x.observeLag(ctx, name)
	}
	return 0
}

// deliverBatch sends one batch within the send timeout and returns how
// many audit events it delivered and the id of the last.
func (x *Exporter) deliverBatch(ctx context.Context, d Destination, after int64) (int, int64, error) {
	var last int64
	n, err := x.Outbox.ExportBatch(ctx, d.Sink.Name(), after, batchSize, func(ctx context.Context, evs []iga.AuditEvent) error {
		recs, err := d.Encoder.Encode(evs)
		if err != nil {
			return err
		}
		timeout := x.SendTimeout
		if timeout == 0 {
			timeout = sendTimeout
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := d.Sink.Send(sctx, recs); err != nil {
			return err
		}
		last = evs[len(evs)-1].ID
		return nil
	})
	return n, last, err
}

// failed counts a failure, logs the first of an outage and returns the
// next wait.
func (x *Exporter) failed(name string, backoff time.Duration, err error) time.Duration {
	x.Metrics.failed(name)
	if backoff == 0 {
		x.logger().Warn("audit export: sink failed; events wait in the outbox and are retried", "sink", name, "err", err)
		return retryMin
	}
	return min(2*backoff, retryMax)
}

func (x *Exporter) observeLag(ctx context.Context, name string) {
	if x.Metrics == nil {
		return
	}
	n, oldest, err := x.Outbox.OutboxLag(ctx, name)
	if err != nil {
		return // the next read sets it; an error here is the database's, logged by whoever else reads it
	}
	x.Metrics.lag(name, n, oldest)
}

func (x *Exporter) sleep(ctx context.Context, d time.Duration) {
	if x.Sleep != nil {
		x.Sleep(ctx, d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (x *Exporter) logger() *slog.Logger {
	if x.Logger != nil {
		return x.Logger
	}
	return slog.Default()
}
