// Package search owns the index of what happened inside sessions: the
// commands, exec stdin scripts, terminal output and typed input, database
// queries with their parameters and outcome, file paths and hashes,
// forward destinations and notes of every recording, each with its session
// and time. The index lives in the registry's database (SQLite FTS5 or
// PostgreSQL full-text search), so one node and a cluster search alike.
//
// An Indexer, run by `sallyport serve`, reads recordings from the store
// after the recorder wrote them, never on a relay's path; Index.Search is
// what `sallyport sessions search` and the web console call. Each session
// is indexed within a bound (Bound) so one huge session cannot fill the
// database. docs/search.md describes what is indexed and how queries match.
package search
