package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
)

// testTimeout bounds one conformance case, generous for a busy CI machine.
const testTimeout = 60 * time.Second

// backend makes empty registries of one driver: each call of fresh returns
// the Config of a new, empty database.
type backend struct {
	name  string
	start func(t *testing.T) (fresh func(t *testing.T) Config)
}

var backends = []backend{
	{name: DriverSQLite, start: startSQLite},
	{name: DriverPostgres, start: startPostgres},
}

func startSQLite(*testing.T) func(t *testing.T) Config {
	return func(t *testing.T) Config {
		return Config{Driver: DriverSQLite, Path: filepath.Join(t.TempDir(), "registry.db")}
	}
}

// startPostgres starts one sandbox server for every case of the run and
// gives each case its own database.
func startPostgres(t *testing.T) func(t *testing.T) Config {
	pg := sandbox.PostgresT(t)
	var n atomic.Int64
	return func(t *testing.T) Config {
		name := fmt.Sprintf("registry_%d", n.Add(1))
		require.NoError(t, pg.CreateDatabase(ctxT(t), name), "create database %s", name)
		return Config{Driver: DriverPostgres, DSN: pg.DSN(name)}
	}
}

// TestStore runs the conformance suite against every driver.
func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fresh := b.start(t)
			for _, c := range conformance {
				t.Run(c.name, func(t *testing.T) { c.run(t, fresh) })
			}
		})
	}
}

// ctxT is a context that ends with the test or after testTimeout.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// openT opens c and closes the store when the test ends.
func openT(t testing.TB, c Config) *Store {
	t.Helper()
	s, err := Open(ctxT(t), c)
	require.NoError(t, err, "open %s registry", c.Driver)
	t.Cleanup(func() { require.NoError(t, s.Close(), "close store") })
	return s
}

// update runs fn in one transaction and fails the test on error.
func update(t testing.TB, s iga.Store, fn func(ctx context.Context, tx iga.Tx) error) {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, s.Update(ctx, func(tx iga.Tx) error { return fn(ctx, tx) }))
}

// putIdentities stores ids in one transaction.
func putIdentities(t testing.TB, s iga.Store, ids ...iga.Identity) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx iga.Tx) error {
		for _, id := range ids {
			if err := tx.PutIdentity(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
}
