package auditexport

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// httpTimeout bounds one batch's POST, response included: a collector
// that hangs fails the batch, to be sent again, instead of holding the sink.
const httpTimeout = 30 * time.Second

// httpSink POSTs each batch as gzip-compressed JSON lines.
type httpSink struct {
	name    string
	url     string
	headers map[string]string
	client  *http.Client
}

func newHTTPSink(c SinkConfig) *httpSink {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.TLSConfig != nil {
		tr.TLSClientConfig = c.TLSConfig.Clone()
	} else {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &httpSink{name: c.SinkName(), url: c.URL, headers: c.Headers,
		client: &http.Client{Timeout: httpTimeout, Transport: tr, CheckRedirect: noRedirect}}
}

// noRedirect fails a batch the collector redirects (its status is the
// error) rather than follow: the client would carry the configured
// headers, tokens among them, to wherever the redirect points.
func noRedirect(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

func (s *httpSink) Name() string { return s.name }

// Send POSTs recs; any answer but 2xx fails the batch.
func (s *httpSink) Send(ctx context.Context, recs []Record) error {
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	for _, r := range recs {
		zw.Write(r.JSON)
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress batch for %s: %w", s.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, &body)
	if err != nil {
		return fmt.Errorf("post to %s: %w", s.name, err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// The client's error quotes the URL, whose query may hold a token,
		// with any password masked, so it no longer matches s.url: name
		// the sink in its place instead.
		if ue, ok := err.(*url.Error); ok {
			ue.URL = s.name
		}
		return fmt.Errorf("post to %s: %s", s.name, redact(err.Error(), s.headers))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post to %s: answered %s", s.name, resp.Status)
	}
	return nil
}

func (s *httpSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
