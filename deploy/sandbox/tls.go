package sandbox

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
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tlsValidity is how long the sandbox's certificates are valid: a sandbox
// lives for one test run or one demo.
const tlsValidity = 48 * time.Hour

// TLSFiles is a throwaway certificate authority and a server certificate it
// signed for 127.0.0.1 and localhost, as PEM files: servers started with
// their Settings serve TLS that verifies against CAFile. The CA's private key
// is never written; each NewTLSFiles makes a new CA, so the CAFile of one
// does not verify the server of another.
type TLSFiles struct {
	// Dir holds the files; RemoveAll(Dir) removes them.
	Dir string
	// CAFile is the CA certificate, for clients' root pools.
	CAFile string
	// CertFile and KeyFile are the server's certificate and key.
	CertFile, KeyFile string
}

// NewTLSFiles makes a CA and a server certificate in a new sandbox dir
// under base (zero: as the servers' BaseDir). When root, the files are
// given to PostgreSQL's system user, which refuses a key it does not own.
func NewTLSFiles(base string) (*TLSFiles, error) {
	dir, err := makeBaseDir(base, sandboxPrefix+"tls-*")
	if err != nil {
		return nil, err
	}
	f := &TLSFiles{Dir: dir, CAFile: filepath.Join(dir, "ca.crt"),
		CertFile: filepath.Join(dir, "server.crt"), KeyFile: filepath.Join(dir, "server.key")}
	if err := f.write(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sandbox tls files: %w", err)
	}
	return f, nil
}

func (f *TLSFiles) write() error {
	caKey, caCert, caDER, err := newCA()
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := certTemplate("sallyport sandbox server")
	tmpl.DNSNames = []string{"localhost"}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	err = errors.Join(writePEM(f.CAFile, "CERTIFICATE", caDER, 0o644),
		writePEM(f.CertFile, "CERTIFICATE", der, 0o644),
		writePEM(f.KeyFile, "PRIVATE KEY", keyDER, 0o600))
	if err != nil || !isRoot() {
		return err
	}
	uid, gid, err := systemUser(postgresSystemUser)
	if err != nil {
		return nil // no postgres user: only MariaDB (run as root) can use them
	}
	return chownTree(f.Dir, uid, gid)
}

func newCA() (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := certTemplate("sallyport sandbox CA")
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, der, err
}

func certTemplate(cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	return &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(tlsValidity),
		KeyUsage: x509.KeyUsageDigitalSignature}
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// ClientConfig is a TLS client config that trusts only the sandbox CA and
// expects serverName (e.g. "127.0.0.1" or "localhost").
func (f *TLSFiles) ClientConfig(serverName string) (*tls.Config, error) {
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", f.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}

// PostgresSettings turn TLS on in a PostgreSQL sandbox (PostgresOptions.Settings).
func (f *TLSFiles) PostgresSettings() map[string]string {
	return map[string]string{"ssl": "on", "ssl_cert_file": f.CertFile, "ssl_key_file": f.KeyFile}
}

// MariaDBSettings turn TLS on in a MariaDB sandbox (MariaDBOptions.Settings).
func (f *TLSFiles) MariaDBSettings() map[string]string {
	return map[string]string{"ssl-ca": f.CAFile, "ssl-cert": f.CertFile, "ssl-key": f.KeyFile}
}

// TLSFilesT makes TLS files for the test and removes them in t.Cleanup.
func TLSFilesT(t testing.TB) *TLSFiles {
	t.Helper()
	f, err := NewTLSFiles("")
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(f.Dir) })
	return f
}

// PostgresTLST starts a PostgreSQL sandbox serving TLS with a certificate
// of a fresh CA, and a target in it, for the test; Need's policy applies.
func PostgresTLST(t testing.TB) (*PostgresTarget, *TLSFiles) {
	t.Helper()
	f := TLSFilesT(t)
	pg := PostgresT(t, PostgresOptions{Settings: f.PostgresSettings()})
	target, err := pg.NewTarget(context.Background(), PostgresTargetOptions{})
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	return target, f
}

// MariaDBTLST starts a MariaDB sandbox serving TLS with a certificate of a
// fresh CA, and a target in it, for the test; Need's policy applies.
func MariaDBTLST(t testing.TB) (*MariaDBTarget, *TLSFiles) {
	t.Helper()
	f := TLSFilesT(t)
	m := MariaDBT(t, MariaDBOptions{Settings: f.MariaDBSettings()})
	target, err := m.NewTarget(context.Background(), MariaDBTargetOptions{})
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	return target, f
}
