package proxy

import (
	"context"
	"log/slog"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// Refusals is the optional ability of a Gate to audit refusals that no
// admission decision made: failed logins, and requests a proxy turns down
// on its own (iga.Registry has it). A Gate without it leaves them to the
// proxy's log.
type Refusals interface {
	RecordRefusal(ctx context.Context, f iga.Refusal) error
}

// refusalTimeout bounds writing one refusal to the audit trail: the client
// that caused it waits for nothing, but a stuck store must not pile up
// goroutines.
const refusalTimeout = 5 * time.Second

// RecordRefusal audits f through g when g can, logging at WARN when the
// audit trail cannot be written. It never fails the caller: the refusal
// itself has been made already.
func RecordRefusal(g Gate, log *slog.Logger, f iga.Refusal) {
	r, ok := g.(Refusals)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), refusalTimeout)
	defer cancel()
	if err := r.RecordRefusal(ctx, f); err != nil && log != nil {
		log.Warn("audit refusal", "protocol", f.Protocol, "identity", f.Identity, "source", f.Source, "err", err)
	}
}
