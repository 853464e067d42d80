package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	be "encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy/tlscert"
)

// operatorCert writes a certificate and key for hosts, as an operator
// would hand every replica, and returns their paths.
func operatorCert(t *testing.T, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "db.crt"), filepath.Join(dir, "db.key")
	_, _, err := tlscert.LoadOrCreate(certFile, keyFile, tlscert.ParseNames(hosts...), time.Now())
	require.NoError(t, err)
	return certFile, keyFile
}

// TestPostgresListenerServesOperatorCertificate: with postgres.tls_cert_file
// and tls_key_file set, a client that verifies the server certificate
// (sslmode=verify-full) against the operator's CA gets through the TLS
// handshake, whichever replica it lands on, as they all serve that file.
func TestPostgresListenerServesOperatorCertificate(t *testing.T) {
	certFile, keyFile := operatorCert(t, "bastion.example.test")
	dir := t.TempDir()
	port := freePort(t)
	cfgText := fmt.Sprintf(`data_dir: %s
postgres: {listen: "127.0.0.1:%d", tls_cert_file: %q, tls_key_file: %q}
web: {listen: "127.0.0.1:0"}
targets:
  - {name: analytics, kind: postgres, address: "127.0.0.1:1", admin_dsn_env: UNSET_ADMIN_DSN}
`, dir, port, certFile, keyFile)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sallyport.yaml"), []byte(cfgText), 0o600))
	cfg, err := LoadConfig(filepath.Join(dir, "sallyport.yaml"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ap, err := openApp(ctx, cfg, log)
	require.NoError(t, err)
	t.Cleanup(func() { ap.Close() })
	d, err := newServeDeps(ctx, ap, log)
	require.NoError(t, err)
	t.Cleanup(func() { d.webLn.Close() })
	comp, err := d.postgresComponent()
	require.NoError(t, err)
	go comp.run(ctx)
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		assert.NoError(t, comp.shutdown(sctx))
	})

	pem, err := os.ReadFile(certFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pem))
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	// SSLRequest: length 8, code 80877103; the server answers 'S'.
	req := be.BigEndian.AppendUint32(be.BigEndian.AppendUint32(nil, 8), 80877103)
	_, err = conn.Write(req)
	require.NoError(t, err)
	answer := make([]byte, 1)
	_, err = io.ReadFull(conn, answer)
	require.NoError(t, err)
	require.Equal(t, "S", string(answer), "the listener accepts TLS")
	tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: "bastion.example.test", MinVersion: tls.VersionTLS12})
	require.NoError(t, tc.Handshake(), "verify-full against the operator's certificate")
	_, err = os.Stat(filepath.Join(dir, "keys", "postgres_tls.crt"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no certificate is generated when the config names one")
}

// TestListenerCertificateRefuses: a configured certificate is used as it
// is or serve does not start; it is never replaced by a generated one.
func TestListenerCertificateRefuses(t *testing.T) {
	certFile, keyFile := operatorCert(t, "bastion.example.test")
	loose := filepath.Join(t.TempDir(), "loose.key")
	data, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(loose, data, 0o644))
	missing := filepath.Join(t.TempDir(), "missing.crt")

	tests := []struct {
		name      string
		l         DBListenerConfig
		says      string
		notExists string
	}{
		{"key readable by others", DBListenerConfig{TLSCertFile: certFile, TLSKeyFile: loose}, "mysql.tls_key_file: key " + loose + " is readable by others", ""},
		{"certificate missing", DBListenerConfig{TLSCertFile: missing, TLSKeyFile: keyFile}, "mysql.tls_cert_file", missing},
		{"not a pair", DBListenerConfig{TLSCertFile: certFile, TLSKeyFile: mismatchedKey(t)}, "private key does not match public key", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gen := t.TempDir()
			_, err := listenerCertificate("mysql", tc.l, filepath.Join(gen, "mysql_tls.crt"), filepath.Join(gen, "mysql_tls.key"), slog.New(slog.DiscardHandler))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
			entries, _ := os.ReadDir(gen)
			assert.Empty(t, entries, "nothing generated in place of the configured pair")
			if tc.notExists != "" {
				assert.NoFileExists(t, tc.notExists)
			}
		})
	}

	for _, block := range []string{"postgres", "mysql"} {
		_, err := ParseConfig("sallyport.yaml", fmt.Appendf(nil, "%s: {tls_cert_file: /etc/db.crt}\n", block))
		require.Error(t, err, "%s.tls_cert_file alone", block)
		assert.Contains(t, err.Error(), block+".tls_cert_file and "+block+".tls_key_file: set both or neither")
	}
}

// mismatchedKey is another certificate's key.
func mismatchedKey(t *testing.T) string {
	_, key := operatorCert(t, "other.example.test")
	return key
}
