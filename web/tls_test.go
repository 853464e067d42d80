package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/web"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "console"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with certificate and key files the console speaks HTTPS, its
// cookies are Secure and browsers are told to stay on HTTPS.
func TestTLS(t *testing.T) {
	c := newConsole(t)
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	ws := &web.Server{OIDC: c.ws.OIDC, Directory: c.ws.Directory, Sessions: c.ws.Sessions, TLSCertFile: certFile, TLSKeyFile: keyFile}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- ws.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ws.Shutdown(context.Background())
		assert.True(t, errors.Is(<-served, web.ErrServerClosed))
	})
	jar, _ := cookiejar.New(nil)
	var setCookies []string
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			setCookies = append(setCookies, req.Response.Header.Values("Set-Cookie")...)
			return nil
		}}
	c.op.SignInAs(auditor, true)
	resp, err := b.Get("https://" + ln.Addr().String() + "/api/v1/me")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Strict-Transport-Security"), "max-age=")

	resp, err = b.Get("https://" + ln.Addr().String() + "/sessions")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var session string
	for _, sc := range setCookies {
		if strings.HasPrefix(sc, "sallyport_session=") {
			session = sc
		}
	}
	require.NotEmpty(t, session, "the callback sets the session cookie")
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax"} {
		assert.Contains(t, session, attr)
	}
	assert.NotContains(t, session, c.op.Secret)
}

// TestTLSMissingCertificate: a missing certificate stops Serve with an
// error that names the setting.
func TestTLSMissingCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ws := &web.Server{TLSCertFile: filepath.Join(t.TempDir(), "missing.pem"), TLSKeyFile: "missing.key"}
	err = ws.Serve(context.Background(), ln)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "web.tls_cert_file")
	assert.Contains(t, err.Error(), "missing.pem")
}
