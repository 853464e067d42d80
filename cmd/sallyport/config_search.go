package main

// SearchConfig is the search index's part of serve (docs/search.md).
type SearchConfig struct {
	// Indexing runs the search indexer in this serve process. Unset means
	// on; off leaves the indexing to other replicas sharing the registry
	// (they claim sessions one by one), or stops it while keeping search.
	Indexing *bool `yaml:"indexing"`
}
