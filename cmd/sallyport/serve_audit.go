package main

import (
	"context"
	"errors"

	"github.com/sallyport/sallyport/auditexport"
	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// auditComponent exports the audit trail to the sinks of audit.export
// (docs/audit.md), or, with none, only keeps the outbox empty. A sink that
// cannot be opened (a header's variable unset, say) stops serve at start.
func (d *serveDeps) auditComponent() *component {
	x, err := newAuditExporter(d.ap.cfg, d.ap.store)
	if err != nil {
		return &component{name: "audit export", run: func(context.Context) error { return err }}
	}
	x.Logger = d.log
	d.metrics.registry.MustRegister(x.Metrics.Collectors()...)
	return &component{name: "audit export", run: x.Run}
}

// newAuditExporter opens the configured sinks.
func newAuditExporter(cfg *Config, store *sqlstore.Store) (*auditexport.Exporter, error) {
	x := &auditexport.Exporter{Outbox: outbox{store}, Metrics: auditexport.NewMetrics()}
	mapper := auditexport.Mapper{Version: version, TargetKind: func(name string) string {
		t, _ := cfg.Target(name)
		return t.Kind
	}}
	var names []string
	for _, s := range cfg.Audit.Export {
		sc, err := s.exportConfig(cfg)
		if err != nil {
			return nil, err
		}
		sink, err := auditexport.NewSink(sc)
		if err != nil {
			return nil, err
		}
		x.Destinations = append(x.Destinations, auditexport.Destination{Sink: sink,
			Encoder: auditexport.Encoder{Format: sc.Format, Mapper: mapper}})
		names = append(names, sink.Name())
	}
	x.Metrics.Init(names)
	return x, nil
}

// outbox is the registry store as the exporter's Outbox: the store's
// busy error becomes auditexport's.
type outbox struct{ *sqlstore.Store }

func (o outbox) ExportBatch(ctx context.Context, sink string, after int64, limit int, deliver func(context.Context, []iga.AuditEvent) error) (int, error) {
	n, err := o.Store.ExportBatch(ctx, sink, after, limit, deliver)
	if errors.Is(err, sqlstore.ErrSinkBusy) {
		return 0, auditexport.ErrBusy
	}
	return n, err
}
