package recorder

import "time"

// Event types written to events.jsonl.
const (
	EventExec    = "exec"    // a command run without a pty or as ssh CMD
	EventShell   = "shell"   // an interactive shell was started
	EventSFTP    = "sftp"    // one sftp/scp operation
	EventForward = "forward" // a direct-tcpip forward
	EventQuery   = "query"   // one database query with its outcome
	EventNote    = "note"    // anything else worth an auditor's eye
	EventEnd     = "end"     // the session ended; written by Session.Close
)

// Event is one line of events.jsonl. Time and Type are always present; the
// other fields belong to the types named in their comments and are omitted
// when empty.
type Event struct {
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Channel is the SSH channel the event belongs to (exec, shell, sftp).
	Channel *int `json:"channel,omitempty"`

	// Command is the exec command line.
	Command string `json:"command,omitempty"`
	// Op, Path and To describe an sftp operation (open, read, write,
	// remove, rename, mkdir, ...); To is the rename target. Bytes is the
	// amount transferred by a read or write.
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
	SQL        string  `json:"sql,omitempty"`
	Params     []any   `json:"params,omitempty"`
	Statement  string  `json:"statement,omitempty"`
	Redacted   bool    `json:"redacted,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	// Outcome is how a query (or sftp operation) ended.
	Outcome *Outcome `json:"outcome,omitempty"`

	// Text is a note's message.
	Text string `json:"text,omitempty"`
	// ExitStatus is an end event's (or exec's) exit status; Reason why the
	// session ended ("client closed", "killed by admin", ...).
	ExitStatus *int   `json:"exit_status,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// Outcome is the result of a query: Tag and Rows on success, ErrorCode and
// Error on failure.
type Outcome struct {
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
