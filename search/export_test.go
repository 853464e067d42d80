package search

import "context"

// Adopt runs the indexer's periodic sweep now, for tests.
func (x *Indexer) Adopt(ctx context.Context) error { return x.adopt(ctx) }

// ReopenContinued runs the indexer's look for continued sessions now, for
// tests.
func (x *Indexer) ReopenContinued(ctx context.Context) error { return x.reopenContinued(ctx) }
