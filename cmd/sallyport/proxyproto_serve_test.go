package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
	"github.com/sallyport/sallyport/iga"
)

// TestServePostgresProxyProtocol: postgres.proxy_protocol in the config
// file reaches serve's listener: a v2 header from the trusted balancer
// (127.0.0.4) names the client the registry decides on, and the balancer's
// connection without one is refused.
func TestServePostgresProxyProtocol(t *testing.T) {
	target := sandbox.PostgresTargetT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ap, port := startPostgresComponent(ctx, t, target, "proxy_protocol: {trusted: [127.0.0.4/32]}")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	balancer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 4)}, Timeout: 5 * time.Second}

	token, err := ap.reg.IssueToken(ctx, "svc-report", "test", 5*time.Minute)
	require.NoError(t, err)
	pcfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://svc-report:%s@%s/analytics?sslmode=require", token, addr))
	require.NoError(t, err)
	header := []byte("PROXY TCP4 198.51.100.9 127.0.0.1 40000 6432\r\n")
	pcfg.DialFunc = func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := balancer.DialContext(ctx, network, a)
		if err == nil {
			_, err = c.Write(header)
		}
		return c, err
	}
	var conn *pgx.Conn
	require.Eventually(t, func() bool {
		conn, err = pgx.ConnectConfig(ctx, pcfg)
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "pgx behind a PROXY header through serve's listener")
	defer conn.Close(ctx)
	evs, err := ap.reg.Store.Audit(ctx, iga.AuditFilter{Identity: "svc-report", Type: "decision"})
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	assert.Equal(t, "198.51.100.9", evs[len(evs)-1].Source, "the decision names the header's client")

	c, err := balancer.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}) // SSLRequest, no header
	require.NoError(t, err)
	b, err := io.ReadAll(c) // closed (EOF, or reset: the bastion left bytes unread)
	assert.Empty(t, b, "the balancer's connection without a header got an answer")
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection stayed open: %v", err)
}
