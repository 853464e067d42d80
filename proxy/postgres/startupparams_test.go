package postgres_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStartupParameters: what a client's startup parameters can reach on
// the target. Settings go along and the target grants them as it grants a
// SET by the session's role; the bastion's own settings win; options holds
// only -c settings; a setting the target refuses is named to the client.
func TestStartupParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name    string
		params  map[string]string
		setting string // shown by current_setting when the login succeeds
		want    string // the setting's value, or the refusal
	}{
		{name: "a setting goes along", params: map[string]string{"options": "-c default_transaction_read_only=on"},
			setting: "default_transaction_read_only", want: "on"},
		{name: "the bastion's check interval wins", params: map[string]string{"client_connection_check_interval": "0"},
			setting: "client_connection_check_interval", want: "1s"},
		{name: "nor does options override it", params: map[string]string{"options": "-c client_connection_check_interval=0"},
			setting: "client_connection_check_interval", want: "1s"},
		{name: "a role the session may take", params: map[string]string{"options": "-c role=analyst"},
			setting: "role", want: "analyst"},
		{name: "a role it may not", params: map[string]string{"options": "-c role=postgres"},
			want: `FATAL: sallyport: target analytics refused the session's startup parameters: permission denied to set role "postgres"; leave the parameter out (SQLSTATE 42501)`},
		{name: "another session user", params: map[string]string{"session_authorization": "postgres"},
			want: `FATAL: sallyport: target analytics refused the session's startup parameters: permission denied to set session authorization`},
		{name: "a superuser setting", params: map[string]string{"options": "--log_statement=none"},
			want: `permission denied to set parameter "log_statement"`},
		{name: "a server switch other than -c", params: map[string]string{"options": "-c search_path=public -W 30"},
			want: `FATAL: sallyport: the server switch "-W" in options is not relayed: options may only set parameters (-c name=value) (SQLSTATE 0A000)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := e.pgxWith(t, tc.params)
			if tc.setting == "" {
				require.Error(t, err, "the login must be refused")
				assert.Contains(t, err.Error(), tc.want)
				return
			}
			require.NoError(t, err)
			defer conn.Close(context.Background())
			var got string
			require.NoError(t, conn.QueryRow(context.Background(), "SELECT current_setting($1)", tc.setting).Scan(&got))
			assert.Equal(t, tc.want, got, "got %s = %q, want %q", tc.setting, got, tc.want)
		})
	}
	e.waitNoRoles(t, 5*time.Second)
}

// pgxWith connects through the bastion with pgx, sending params at startup.
func (e *env) pgxWith(t *testing.T, params map[string]string) (*pgx.Conn, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig("")
	require.NoError(t, err)
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = "127.0.0.1", uint16(e.addr.Port), okIdentity, e.token(okIdentity), targetName
	cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	cfg.Fallbacks = nil
	cfg.RuntimeParams = params
	return pgx.ConnectConfig(context.Background(), cfg)
}
