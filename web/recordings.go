package web

import (
	"context"
	"crypto/ed25519"
	"io"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// StoreRecordings reads recordings from a recorder store and verifies them
// with the bastion's recording key. It implements Recordings.
type StoreRecordings struct {
	Store recorder.Store
	// Key verifies manifests. Nil: every recording verifies as tampered
	// (nothing can vouch for it).
	Key ed25519.PublicKey
}

// Verify implements Recordings.
func (s StoreRecordings) Verify(ctx context.Context, id string, started time.Time) (recorder.Report, error) {
	return recorder.Verify(ctx, recorder.SessionSource(s.Store, id, started), s.Key)
}

// Cast implements Recordings.
func (s StoreRecordings) Cast(ctx context.Context, id string, started time.Time, w io.Writer) error {
	return recorder.ExportCast(ctx, recorder.SessionSource(s.Store, id, started), w, 0)
}

// Events implements Recordings.
func (s StoreRecordings) Events(ctx context.Context, id string, started time.Time, w io.Writer) error {
	return recorder.Replay(ctx, recorder.SessionSource(s.Store, id, started), w, recorder.ReplayOptions{Format: recorder.FormatJSON})
}

// Exec implements ExecRecordings.
func (s StoreRecordings) Exec(ctx context.Context, id string, started time.Time, budget int64) (recorder.ExecView, error) {
	return recorder.ReadExec(ctx, recorder.SessionSource(s.Store, id, started), budget)
}

// Stream implements ExecRecordings.
func (s StoreRecordings) Stream(ctx context.Context, id string, started time.Time, name string, w io.Writer) error {
	return recorder.ExportStream(ctx, recorder.SessionSource(s.Store, id, started), w, name)
}
