package recorder

import "time"

// Event types written to events.jsonl.
const (
	EventExec    = "exec"     // a command run without a pty or as ssh CMD
	EventShell   = "shell"    // an interactive shell was started
	EventSFTP    = "sftp"     // one sftp/scp operation
	EventForward = "forward"  // a direct-tcpip forward opening (op "open") or closing (op "close")
	EventQuery   = "query"    // one database query with its outcome
	EventNote    = "note"     // anything else worth an auditor's eye
	EventSCP     = "scp"      // one file or directory of a legacy scp (rcp) transfer
	EventCommand = "command"  // one command: an exec line, or a line submitted in a terminal
	EventData    = "data"     // where a stretch of an exec channel's stdin, stdout or stderr lies in its stream
	EventExecEnd = "exec_end" // an exec channel ended: its streams' totals and hashes, exit status or signal

	EventTransaction  = "transaction"  // a database transaction ended: op "commit" or "rollback", with its statement count
	EventNotification = "notification" // a LISTENed notification the session received
	EventCancel       = "cancel"       // a cancel request (pg_cancel, KILL QUERY) aimed at this session's running statement
	EventEnd          = "end"          // the session ended; written by Session.Close
)

// Event is one line of events.jsonl. Time and Type are always present; the
// other fields belong to the types named in their comments and are omitted
// when empty.
type Event struct {
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Channel is the SSH channel the event belongs to (exec, shell, sftp).
	Channel *int `json:"channel,omitempty"`

	// Command is the exec command line, or a command event's command.
	Command string `json:"command,omitempty"`
	// Op, Path and To describe an sftp or scp operation (open, read, write,
	// remove, rename, mkdir, upload, download, ...) or a forward's phase
	// (open, close); To is the rename target. Bytes is the amount
	// transferred by a read, write or file, the stretch of a data event,
	// or, on the end event, every byte the session moved.
	Op    string `json:"op,omitempty"`
	Path  string `json:"path,omitempty"`
	To    string `json:"to,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	// Host and Port are a forward's destination.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`

	// SQL is a query's text, Params its bound parameters in order, and
	// Statement the prepared statement name when there is one. Redacted
	// says the proxy removed passwords from them (see proxy/sqlredact).
	SQL string `json:"sql,omitempty"`
	// SQLCut says SQL holds only a prefix of the statement, which was
	// longer than recordings.max_statement_bytes: the whole text's length
	// and SHA-256.
	SQLCut     *Cut    `json:"sql_cut,omitempty"`
	Params     []any   `json:"params,omitempty"`
	Statement  string  `json:"statement,omitempty"`
	Redacted   bool    `json:"redacted,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	// Outcome is how a query (or sftp operation) ended; for a query string
	// holding several statements, how the last one that ran ended.
	Outcome *Outcome `json:"outcome,omitempty"`
	// Outcomes lists, for a query string holding several statements, each
	// statement's outcome in order (NotExecuted for those after an error).
	Outcomes []Outcome `json:"outcomes,omitempty"`
	// Tx is the session's transaction state once the statement completed:
	// "idle" (autocommit, committed), "in" (inside a transaction) or
	// "failed" (inside a transaction that can only roll back). Empty: not
	// known. A transaction event tells the fate of the "in" ones.
	Tx string `json:"tx,omitempty"`
	// Statements counts the statements a transaction event's transaction
	// held.
	Statements int64 `json:"statements,omitempty"`
	// Notification is a notification event's channel, payload and sender.
	Notification *Notification `json:"notification,omitempty"`
	// From names who sent a cancel: the bastion session it came through,
	// or the client address.
	From string `json:"from,omitempty"`

	// Mode, Size, Direction and SHA256 describe a file an sftp or scp
	// operation moved: its permission bits in octal ("0644"), its size as
	// announced, "upload" (towards the target) or "download", and the
	// SHA-256 of its content when it crossed whole and in order.
	Mode      string `json:"mode,omitempty"`
	Size      *int64 `json:"size,omitempty"`
	Direction string `json:"direction,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	// ToTarget and ToClient are the bytes a forward moved each way.
	ToTarget int64 `json:"to_target,omitempty"`
	ToClient int64 `json:"to_client,omitempty"`
	// Stream and Offset place a data event: which stream of the channel
	// (stdin, stdout, stderr) and where in it the stretch of Bytes starts.
	// On a terminal command event, Offset is where the prompt's line starts
	// in the channel's output.
	Stream string `json:"stream,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	// Streams sums up an exec channel's streams in its exec_end event, by
	// stream name.
	Streams map[string]ExecStream `json:"streams,omitempty"`
	// Signal is the signal that ended a remote command (exit-signal).
	Signal string `json:"signal,omitempty"`
	// Source says where a command event comes from: "exec" (the exec
	// request itself) or "terminal" (reconstructed from what the terminal
	// echoed: best effort).
	Source string `json:"source,omitempty"`

	// Text is a note's message.
	Text string `json:"text,omitempty"`
	// ExitStatus is an end event's (or exec's) exit status; Reason why the
	// session ended ("client closed", "killed by admin", ...).
	ExitStatus *int   `json:"exit_status,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// ExecStream is what crossed one stream of an exec channel: every byte
// counted and hashed, whether or not it was kept.
type ExecStream struct {
	// Bytes is the whole stream's length; SHA256 the hex SHA-256 of all of it.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Captured is how many of the first bytes the recording keeps; less
	// than Bytes when the capture limit cut the stream (Truncated).
	Captured  int64 `json:"captured"`
	Truncated bool  `json:"truncated,omitempty"`
	// NotCaptured names why nothing was kept by policy ("exec_capture_stdin
	// off", "exec_capture_limit 0"); empty otherwise.
	NotCaptured string `json:"not_captured,omitempty"`
}

// Cut describes a text too long to keep whole: its full length and hex
// SHA-256; the record keeps a prefix.
type Cut struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Notification is what a LISTENing session received.
type Notification struct {
	Channel string `json:"channel"`
	Payload string `json:"payload,omitempty"`
	PID     uint32 `json:"pid,omitempty"`
}

// Outcome is the result of a query: Tag and Rows on success, ErrorCode and
// Error on failure.
type Outcome struct {
	// SQL is the statement's own text, in an Outcomes list.
	SQL string `json:"sql,omitempty"`
	// NotExecuted marks, in an Outcomes list, a statement that never ran
	// (an earlier one failed).
	NotExecuted bool `json:"not_executed,omitempty"`
	// Bytes is the size of the result the server sent.
	Bytes     int64  `json:"bytes,omitempty"`
	Tag       string `json:"tag,omitempty"`
	Rows      *int64 `json:"rows,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
}

// End is how a session ended, given to Session.Close.
type End struct {
	// ExitStatus is the remote command's exit status; nil when none.
	ExitStatus *int
	// Reason says why the session ended; empty means "closed".
	Reason string
}
