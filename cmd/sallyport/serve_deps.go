package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/web"
)

// serveDeps is everything serve's components share, built once.
type serveDeps struct {
	ap       *app
	log      *slog.Logger
	metrics  *metrics
	recorder *recorder.Recorder
	live     *proxy.Live
	cluster  *cluster
	webLn    net.Listener
	webAddr  string
	scim     http.Handler // nil: SCIM off
}

func newServeDeps(ctx context.Context, ap *app, log *slog.Logger) (*serveDeps, error) {
	if err := checkSharedKeys(ctx, ap.cfg, ap.store); err != nil {
		return nil, err
	}
	d := &serveDeps{ap: ap, log: log, metrics: newMetrics()}
	var err error
	if d.cluster, err = newCluster(ctx, ap.cfg, ap.store, log); err != nil {
		return nil, err
	}
	d.metrics.registry.MustRegister(d.cluster.leaderGauge())
	ap.reg.OnDecision = d.metrics.observeDecision
	ap.reg.OnRefusal = d.metrics.observeRefusal
	rec, err := newRecorder(ap.cfg, log, d.metrics)
	if err != nil {
		return nil, err
	}
	if err := checkObjectLock(ctx, rec.Store); err != nil {
		return nil, err
	}
	d.cluster.sealer = newLostSealer(d.cluster, rec) // before OnState, which tells it of recovered sessions
	rec.OnState = d.cluster.indexSessions(log)
	useLegalHolds(rec, ap.store)
	d.recorder = rec
	d.live = &proxy.Live{Gate: ap.reg, Index: ap.store, Recordings: rec, Logger: log}
	d.metrics.registry.MustRegister(liveSessions{live: d.live, protocols: servedProtocols(ap.cfg)})
	if d.scim, err = newSCIM(ctx, d); err != nil {
		return nil, err
	}
	d.webLn, err = net.Listen("tcp", ap.cfg.Web.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on web.listen %s: %w", ap.cfg.Web.Listen, err)
	}
	d.webAddr = d.webLn.Addr().String()
	return d, nil
}

// components lists what serve runs: the recorder, the session watcher, a
// protocol listener for each kind of target the config has, and the web
// listener last, so /healthz answers only once the proxies are up.
func (d *serveDeps) components() ([]*component, error) {
	comps := []*component{d.recorderComponent(), d.cluster.component(), d.watcherComponent(), d.governanceComponent(), d.retentionComponent()}
	comps = append(comps, d.auditComponent())
	comps = append(comps, d.searchComponent())
	for _, p := range []struct {
		kind string
		make func() (*component, error)
	}{{"ssh", d.sshComponent}, {"postgres", d.postgresComponent}, {"mysql", d.mysqlComponent}} {
		if !d.ap.cfg.hasTargetKind(p.kind) {
			continue
		}
		c, err := p.make()
		if err != nil {
			return nil, err
		}
		comps = append(comps, c)
	}
	return append(comps, d.webComponent()), nil
}

func (d *serveDeps) webComponent() *component {
	cfg := d.ap.cfg.Web
	// draining turns /healthz to 503 from the moment shutdown begins, so a
	// load balancer stops sending new connections while sessions drain.
	var draining atomic.Bool
	ws := &web.Server{
		Metrics: promhttp.HandlerFor(d.metrics.registry, promhttp.HandlerOpts{}),
		SCIM:    d.scim,
		Health: func(ctx context.Context) error {
			if draining.Load() {
				return web.ErrDraining
			}
			_, err := d.ap.store.People(ctx)
			return err
		},
		Logger:      d.log,
		BearerToken: d.ap.reg.AuthenticatePerson,
		OIDC:        web.OIDCConfig{Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID},
		TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile,
		Directory: d.ap.store, Sessions: d.ap.store, Workflows: d.ap.reg, Suggestions: webSuggestions{ap: d.ap},
		Recordings: web.StoreRecordings{Store: d.recorder.Store, Key: d.recorder.Key.Public().(ed25519.PublicKey)},
		Hygiene: func(ctx context.Context) ([]iga.Finding, error) {
			return d.ap.reg.Hygiene(ctx, d.ap.store, iga.HygieneOptions{})
		},
	}
	d.withLiveView(ws)
	d.withSearch(ws)
	if cfg.OIDC.ClientSecretEnv != "" {
		ws.OIDC.ClientSecret = os.Getenv(cfg.OIDC.ClientSecretEnv)
	}
	// Cookies are signed with web.session_key_file (or a key kept under
	// data_dir), so sign-ins survive a restart and, with the file shared,
	// landing on another replica; a failure only costs people a new sign-in.
	if key, err := ca.LoadOrCreateKey(webSessionKeyPath(d.ap.cfg)); err == nil {
		ws.SessionKey = key.Seed()
	} else {
		d.log.Warn("web: no persistent cookie key; sign-ins end on restart", "err", err)
	}
	return &component{
		name:     "web",
		run:      func(ctx context.Context) error { return ws.Serve(ctx, d.webLn) },
		shutdown: ws.Shutdown,
		drain:    func() { draining.Store(true) },
	}
}

