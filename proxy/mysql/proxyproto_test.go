package mysql_test

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/proxy/internal/rectest"
)

// The go-sql-driver client behind a balancer that the test plays: it dials
// the bastion from 127.0.0.1 (trusted) or 127.0.0.3 (not) and sends a
// PROXY header before the driver speaks.
func TestDriverBehindAProxyHeader(t *testing.T) {
	e := newEnv(t, envOptions{proxyProt: &proxy.ProxyProtocol{
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	tests := []struct {
		name, from string
		header     []byte
		want       string // the source admission and the recording see; empty: refused
	}{
		{"v1 from the balancer", "127.0.0.1", []byte("PROXY TCP4 203.0.113.9 127.0.0.1 40000 3306\r\n"), "203.0.113.9"},
		{"v2 from the balancer", "127.0.0.1", headerV2(netip.MustParseAddrPort("[2001:db8::9]:40000")), "2001:db8::9"},
		{"v2 forged by a stranger", "127.0.0.3", headerV2(netip.MustParseAddrPort("[2001:db8::66]:40000")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.driverConfig(okIdentity, e.token(okIdentity))
			cfg.Timeout = 5 * time.Second
			cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tt.from)}}
				c, err := d.DialContext(ctx, network, addr)
				if err == nil {
					_, err = c.Write(tt.header)
				}
				return c, err
			}
			var one int
			err := e.dbWith(t, cfg).QueryRow("SELECT 1").Scan(&one)
			if tt.want == "" {
				require.Error(t, err, "the driver got in with a forged header")
				evs, aerr := e.store.Audit(context.Background(), iga.AuditFilter{Type: "decision"})
				require.NoError(t, aerr)
				for _, ev := range evs {
					assert.NotEqual(t, "2001:db8::66", ev.Source, "a forged address reached admission")
				}
				return
			}
			require.NoError(t, err)
			evs, err := e.store.Audit(context.Background(), iga.AuditFilter{Identity: okIdentity, Type: "decision"})
			require.NoError(t, err)
			require.NotEmpty(t, evs)
			assert.Equal(t, tt.want, evs[len(evs)-1].Source, "audit event source")
			assert.Equal(t, tt.want, recordedSource(t, e, e.lastSession(t)), "session.json source")
		})
	}
}

// headerV2 is a PROXY v2 header for TCP over IPv6 from src.
func headerV2(src netip.AddrPort) []byte {
	h := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x21, 0, 36)
	h = append(h, src.Addr().AsSlice()...)
	h = append(h, netip.IPv6Loopback().AsSlice()...)
	h = binary.BigEndian.AppendUint16(h, src.Port())
	return binary.BigEndian.AppendUint16(h, 3306)
}

// recordedSource is the source session.json of session id names.
func recordedSource(t *testing.T, e *env, id string) string {
	t.Helper()
	return rectest.StoredMeta(t, e.recStore, id).Source
}
