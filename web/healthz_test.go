package web_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/web"
)

// TestHealthz: a load balancer's probe tells a healthy bastion, one that
// lost its registry and one that is draining apart by status and body;
// draining is expected, so it is not logged as a failure.
func TestHealthz(t *testing.T) {
	tests := []struct {
		name     string
		health   error
		want     int
		wantBody string
		warns    bool
	}{
		{"ok", nil, http.StatusOK, `{"status":"ok"}`, false},
		{"registry down", errors.New("dial tcp: connection refused"), http.StatusServiceUnavailable, `"status":"unavailable"`, true},
		{"draining", web.ErrDraining, http.StatusServiceUnavailable, `"status":"draining"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			ws := &web.Server{
				Health: func(context.Context) error { return tc.health },
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			}
			srv := httptest.NewServer(ws.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tc.want, resp.StatusCode)
			assert.Contains(t, string(body), tc.wantBody)
			assert.Equal(t, tc.warns, bytes.Contains(logs.Bytes(), []byte("health check failed")), "logs: %s", &logs)
		})
	}
}
