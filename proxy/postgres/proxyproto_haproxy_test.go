package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/internal/rectest"
	"github.com/sallyport/sallyport/proxy/internal/registrytest"
)

// Behind the balancer: clients connect from 127.0.0.1 (what the kernel
// gives a loopback client that binds nothing, like psql) to HAProxy, which
// reaches the bastion from 127.0.0.4, the one trusted peer.
const (
	clientAddr   = "127.0.0.1"
	balancerAddr = "127.0.0.4"
	strangerAddr = "127.0.0.3" // a peer that is no balancer
)

// startBalancer runs HAProxy (Debian package haproxy) on 127.0.0.1 in
// front of backend, reaching it from balancerAddr and sending the PROXY
// protocol v2, and returns its port.
func startBalancer(t *testing.T, backend string) int {
	t.Helper()
	port, _ := measure.HAProxy(t, "", backend+" send-proxy-v2 source "+balancerAddr)
	return port
}

// proxiedEnv is a bastion that trusts balancerAddr's PROXY headers, with
// HAProxy in front, and identities entitled from the client's address only
// and from the balancer's only.
func proxiedEnv(t *testing.T) (*env, int) {
	e := newEnv(t, envOptions{plaintext: true, proxyProt: &proxy.ProxyProtocol{
		Trusted: []netip.Prefix{netip.MustParsePrefix(balancerAddr + "/32")}}})
	fromClient := registrytest.Passing("svc-from-client", targetName)
	fromClient.Entitlements[0].From = []string{clientAddr + "/32"}
	fromBalancer := registrytest.Passing("svc-from-balancer", targetName)
	fromBalancer.Entitlements[0].From = []string{balancerAddr + "/32"}
	ctx := context.Background()
	require.NoError(t, e.store.Update(ctx, func(tx iga.Tx) error {
		for _, id := range []iga.Identity{fromClient, fromBalancer} {
			if err := tx.PutIdentity(ctx, id); err != nil {
				return err
			}
			if err := tx.AddCertification(ctx, id.ID, *id.Certification); err != nil {
				return err
			}
		}
		return nil
	}))
	return e, startBalancer(t, e.addr.String())
}

// psqlVia runs psql as identity against host:port and returns its output.
func (e *env) psqlVia(t *testing.T, host string, port int, identity, sql string) (string, error) {
	t.Helper()
	return e.psqlMode(t, host, port, identity, "require", sql)
}

// psqlMode is psqlVia with libpq's sslmode.
func (e *env) psqlMode(t *testing.T, host string, port int, identity, sslmode, sql string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, clientBinary(t, "psql"), "-X", "-At", "-c", sql)
	cmd.Env = append(e.pgEnv(identity, e.token(identity), sslmode), "PGHOST="+host, "PGPORT="+strconv.Itoa(port))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPsqlBehindHAProxy(t *testing.T) {
	e, port := proxiedEnv(t)
	t.Run("the session and its audit carry the client's address", func(t *testing.T) {
		out, err := e.psqlVia(t, "127.0.0.1", port, okIdentity, "SELECT inet_client_addr() IS NOT NULL")
		require.NoError(t, err, "psql through haproxy: %s", out)
		assert.Equal(t, "t\n", out)
		assert.Equal(t, clientAddr, recordedSource(t, e, e.lastSession(t)), "session.json source")
		assert.Equal(t, clientAddr, lastDecision(t, e, okIdentity).Source, "audit event source")
	})
	t.Run("a plain session is relayed whole on the pump", func(t *testing.T) {
		out, err := e.psqlMode(t, "127.0.0.1", port, okIdentity, "disable", "SELECT repeat('y', 2000) FROM generate_series(1, 3000)")
		require.NoError(t, err, "psql: %s", out)
		assert.Equal(t, strings.Repeat(strings.Repeat("y", 2000)+"\n", 3000), out)
		assert.Equal(t, clientAddr, recordedSource(t, e, e.lastSession(t)), "session.json source")
	})
	t.Run("from: allows the client's address", func(t *testing.T) {
		out, err := e.psqlVia(t, "127.0.0.1", port, "svc-from-client", "SELECT 1")
		require.NoError(t, err, "psql: %s", out)
		assert.Equal(t, "1\n", out)
	})
	t.Run("from: the balancer's address does not stand for the client", func(t *testing.T) {
		out, err := e.psqlVia(t, "127.0.0.1", port, "svc-from-balancer", "SELECT 1")
		require.Error(t, err, "psql got in: %s", out)
		assert.Contains(t, out, iga.ReasonSourceNotAllowed)
		ev := lastDecision(t, e, "svc-from-balancer")
		assert.False(t, ev.Allow)
		assert.Equal(t, clientAddr, ev.Source)
	})
}

