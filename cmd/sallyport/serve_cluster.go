package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

const (
	// defaultLease is cluster.lease's default: a replica that has not
	// renewed its lease for this long is taken as gone, and the leader's
	// janitors drop the database credentials of its sessions. Long enough
	// to ride out a registry failover, short enough that a dead replica's
	// credentials do not linger.
	defaultLease = 15 * time.Second
	// minLease keeps renewals (a third of the lease) from hammering the
	// registry.
	minLease = time.Second
	// defaultJanitorInterval is cluster.janitor_interval's default.
	defaultJanitorInterval = time.Minute
	// leaseTimeout bounds one lease renewal.
	leaseTimeout = 5 * time.Second
)

// cluster is this replica's place among the serve processes sharing the
// registry: its lease, renewed while it runs, and whether it leads (runs
// the janitors and deadline sweeps). On SQLite it is the only replica and
// always leads.
type cluster struct {
	store           *sqlstore.Store
	log             *slog.Logger
	lease           time.Duration
	janitorInterval time.Duration
	leader          *sqlstore.Leader
	id              string // this replica's, fixed at start
	// sealer seals lost replicas' recordings (serve_seal.go), with the
	// recorder's store and key once newServeDeps has opened it.
	sealer *lostSealer

	mu   sync.Mutex // serialises renewals
	self sqlstore.Replica
}

// newCluster registers this replica with a fresh lease, so its sessions
// are attributed to a live replica from the first.
func newCluster(ctx context.Context, cfg *Config, store *sqlstore.Store, log *slog.Logger) (*cluster, error) {
	c := &cluster{store: store, log: log, lease: cfg.Cluster.Lease.D(), janitorInterval: cfg.Cluster.JanitorInterval.D()}
	if c.lease == 0 {
		c.lease = defaultLease
	}
	if c.janitorInterval == 0 {
		c.janitorInterval = defaultJanitorInterval
	}
	if c.lease < minLease || c.janitorInterval < 0 {
		return nil, configErrorf("cluster: lease must be at least %s and janitor_interval positive", minLease)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	c.id = replicaID(host)
	c.self = sqlstore.Replica{ID: c.id, Host: host, Started: time.Now().UTC()}
	c.leader = &sqlstore.Leader{Store: store, Every: c.renewEvery(), Logger: log}
	if err := c.renew(ctx, time.Now().Add(c.lease), true); err != nil {
		return nil, err
	}
	log.Info("replica registered", "replica", c.id, "lease", c.lease)
	return c, nil
}

// replicaID names this process: the host and some randomness, so that a
// restarted replica is a new one and the sessions of its last run count
// as gone.
func replicaID(host string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return host + "-" + hex.EncodeToString(b[:])
}

// leaderGauge is sallyport_replica_leader, so operators see which
// replica runs the janitors and sweeps.
func (c *cluster) leaderGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sallyport_replica_leader",
		Help: "1 on the replica that runs the credential janitors and deadline sweeps, 0 on the others.",
	}, func() float64 {
		if c.leading() {
			return 1
		}
		return 0
	})
}

// renewEvery is how often the lease is renewed and the leadership tried:
// three renewals per lease, so one lost write does not lapse it.
func (c *cluster) renewEvery() time.Duration { return c.lease / 3 }

// leading reports whether this replica runs the janitors and sweeps now.
func (c *cluster) leading() bool { return c.leader.Leading() }

func (c *cluster) renew(ctx context.Context, until time.Time, prune bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, leaseTimeout)
	defer cancel()
	r := c.self
	r.LeaseUntil = until.UTC()
	if err := c.store.RegisterReplica(ctx, r, prune); err != nil {
		return err
	}
	c.self = r
	return nil
}

// component renews the lease and tries for the leadership until serve
// stops; then the lease ends at once, so the next leader need not wait
// for it to lapse to clean up what this replica left.
func (c *cluster) component() *component {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	return &component{
		name: "cluster",
		run: func(rctx context.Context) error {
			stop := context.AfterFunc(rctx, cancel)
			defer stop()
			wg.Go(func() { _ = c.leader.Run(ctx) })
			wg.Go(func() { c.renewLoop(ctx) })
			wg.Go(func() { c.sealer.run(ctx) })
			wg.Wait()
			return nil
		},
		shutdown: func(sctx context.Context) error {
			cancel()
			wg.Wait()
			if err := c.renew(sctx, time.Now(), false); err != nil {
				return fmt.Errorf("end lease: %w", err)
			}
			return nil
		},
	}
}

func (c *cluster) renewLoop(ctx context.Context) {
	t := time.NewTicker(c.renewEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.renew(ctx, time.Now().Add(c.lease), false); err != nil && ctx.Err() == nil {
			c.log.Warn("replica lease not renewed; once it lapses the leader drops this replica's database credentials",
				"replica", c.id, "err", err)
		}
	}
}

// indexSessions keeps the session index from the recorder's state
// changes, naming this replica as the one that runs each session.
func (c *cluster) indexSessions(log *slog.Logger) func(recorder.StateChange) {
	return func(sc recorder.StateChange) {
		c.noteRecovered(sc)
		ctx, cancel := context.WithTimeout(context.Background(), indexTimeout)
		defer cancel()
		r := sessionRecord(sc)
		r.Replica = c.id
		if err := c.store.PutSession(ctx, r); err != nil {
			log.Warn("session index not updated; the recording itself is safe", "session", sc.Meta.ID, "err", err)
		}
	}
}

// holders maps the session ids the index holds as live to whether a live
// replica runs them.
type holders map[string]bool

// of is what the janitors may know of session id: live here or on a
// replica whose lease is current, live in the index but its replica's lease
// lapsed (gone), or not live in the index (ended, or not indexed yet).
func (h holders) of(id string) ca.Verdict {
	live, ok := h[id]
	switch {
	case !ok:
		return ca.Unknown
	case live:
		return ca.Live
	}
	return ca.Gone
}

// sessionHolders reads, for one janitor sweep, which sessions run on a
// live replica: this process's live sessions, and those of replicas whose
// lease is current.
func (c *cluster) sessionHolders(ctx context.Context, live *proxy.Live) (holders, error) {
	held, err := c.store.SessionHolders(ctx, time.Now())
	if err != nil {
		return nil, fmt.Errorf("read which sessions are live: %w", err)
	}
	for _, s := range live.Snapshot() {
		held[s.ID] = true
	}
	return held, nil
}

// janitorRounds calls sweep at start and every janitor interval until ctx
// ends, each time this replica leads.
func (c *cluster) janitorRounds(ctx context.Context, sweep func()) {
	t := time.NewTicker(c.janitorInterval)
	defer t.Stop()
	for {
		if c.leading() {
			sweep()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchChanges wakes the session watcher whenever the registry announces
// a change that may end a session (PostgreSQL); on SQLite it returns at
// once and the watcher polls.
func (c *cluster) watchChanges(ctx context.Context, live *proxy.Live) {
	c.store.ListenChanges(ctx, c.log, live.Wake)
}
