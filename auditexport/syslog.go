package auditexport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// syslogDialTimeout bounds connecting (and the TLS handshake) to a syslog
// receiver: a receiver that is gone fails the batch now, to be retried,
// rather than holding the sink.
const syslogDialTimeout = 10 * time.Second

// syslogWriteTimeout bounds writing one batch: a receiver that stops
// reading (hangs) fails the batch instead of blocking the exporter.
const syslogWriteTimeout = 30 * time.Second

// syslogProbeWait is how long Send looks for the receiver having closed
// the connection before it writes to it: TCP syslog has no acknowledgement,
// and a batch written to a connection the peer already closed is lost.
const syslogProbeWait = 5 * time.Millisecond

// syslogFacility is "log audit" (RFC 5424 §6.2.1).
const syslogFacility = 13

// syslogSink writes RFC 5424 messages over TCP (RFC 6587 octet counting),
// optionally in TLS (RFC 5425).
type syslogSink struct {
	name     string
	address  string
	tlsConf  *tls.Config
	hostname string
	conn     net.Conn
}

func newSyslogSink(c SinkConfig) *syslogSink {
	s := &syslogSink{name: c.SinkName(), address: c.Address}
	if c.TLS {
		s.tlsConf = c.TLSConfig
		if s.tlsConf == nil {
			host, _, _ := net.SplitHostPort(c.Address)
			s.tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
	}
	s.hostname, _ = os.Hostname()
	if s.hostname == "" {
		s.hostname = "-"
	}
	return s
}

func (s *syslogSink) Name() string { return s.name }

// Send writes recs on the connection, dialling one when there is none or
// the receiver closed the last.
func (s *syslogSink) Send(ctx context.Context, recs []Record) error {
	if s.conn != nil && !s.alive() {
		s.drop()
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(syslogWriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	w := bufio.NewWriter(s.conn)
	for _, r := range recs {
		msg := s.format(r)
		if _, err := w.WriteString(strconv.Itoa(len(msg)) + " " + msg); err != nil {
			s.drop()
			return fmt.Errorf("write to syslog %s: %w", s.address, err)
		}
	}
	if err := w.Flush(); err != nil {
		s.drop()
		return fmt.Errorf("write to syslog %s: %w", s.address, err)
	}
	return nil
}

// alive reports whether the receiver has not closed the connection: a
// receiver never writes to us, so a read that returns anything but a
// timeout means it is gone.
func (s *syslogSink) alive() bool {
	s.conn.SetReadDeadline(time.Now().Add(syslogProbeWait))
	var b [1]byte
	_, err := s.conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, io.EOF)
}

func (s *syslogSink) dial(ctx context.Context) error {
	d := &net.Dialer{Timeout: syslogDialTimeout}
	var err error
	if s.tlsConf != nil {
		td := &tls.Dialer{NetDialer: d, Config: s.tlsConf}
		s.conn, err = td.DialContext(ctx, "tcp", s.address)
	} else {
		s.conn, err = d.DialContext(ctx, "tcp", s.address)
	}
	if err != nil {
		s.conn = nil
		return fmt.Errorf("connect to syslog %s: %w", s.address, err)
	}
	return nil
}

// format is one RFC 5424 message: PRI, version, time, host, app, procid,
// msgid (the audit event type), no structured data, the JSON as MSG.
func (s *syslogSink) format(r Record) string {
	sev := 6 // informational
	if r.Severity >= severityMedium {
		sev = 4 // warning
	}
	return fmt.Sprintf("<%d>1 %s %s sallyport %d %s - %s", syslogFacility*8+sev,
		r.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), s.hostname, os.Getpid(), msgID(r.Type), r.JSON)
}

// msgID is the type as an RFC 5424 MSGID: 1–32 printable ASCII characters.
func msgID(t string) string {
	b := []byte(t)
	if len(b) > 32 {
		b = b[:32]
	}
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

func (s *syslogSink) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *syslogSink) Close() error {
	s.drop()
	return nil
}
