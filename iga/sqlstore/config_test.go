package sqlstore

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		config  Config
		wantErr string // "" for valid
	}{
		{"sqlite is the default driver", Config{Path: "/var/lib/sallyport/registry.db"}, ""},
		{"explicit sqlite", Config{Driver: DriverSQLite, Path: "registry.db"}, ""},
		{"postgres with a DSN", Config{Driver: DriverPostgres, DSN: "postgres://sp@db/registry"}, ""},
		{"sqlite without a path", Config{Driver: DriverSQLite}, "needs a database file path"},
		{"sqlite path with a query", Config{Path: "registry.db?mode=ro"}, "must not contain '?'"},
		{"postgres without a DSN", Config{Driver: DriverPostgres, Path: "registry.db"}, "postgres needs a DSN"},
		{"unknown driver", Config{Driver: "mysql", DSN: "x"}, `unknown registry driver "mysql"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.config.Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err, "got no error, want one containing %q", tt.wantErr)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestOpenKeepsPasswordOutOfErrors: a DSN carries the registry password;
// an Open that fails must say what failed without repeating it.
func TestOpenKeepsPasswordOutOfErrors(t *testing.T) {
	const password = "s3cret-registry-pw"
	dsns := map[string]string{
		"unreachable server": "postgres://sallyport:" + password + "@127.0.0.1:1/registry?connect_timeout=2",
		"malformed DSN":      "postgres://sallyport:" + password + "@127.0.0.1:notaport/registry",
		"key=value form":     "host=127.0.0.1 port=1 user=sallyport password=" + password + " connect_timeout=2",
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, Config{Driver: DriverPostgres, DSN: dsn})
			if s != nil {
				s.Close()
			}
			require.Error(t, err, "opening a registry nobody serves: got no error")
			assert.NotContains(t, err.Error(), password, "the error repeats the password")
			t.Logf("error: %v", err)
		})
	}
}

// TestMigrationsMatchAcrossDrivers: every schema step exists for both
// drivers, so a registry moved from SQLite to PostgreSQL has the same shape.
func TestMigrationsMatchAcrossDrivers(t *testing.T) {
	lite, err := sqliteDialect.migrations()
	require.NoError(t, err)
	pg, err := postgresDialect.migrations()
	require.NoError(t, err)
	require.NotEmpty(t, lite)
	names := func(ms []migration) (out []string) {
		for _, m := range ms {
			out = append(out, m.name)
		}
		return out
	}
	assert.Equal(t, names(lite), names(pg), "migration files: got sqlite first, postgres second")
}

func TestOpenSQLite(t *testing.T) {
	t.Run("creates the file and its directory, private", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "nested")
		path := filepath.Join(dir, "registry.db")
		openT(t, Config{Path: path})
		_, err := os.Stat(path)
		require.NoError(t, err, "registry file")
		info, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), info.Mode().Perm(), "data dir mode: got %v, want 0700", info.Mode().Perm())
	})
	t.Run("uses WAL so the CLI can write while serve reads", func(t *testing.T) {
		s := openT(t, Config{Path: filepath.Join(t.TempDir(), "registry.db")})
		var mode string
		require.NoError(t, s.queryRow(ctxT(t), "PRAGMA journal_mode").Scan(&mode))
		assert.Equal(t, "wal", mode, "journal mode: got %q, want wal", mode)
	})
	t.Run("a writer held up by another process waits instead of failing", func(t *testing.T) {
		c := Config{Path: filepath.Join(t.TempDir(), "registry.db")}
		a, b := openT(t, c), openT(t, c)
		ctx := ctxT(t)
		holding := make(chan struct{})
		release := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- a.Update(ctx, func(tx iga.Tx) error {
				close(holding)
				<-release // keep the write lock, as a long `iga apply` would
				return tx.PutIdentity(ctx, fullIdentity("svc-a"))
			})
		}()
		<-holding
		time.AfterFunc(300*time.Millisecond, func() { close(release) })
		start := time.Now()
		err := b.RecordDecision(ctx, iga.AuditEvent{Time: time.Now(), Type: "decision", Identity: "svc-a", Allow: true})
		require.NoError(t, err, "a decision recorded while another store held the write lock")
		assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "the decision did not wait for the lock")
		require.NoError(t, <-done)
		got, err := b.Identity(ctx, "svc-a")
		require.NoError(t, err)
		assert.False(t, got.LastUsed.IsZero(), "LastUsed: got zero, want the decision's time")
	})
}
