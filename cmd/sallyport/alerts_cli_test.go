package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestCLIAlertsWait: a command's alerts reach the webhook before it
// exits; a receiver that refuses them is waited for no longer than the
// limit and reported, and without a webhook they are left to the log.
func TestCLIAlertsWait(t *testing.T) {
	const secret = "cli-alerts-secret"
	t.Setenv("TEST_CLI_HOOK_SECRET", secret)
	for _, tc := range []struct {
		name     string
		status   int
		accepted int
	}{
		{"accepted", http.StatusNoContent, 2},
		{"refused", http.StatusForbidden, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := &revReceiver{secret: []byte(secret)}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rcv.ServeHTTP(w, r)
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(srv.Close)
			cfg := &Config{Alerts: AlertsConfig{WebhookURL: srv.URL, SecretEnv: "TEST_CLI_HOOK_SECRET"}}
			a, err := newCLIAlerts(context.Background(), cfg, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			a.waitFor = time.Second
			for i := range 2 {
				a.sink()(iga.Alert{ID: fmt.Sprintf("owner_inactive/svc-%d/tr-%d", i, i), Kind: iga.AlertOwnerInactive})
			}
			start := time.Now()
			accepted, queued := a.wait()
			assert.Equal(t, tc.accepted, accepted)
			assert.Equal(t, 2, queued)
			assert.Less(t, time.Since(start), 3*time.Second, "waited past the limit")
			assert.Zero(t, rcv.bad, "signed with alerts.secret_env")
			assert.NotEmpty(t, rcv.kinds(), "the receiver got the alerts")
		})
	}
	a, err := newCLIAlerts(context.Background(), &Config{}, slog.Default())
	require.NoError(t, err)
	assert.Nil(t, a.sink(), "no webhook: the registry logs the alerts")
}