func TestPsqlHeadersOnlyFromTheBalancer(t *testing.T) {
	e, _ := proxiedEnv(t)
	t.Run("a stranger's forged header is refused", func(t *testing.T) {
		c := dialFrom(t, strangerAddr, e.addr.String())
		forged := proxyV2(netip.MustParseAddrPort(clientAddr+":40000"), e.addr.AddrPort())
		_, err := c.Write(append(forged, sslRequest...))
		require.NoError(t, err)
		assertRefused(t, c, "a forged header")
		assert.Empty(t, decisionsSince(t, e), "a forged header reached admission")
	})
	t.Run("the balancer without a header is refused", func(t *testing.T) {
		c := dialFrom(t, balancerAddr, e.addr.String())
		start := time.Now()
		_, err := c.Write(sslRequest)
		require.NoError(t, err)
		assertRefused(t, c, "a headerless balancer connection")
		assert.Less(t, time.Since(start), 2*time.Second, "refused at the header deadline, want at once")
	})
	t.Run("a stranger without a header is served as itself", func(t *testing.T) {
		c := dialFrom(t, strangerAddr, e.addr.String())
		_, err := c.Write(sslRequest)
		require.NoError(t, err)
		b := make([]byte, 1)
		_, err = io.ReadFull(c, b)
		require.NoError(t, err)
		assert.Equal(t, "S", string(b), "SSLRequest answer")
	})
}

// assertRefused checks that the bastion closed c without a byte.
func assertRefused(t *testing.T, c net.Conn, what string) {
	t.Helper()
	b, err := io.ReadAll(c)
	assert.Empty(t, b, "the bastion answered %s", what)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the bastion kept %s open", what)
}

// sslRequest is PostgreSQL's SSLRequest, a client's first message.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// proxyV2 is a PROXY v2 header for TCP over IPv4 from src to dst.
func proxyV2(src, dst netip.AddrPort) []byte {
	h := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0, 12)
	h = append(h, src.Addr().AsSlice()...)
	h = append(h, dst.Addr().AsSlice()...)
	return append(h, byte(src.Port()>>8), byte(src.Port()), byte(dst.Port()>>8), byte(dst.Port()))
}

// dialFrom connects to addr from the local address from.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c
}

// recordedSource is the address session.json of session id names, the IP
// without its port.
func recordedSource(t *testing.T, e *env, id string) string {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, e.rec.WaitIdle(ctx))
	meta := rectest.StoredMeta(t, e.recStore, id)
	ap, err := netip.ParseAddrPort(meta.Source)
	require.NoError(t, err, "session.json source %q", meta.Source)
	return ap.Addr().String()
}

// lastDecision is identity's latest admission decision in the audit trail.
func lastDecision(t *testing.T, e *env, identity string) iga.AuditEvent {
	t.Helper()
	evs, err := e.store.Audit(context.Background(), iga.AuditFilter{Identity: identity, Type: "decision"})
	require.NoError(t, err)
	require.NotEmpty(t, evs, "no decision audited for %s", identity)
	return evs[len(evs)-1]
}

// decisionsSince lists the decisions audited so far (the env starts with
// none).
func decisionsSince(t *testing.T, e *env) []iga.AuditEvent {
	t.Helper()
	evs, err := e.store.Audit(context.Background(), iga.AuditFilter{Type: "decision"})
	require.NoError(t, err)
	return evs
}
