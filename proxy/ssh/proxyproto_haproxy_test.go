package ssh

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/proxy"
	"github.com/sallyport/sallyport/recorder"
)

// Behind the balancer: ssh binds 127.0.0.2 (-b) and dials HAProxy on
// 127.0.0.1, which reaches the bastion from 127.0.0.4, the one trusted peer.
const (
	ppClient   = "127.0.0.2"
	ppBalancer = "127.0.0.4"
	ppStranger = "127.0.0.3" // a peer that is no balancer
)

// startBalancer runs HAProxy (Debian package haproxy) on 127.0.0.1 in
// front of backend, reaching it from ppBalancer and sending the PROXY
// protocol v2, and returns its port.
func startBalancer(t *testing.T, backend string) string {
	t.Helper()
	port, _ := measure.HAProxy(t, "", backend+" send-proxy-v2 source "+ppBalancer)
	return strconv.Itoa(port)
}

// proxiedHarness is a bastion trusting ppBalancer's PROXY headers behind
// HAProxy, with identities entitled from the client's address only and
// from the balancer's only; it returns HAProxy's port.
func proxiedHarness(t *testing.T) (*harness, string) {
	h := newHarness(t, harnessOptions{tune: func(s *Server) {
		s.ProxyProtocol = &proxy.ProxyProtocol{Trusted: []netip.Prefix{netip.MustParsePrefix(ppBalancer + "/32")}}
	}})
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, h.reg.Store.Update(ctx, func(tx iga.Tx) error {
		for id, from := range map[string]string{"svc-from-client": ppClient, "svc-from-balancer": ppBalancer} {
			cert := iga.Certification{Decision: iga.DecisionCertify, By: "alice@example.com", At: now.Add(-time.Hour), Until: now.Add(24 * time.Hour)}
			err := tx.PutIdentity(ctx, iga.Identity{ID: id, Kind: iga.KindServiceAccount, State: iga.StateActive, Owner: "alice@example.com",
				Credentials:   iga.Credentials{SSHKeys: []iga.SSHKey{{Key: h.newKey(id)}}},
				Entitlements:  []iga.Entitlement{{Target: "web", Login: h.sshd.User, Actions: []iga.Action{iga.ActionExec}, From: []string{from + "/32"}}},
				Certification: &cert})
			if err != nil {
				return err
			}
			if err := tx.AddCertification(ctx, id, cert); err != nil {
				return err
			}
		}
		return nil
	}))
	port := startBalancer(t, h.addr)
	known, err := os.ReadFile(h.known)
	require.NoError(t, err)
	line := strings.Replace(string(known), "]:"+h.port+" ", "]:"+port+" ", 1)
	require.NoError(t, os.WriteFile(h.known, append(known, "\n"+line...), 0o600))
	return h, port
}

// sshVia runs ssh as identity through HAProxy's port from ppClient.
func (h *harness) sshVia(t *testing.T, port, identity string, cmd ...string) result {
	t.Helper()
	a := append(h.opts(identity, identity+"@web"), "-b", ppClient, "-p", port, "127.0.0.1")
	return run(t, exec.CommandContext(testCtx(t, 30*time.Second), "ssh", append(a, cmd...)...), "")
}

func TestSSHBehindHAProxy(t *testing.T) {
	h, port := proxiedHarness(t)
	t.Run("the session and its audit carry the client's address", func(t *testing.T) {
		r := h.sshVia(t, port, "svc-from-client", "echo", "through-the-balancer")
		require.Equal(t, 0, r.code, "ssh through haproxy: %s", r.stderr)
		assert.Equal(t, "through-the-balancer\n", r.stdout)
		ev := lastSSHDecision(t, h, "svc-from-client")
		assert.True(t, ev.Allow, "decision: %+v", ev)
		assert.Equal(t, ppClient, ev.Source, "audit event source")
		assert.Equal(t, ppClient, sessionSource(t, h, "svc-from-client"), "session.json source")
	})
	t.Run("from: the balancer's address does not stand for the client", func(t *testing.T) {
		r := h.sshVia(t, port, "svc-from-balancer", "echo", "nope")
		assert.NotEqual(t, 0, r.code, "ssh got in: %s", r.stdout)
		assert.NotContains(t, r.stdout, "nope")
		ev := lastSSHDecision(t, h, "svc-from-balancer")
		assert.False(t, ev.Allow)
		assert.Equal(t, ppClient, ev.Source)
		require.NotEmpty(t, ev.Reasons)
		assert.Equal(t, iga.ReasonSourceNotAllowed, ev.Reasons[0].Code)
	})
}

func TestSSHHeadersOnlyFromTheBalancer(t *testing.T) {
	h, _ := proxiedHarness(t)
	cfg := &gossh.ClientConfig{User: "svc-from-client@web", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
	for _, tc := range []struct {
		name, from string
		header     string
	}{
		{"a stranger's forged header", ppStranger, "PROXY TCP4 " + ppClient + " 127.0.0.1 40000 22\r\n"},
		{"the balancer without a header", ppBalancer, ""},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}, Timeout: 5 * time.Second}
			nc, err := d.Dial("tcp", h.addr)
			require.NoError(t, err)
			defer nc.Close()
			require.NoError(t, nc.SetDeadline(time.Now().Add(10*time.Second)))
			_, err = io.WriteString(nc, tc.header)
			require.NoError(t, err)
			_, _, _, err = gossh.NewClientConn(nc, h.addr, cfg)
			require.Error(t, err, "the SSH handshake went through")
			var ne net.Error
			assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the bastion kept the connection open: %v", err)
		})
	}
	events, err := h.reg.Store.Audit(context.Background(), iga.AuditFilter{})
	require.NoError(t, err)
	for _, ev := range events {
		assert.NotEqual(t, "decision", ev.Type, "a refused connection reached admission: %+v", ev)
		assert.NotEqual(t, ppClient, ev.Source, "a forged address reached the audit trail: %+v", ev)
	}
}

// lastSSHDecision is identity's latest admission decision.
func lastSSHDecision(t *testing.T, h *harness, identity string) iga.AuditEvent {
	t.Helper()
	evs, err := h.reg.Store.Audit(context.Background(), iga.AuditFilter{Identity: identity, Type: "decision"})
	require.NoError(t, err)
	require.NotEmpty(t, evs, "no decision audited for %s", identity)
	return evs[len(evs)-1]
}

// sessionSource is the IP session.json of identity's recording names.
func sessionSource(t *testing.T, h *harness, identity string) string {
	t.Helper()
	ctx := context.Background()
	var meta recorder.SessionMeta
	require.Eventually(t, func() bool {
		keys, err := h.store.List(ctx, "")
		require.NoError(t, err)
		for _, k := range keys {
			if !strings.HasSuffix(k, "/session.json") {
				continue
			}
			r, err := h.store.Get(ctx, k)
			require.NoError(t, err)
			err = json.NewDecoder(r).Decode(&meta)
			r.Close()
			if err == nil && meta.Identity == identity {
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "no session.json for %s", identity)
	ap, err := netip.ParseAddrPort(meta.Source)
	require.NoError(t, err, "session.json source %q", meta.Source)
	return ap.Addr().String()
}
