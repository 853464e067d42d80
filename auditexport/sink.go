package auditexport

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// Sink types and formats.
const (
	TypeFile   = "file"
	TypeSyslog = "syslog"
	TypeHTTP   = "http"

	FormatOCSF   = "ocsf"
	FormatNative = "native"
)

// Defaults of the file sink.
const (
	defaultMaxSize = 100 << 20 // rotate at 100 MiB
	defaultKeep    = 10        // rotated files kept besides the live one
)

// Record is one exported event: its stable id (metadata.uid in OCSF, the
// audit event id in native form), severity and JSON text.
type Record struct {
	UID      string
	Type     string // the audit event type, the syslog MSGID
	Severity int    // OCSF severity_id
	Time     time.Time
	JSON     []byte
}

// Sink delivers records to one destination. Send returns nil only once the
// destination has every record of the batch (as far as its protocol can
// tell); on error the whole batch is sent again later.
type Sink interface {
	Name() string
	Send(ctx context.Context, recs []Record) error
	Close() error
}

// SinkConfig is one export destination.
type SinkConfig struct {
	// Name keys the sink's delivery state in the outbox. Empty: type and
	// destination ("syslog:siem:6514"). Renaming a sink starts it over.
	Name string
	// Type is TypeFile, TypeSyslog or TypeHTTP.
	Type string
	// Format is FormatOCSF (empty) or FormatNative.
	Format string
	// Path is the file sink's file. MaxSize is the size at which it is
	// rotated (0: 100 MiB) and Keep how many rotated files are kept (0: 10).
	Path    string
	MaxSize int64
	Keep    int
	// Address is the syslog receiver's host:port (TCP). TLS turns on TLS;
	// TLSConfig is its client config (nil: the system roots, the server
	// name from Address).
	Address   string
	TLS       bool
	TLSConfig *tls.Config
	// URL is where the HTTP sink POSTs batches; Headers are sent with each
	// (an authorization token, say: never logged).
	URL     string
	Headers map[string]string
}

// Validate reports what is missing or wrong in c.
func (c SinkConfig) Validate() error {
	if c.Format != "" && c.Format != FormatOCSF && c.Format != FormatNative {
		return errUnknownFormat(c.Format)
	}
	switch c.Type {
	case TypeFile:
		if c.Path == "" {
			return errors.New("file sink: path is required")
		}
		if c.MaxSize < 0 || c.Keep < 0 {
			return errors.New("file sink: max_size and keep must not be negative")
		}
	case TypeSyslog:
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return fmt.Errorf("syslog sink: address %q: want host:port", c.Address)
		}
	case TypeHTTP:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("http sink: url: want an http or https URL")
		}
	default:
		return fmt.Errorf("sink type %q: want %s, %s or %s", c.Type, TypeFile, TypeSyslog, TypeHTTP)
	}
	return nil
}

// SinkName is the name the sink's delivery state is kept under.
func (c SinkConfig) SinkName() string {
	if c.Name != "" {
		return c.Name
	}
	switch c.Type {
	case TypeFile:
		return "file:" + c.Path
	case TypeSyslog:
		return "syslog:" + c.Address
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return "http"
	}
	// The name reaches logs, errors, metrics labels and the outbox table:
	// it holds the host and, instead of the path and query (a webhook's
	// token often is one of them), a digest that tells sinks on one host
	// apart.
	if u.Path == "" && u.RawQuery == "" {
		return "http:" + u.Host
	}
	sum := sha256.Sum256([]byte(u.EscapedPath() + "?" + u.RawQuery))
	return "http:" + u.Host + "#" + hex.EncodeToString(sum[:4])
}

// NewSink opens the sink c describes.
func NewSink(c SinkConfig) (Sink, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch c.Type {
	case TypeFile:
		return newFileSink(c)
	case TypeSyslog:
		return newSyslogSink(c), nil
	}
	return newHTTPSink(c), nil
}

// Encoder turns audit events into the records of a format.
type Encoder struct {
	Format string // FormatOCSF (empty) or FormatNative
	Mapper Mapper
}

// Encode returns the records of evs, in order.
func (e Encoder) Encode(evs []iga.AuditEvent) ([]Record, error) {
	var out []Record
	for _, ev := range evs {
		recs, err := e.encode(ev)
		if err != nil {
			return nil, fmt.Errorf("encode audit event %d: %w", ev.ID, err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

func (e Encoder) encode(ev iga.AuditEvent) ([]Record, error) {
	if e.Format == FormatNative {
		b, err := json.Marshal(Native(ev))
		return []Record{{UID: fmt.Sprint(ev.ID), Type: ev.Type, Severity: nativeSeverity(ev), Time: ev.Time, JSON: b}}, err
	}
	var out []Record
	for _, o := range e.Mapper.OCSF(ev) {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		uid := o["metadata"].(object)["uid"].(string)
		out = append(out, Record{UID: uid, Type: ev.Type, Severity: o["severity_id"].(int), Time: ev.Time, JSON: b})
	}
	return out, nil
}

// NativeEvent is an audit event in sallyport's own JSON form, as
// `sallyport audit list --json` prints it (docs/cli.md).
type NativeEvent struct {
	ID       int64        `json:"id"`
	Time     time.Time    `json:"time"`
	Type     string       `json:"type"`
	Actor    string       `json:"actor"`
	Identity string       `json:"identity,omitempty"`
	Target   string       `json:"target,omitempty"`
	Action   iga.Action   `json:"action,omitempty"`
	Source   string       `json:"source,omitempty"`
	Allow    *bool        `json:"allow,omitempty"`
	Reasons  []iga.Reason `json:"reasons,omitempty"`
	Detail   string       `json:"detail,omitempty"`
	// Session is the proxied session a decision was made for (from its
	// detail), the id `sessions list` and the recording carry.
	Session string `json:"session,omitempty"`
}

// Native is ev in native form: allow and session are present on events
// that allow or deny something.
func Native(ev iga.AuditEvent) NativeEvent {
	n := NativeEvent{ID: ev.ID, Time: ev.Time, Type: ev.Type, Actor: ev.Actor, Identity: ev.Identity,
		Target: ev.Target, Action: ev.Action, Source: ev.Source, Reasons: ev.Reasons, Detail: ev.Detail}
	if iga.IsVerdict(ev.Type) {
		allow := ev.Allow
		n.Allow = &allow
		n.Session = iga.AuditDetailFields(ev.Detail)["session"]
	}
	return n
}

func nativeSeverity(ev iga.AuditEvent) int {
	if ev.Allow || (ev.Type != "decision" && ev.Type != "login_failed" && ev.Type != "refusal") {
		return severityInformational
	}
	return severityMedium
}

// redact keeps header values out of a message.
func redact(msg string, headers map[string]string) string {
	for _, v := range headers {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return msg
}
