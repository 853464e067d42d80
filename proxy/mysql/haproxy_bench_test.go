package mysql_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/internal/syncbuf"
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
	return startHAProxyThreads(b, addr, 1)
}

// startHAProxyThreads is startHAProxy with nbthread threads (0: HAProxy's
// default, one per core); its CPU func counts every thread.
func startHAProxyThreads(b *testing.B, addr string, nbthread int) (int, func() time.Duration) {
	b.Helper()
	bin := measure.ServerBinary(b, "haproxy", "haproxy")
	port := measure.FreePort(b)
	dir := b.TempDir()
	global := "global\n"
	if nbthread > 0 {
		global += fmt.Sprintf("  nbthread %d\n", nbthread)
	}
	cfg := global + fmt.Sprintf(`defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
listen mariadb
  bind 127.0.0.1:%d
  server target %s
`, port, addr)
	path := filepath.Join(dir, "haproxy.cfg")
	require.NoError(b, os.WriteFile(path, []byte(cfg), 0o600))
	out, err := exec.Command(bin, "-c", "-q", "-f", path).CombinedOutput()
	require.NoError(b, err, "haproxy config: %s", out)
	cmd := exec.Command(bin, "-db", "-f", path) // -db: foreground, so Kill ends it
	var log syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	measure.WaitListening(b, port, "haproxy", &log)
	pid := cmd.Process.Pid
	return port, func() time.Duration { return measure.ProcessCPU(b, pid) }
}
