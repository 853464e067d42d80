package main

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/search"
)

// newSearchIndex returns the search index kept in the registry database.
func newSearchIndex(store *sqlstore.Store) (*search.Index, error) {
	db, dialect := store.SearchDB()
	ix, err := search.New(db, dialect)
	if err != nil {
		return nil, fmt.Errorf("open the search index: %w", err)
	}
	return ix, nil
}

// searchComponent runs the search indexer: it reads what the recorder has
// put in the store, off every relay's path, and claims each session in the
// registry so replicas sharing it never index one twice. It verifies a
// recording with the recording key before it indexes a lost replica's
// continuation.
func (d *serveDeps) searchComponent() *component {
	return &component{name: "search indexer", run: func(ctx context.Context) error {
		if !boolOr(d.ap.cfg.Search.Indexing, true) {
			<-ctx.Done() // search.indexing: false
			return nil
		}
		ix, err := newSearchIndex(d.ap.store)
		if err != nil {
			return err
		}
		x := &search.Indexer{Index: ix, Store: d.recorder.Store, Write: d.ap.store.SearchWrite,
			Owner: d.cluster.id, Logger: d.log, Key: d.recorder.Key.Public().(ed25519.PublicKey)}
		return x.Run(ctx)
	}}
}
