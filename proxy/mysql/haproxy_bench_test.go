package mysql_test

import (
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/measure"
)

// startHAProxy runs HAProxy (Debian package haproxy) as a plain TCP relay
// to addr and returns its port: the production C peer of the benchmarks.
// It relays bytes and parses nothing, so what it reaches is the most any
// proxy in front of the server can reach on this machine. One thread,
// like PgBouncer: on two cores its default of one per core was slower
// (0.63–0.65× direct against 0.64–0.73× for the point lookup). It
// returns HAProxy's port and a func giving its CPU time so far.
func startHAProxy(b *testing.B, addr string) (int, func() time.Duration) {
	b.Helper()
	port, pid := measure.HAProxy(b, "  nbthread 1", addr)
	return port, func() time.Duration { return measure.ProcessCPU(b, pid) }
}
