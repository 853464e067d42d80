package tlscert

import (
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
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// generatedValidity is how long a generated certificate is valid. Clients
// that verify it pin this very certificate (sslrootcert, --ssl-ca), so it
// lives long: a new one means handing every client the new file.
const generatedValidity = 5 * 365 * 24 * time.Hour

// commonName is the generated certificate's subject; clients verify its
// subject alternative names, not this.
const commonName = "sallyport database listener"

// Change is what LoadOrCreate did instead of loading the certificate on
// disk as it was.
type Change struct {
	// Replaced is the certificate made anew; nil when there was none.
	Replaced *x509.Certificate
	// Missing are the names Replaced did not carry.
	Missing Names
	// Expired is set when Replaced was no longer valid.
	Expired bool
}

// LoadOrCreate returns the self-signed certificate in certFile and keyFile
// (PEM) when it names every one of names and has not expired; otherwise it
// makes a new ECDSA P-256 pair for names, writes it there (the key mode
// 0600) and says why in the Change, which is nil when the pair on disk was
// used. A certificate or key that exists but cannot be read is an error, not
// replaced.
func LoadOrCreate(certFile, keyFile string, names Names, now time.Time) (tls.Certificate, *Change, error) {
	change := &Change{}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	switch {
	case err == nil:
		leaf := cert.Leaf
		change.Replaced, change.Missing = leaf, names.missingFrom(namesOf(leaf))
		change.Expired = now.After(leaf.NotAfter)
		if change.Missing.Empty() && !change.Expired {
			return cert, nil, nil
		}
	case !notExist(certFile):
		return tls.Certificate{}, nil, fmt.Errorf("load listener certificate %s: %w", certFile, err)
	}
	certPEM, keyPEM, err := selfSigned(names, now)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := writePair(certFile, keyFile, certPEM, keyPEM); err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, change, err
}

// notExist reports whether path is known not to exist.
func notExist(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// namesOf reads a certificate's subject alternative names.
func namesOf(c *x509.Certificate) Names {
	var n Names
	for _, d := range c.DNSNames {
		n.add(d)
	}
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			n.IPs = append(n.IPs, a.Unmap())
		}
	}
	n.sort()
	return n
}

// writePair writes the key, then the certificate, each through a rename so
// that a reader never sees half a file.
func writePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return fmt.Errorf("create certificate dir: %w", err)
	}
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write listener key: %w", err)
	}
	if err := writeFile(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("write listener certificate: %w", err)
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	// WriteFile keeps the mode of a leftover temp file; the key's must be 0600.
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// selfSigned makes a self-signed server certificate for names.
func selfSigned(names Names, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: commonName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(generatedValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    names.DNS,
	}
	for _, ip := range names.IPs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode certificate key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// PEM encodes the certificates of cert's chain, leaf first, as a client's
// root file (sslrootcert, --ssl-ca) takes them.
func PEM(cert tls.Certificate) []byte {
	var out []byte
	for _, der := range cert.Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}