func (d *serveDeps) recorderComponent() *component {
	return &component{
		name: "recorder",
		run: func(ctx context.Context) error {
			if err := d.recorder.Start(ctx); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		},
		shutdown: d.recorder.Shutdown,
	}
}

// watcherComponent runs the session watcher, woken by the registry's
// change announcements (PostgreSQL) besides its polls.
func (d *serveDeps) watcherComponent() *component {
	return &component{name: "session watcher", run: func(ctx context.Context) error {
		go d.cluster.watchChanges(ctx, d.live)
		return d.live.Watch(ctx)
	}}
}

// recorderConfig turns the recordings block into the recorder's config,
// reading the S3 credentials from the environment variables it names.
func recorderConfig(cfg *Config) (recorder.Config, error) {
	r := cfg.Recordings
	rc := recorder.Config{
		Store:         r.Store,
		FlushInterval: r.FlushInterval.D(),
		FailClosed:    boolOr(r.FailClosed, true),
		RecordInput:   r.RecordInput,
		Compression:   r.Compression,
		Retention:     r.Retention.D(),
		DataDir:       cfg.DataDir,
		S3: recorder.S3Config{Endpoint: r.S3.Endpoint, Bucket: r.S3.Bucket, Region: r.S3.Region,
			Secure: boolOr(r.S3.Secure, true), Prefix: r.S3.Prefix,
			AccessKeyEnv: r.S3.AccessKeyEnv, SecretKeyEnv: r.S3.SecretKeyEnv, ObjectLock: r.S3.ObjectLock},
	}
	switch {
	case r.ExecCaptureLimit == nil:
	case *r.ExecCaptureLimit == 0:
		rc.ExecCaptureLimit = -1 // counts and hashes only
	default:
		rc.ExecCaptureLimit = int64(*r.ExecCaptureLimit)
	}
	switch {
	case r.MaxStatementBytes == nil:
	case *r.MaxStatementBytes == 0:
		rc.MaxStatementBytes = -1 // statements kept whole
	default:
		rc.MaxStatementBytes = int(*r.MaxStatementBytes)
	}
	rc.ExecStdinOff = !boolOr(r.ExecCaptureStdin, true)
	for _, t := range cfg.Targets {
		if t.ExecCaptureStdin != nil && !*t.ExecCaptureStdin {
			rc.ExecStdinOffTargets = append(rc.ExecStdinOffTargets, t.Name)
		}
	}
	if r.Store == recorder.StoreS3 {
		rc.S3.AccessKey = os.Getenv(r.S3.AccessKeyEnv)
		rc.S3.SecretKey = os.Getenv(r.S3.SecretKeyEnv)
		if rc.S3.AccessKey == "" || rc.S3.SecretKey == "" {
			return rc, configErrorf("recordings.s3: environment variables %s and %s must hold the S3 credentials",
				r.S3.AccessKeyEnv, r.S3.SecretKeyEnv)
		}
	}
	return rc, rc.Validate()
}

// recordingKeyPath is the manifest signing key: recordings.signing_key_file,
// or one generated under data_dir.
func recordingKeyPath(cfg *Config) string {
	return recorder.Config{SigningKeyFile: cfg.Recordings.SigningKeyFile, DataDir: cfg.DataDir}.KeyFile()
}

// openRecordings opens what every reader and writer of recordings needs:
// the recorder's config, the store it names, and the recording key.
func openRecordings(cfg *Config) (recorder.Config, recorder.Store, ed25519.PrivateKey, error) {
	rc, store, err := openRecordingStore(cfg)
	if err != nil {
		return rc, nil, nil, err
	}
	key, err := ca.LoadOrCreateKey(recordingKeyPath(cfg))
	if err != nil {
		return rc, nil, nil, fmt.Errorf("load recording key: %w", err)
	}
	return rc, store, key, nil
}

// openRecordingStore is the recordings' config and their store, for a
// command that reads or marks recordings without signing any.
func openRecordingStore(cfg *Config) (recorder.Config, recorder.Store, error) {
	rc, err := recorderConfig(cfg)
	if err != nil {
		return rc, nil, err
	}
	store, err := recorder.NewStore(rc)
	if err != nil {
		return rc, nil, fmt.Errorf("open recording store: %w", err)
	}
	return rc, store, nil
}

func newRecorder(cfg *Config, log *slog.Logger, m *metrics) (*recorder.Recorder, error) {
	rc, store, key, err := openRecordings(cfg)
	if err != nil {
		return nil, err
	}
	rm := recorder.NewMetrics()
	m.registry.MustRegister(rm.Collectors()...)
	return &recorder.Recorder{Config: rc, Store: store, Key: key, Logger: log, Metrics: rm}, nil
}
