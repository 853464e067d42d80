package main

import (
	"context"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/recorder"
	"github.com/sallyport/sallyport/search"
	"github.com/sallyport/sallyport/web"
)

// withLiveView lets the console watch the sessions this replica runs, and
// those of other replicas by following their recordings in the shared
// store (which their replica, asked through the registry, flushes every
// 250 ms meanwhile), and records each watch in the registry's audit trail.
func (d *serveDeps) withLiveView(ws *web.Server) {
	ws.Live, ws.Replica = d.recorder, d.cluster.id
	ws.LiveStore = recorder.StoreTail{Store: d.recorder.Store, FlushInterval: d.recorder.Config.FlushInterval,
		Faster: true, Options: recorder.TailOptions{Logger: d.log}}
	// The replica that runs a watched session reads the ask with its kill
	// requests (proxy.Live.Recordings) and flushes the recording faster.
	ws.AskFlush = d.ap.store.RequestWatch
	ws.Audit = func(ctx context.Context, e iga.AuditEvent) error {
		return d.ap.store.Update(ctx, func(tx iga.Tx) error { return tx.AppendAudit(ctx, e) })
	}
}

// withSearch gives the console's sessions page its search box, on the
// index kept in the registry database.
func (d *serveDeps) withSearch(ws *web.Server) {
	db, dialect := d.ap.store.SearchDB()
	ix, err := search.New(db, dialect)
	if err != nil {
		d.log.Warn("web: no search box on the sessions page", "err", err)
		return
	}
	ws.Search = ix
}
