// Package recorder owns sallyport's session recordings: every proxy (SSH,
// PostgreSQL, MySQL) writes a session through a Session opened on a Recorder,
// and auditors read it back with Verify, Replay and ExportCast.
//
// A recording is a set of objects under <prefix>YYYY/MM/DD/<session-id>/ in a
// Store (a directory or an S3 bucket): session.json (who, what, where), a
// hash chain of compressed chunks (zstd; gzip in older recordings) carrying
// the terminal streams (asciicast v2, one per pty channel) and events.jsonl
// (commands, sftp operations, forwards, queries), and manifest.json with
// its detached SSH signature manifest.json.sig, made with the bastion's
// ed25519 recording key, covering every other object.
//
// Data is first written to a local spool in chunks, flushed at least every
// Config.FlushInterval, and shipped to the store by an uploader while the
// session runs; a spool file is deleted only after the store confirmed it.
// Recorder.Start recovers sessions that were live when the process died and
// seals them as incomplete. docs/recordings.md describes the formats so that a
// recording can be verified without sallyport.
package recorder
