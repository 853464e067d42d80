package measure

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/recorder"
)

// recorderShutdownTimeout bounds a benchmark recorder's last flush and
// upload when the benchmark ends: a scale run leaves hundreds of spools.
const recorderShutdownTimeout = 2 * time.Minute

// DeployedRecorder starts a recorder as deployed, at the default flush
// interval (1 s), storing to a file store in a temporary directory, and
// shuts it down when the test ends. The database benchmarks use it in
// place of their tests' recorder, which flushes every 100 ms to keep tests
// quick: a chunk per session per tick is a cost of its own, and hundreds
// of spools fsynced ten times a second would be the scale runs' bottleneck.
func DeployedRecorder(tb testing.TB, logger *slog.Logger) (*recorder.Recorder, recorder.Store) {
	tb.Helper()
	dir := tb.TempDir()
	store, err := recorder.NewFileStore(filepath.Join(dir, "store"))
	require.NoError(tb, err)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	rec := &recorder.Recorder{Config: recorder.Config{DataDir: dir, FailClosed: true},
		Store: store, Key: key, Logger: logger, Metrics: recorder.NewMetrics()}
	require.NoError(tb, rec.Start(context.Background()))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), recorderShutdownTimeout)
		defer cancel()
		rec.Shutdown(ctx)
	})
	return rec, store
}
