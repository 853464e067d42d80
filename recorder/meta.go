package recorder

import (
	"fmt"
	"regexp"
	"time"
)

// SessionMeta is what session.json records about a session: who, whose,
// where, how, and why it was let in. Proxies fill it when they open a
// recording.
type SessionMeta struct {
	// ID is the session id; it appears in every object key. Letters,
	// digits, '.', '_' and '-' only.
	ID       string `json:"id"`
	Identity string `json:"identity"`
	Owner    string `json:"owner,omitempty"`
	Target   string `json:"target"`
	// Protocol is "ssh", "postgres" or "mysql".
	Protocol string `json:"protocol"`
	// Login is the Unix login or database role used on the target.
	Login string `json:"login,omitempty"`
	// Source is the client's address.
	Source string `json:"source,omitempty"`
	// CertSerial identifies the per-session credential (SSH certificate
	// serial, database role name); never the credential itself.
	CertSerial string `json:"cert_serial,omitempty"`
	// Decision is the admission decision as the proxy got it; it is
	// marshalled as JSON.
	Decision any `json:"decision,omitempty"`
	// BreakglassGrant is the grant id when the session ran under one.
	BreakglassGrant string `json:"breakglass_grant,omitempty"`
	// ExecCapture is how much of exec channels' streams the recording keeps
	// (SSH sessions); set by Open from the config.
	ExecCapture *ExecCapture `json:"exec_capture,omitempty"`
	// StartedAt is when the session started; zero means when it was opened.
	// Its UTC date places the objects in the store.
	StartedAt time.Time `json:"started_at"`
}

var sessionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func validSessionID(id string) error {
	if !sessionIDPattern.MatchString(id) {
		return fmt.Errorf("session id %q: want 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'", id)
	}
	return nil
}

// SessionDir is the key prefix, below the store's own prefix, under which
// the objects of a session started at started live: "YYYY/MM/DD/<id>/".
func SessionDir(id string, started time.Time) string {
	return started.UTC().Format("2006/01/02/") + id + "/"
}

// State is the recording state the session index keeps.
type State string

// Recording states, in the order a session normally passes them.
const (
	StateLive       State = "live"       // being recorded
	StateUploading  State = "uploading"  // ended; objects still in the spool
	StateStored     State = "stored"     // every object and the signed manifest are in the store
	StateIncomplete State = "incomplete" // stored and signed, but the bastion died while it was live
	StateDegraded   State = "degraded"   // stored and signed, but data was dropped while recording
)

// InTransit reports whether objects of a recording in state s may still be
// on their way to the store: it is live or uploading.
func (s State) InTransit() bool { return s == StateLive || s == StateUploading }

// StateChange is passed to Recorder.OnState whenever a recording changes
// state, so the caller can keep the session index.
type StateChange struct {
	Meta  SessionMeta
	State State
	// Dir is the key prefix of the session's objects (see SessionDir).
	Dir     string
	EndedAt time.Time // zero while live
	// Bytes counts every byte that crossed in the session (see
	// crossed.go) when it ends (uploading); a later report (stored, or a
	// recording recovered after a crash) has only the bytes the recording
	// holds, so an index keeps the larger. Events counts the events.
	Bytes  int64
	Events int64
	// Reason explains incomplete and degraded states.
	Reason string
	// Recovered marks the report of a recording this process found live in
	// its spool at start (the bastion died while it ran): another replica
	// may have sealed it from the store meanwhile (see SealFromStore), and
	// the index keeper records that this one now stores it.
	Recovered bool
}
