package measure

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/syncbuf"
)

// HAProxy runs HAProxy (Debian package haproxy) in TCP mode on a free
// loopback port in front of the server line given ("ADDR [options]", e.g.
// "127.0.0.1:5432 send-proxy-v2 source 127.0.0.4"), with global as its
// global section (empty: HAProxy's defaults), until the test ends. It
// returns HAProxy's port and process id. The benchmarks use it as the C
// peer, the PROXY protocol tests as the balancer.
func HAProxy(tb testing.TB, global, server string) (port, pid int) {
	tb.Helper()
	bin := ServerBinary(tb, "haproxy", "haproxy")
	port = FreePort(tb)
	cfg := fmt.Sprintf("global\n%s\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n"+
		"listen front\n  bind 127.0.0.1:%d\n  server back %s\n", global, port, server)
	path := filepath.Join(tb.TempDir(), "haproxy.cfg")
	require.NoError(tb, os.WriteFile(path, []byte(cfg), 0o600))
	out, err := exec.Command(bin, "-c", "-q", "-f", path).CombinedOutput()
	require.NoError(tb, err, "haproxy config: %s", out)
	cmd := exec.Command(bin, "-db", "-f", path) // -db: foreground, so Kill ends it
	var log syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	WaitListening(tb, port, "haproxy", &log)
	return port, cmd.Process.Pid
}
