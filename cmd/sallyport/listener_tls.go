package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sallyport/sallyport/proxy/tlscert"
)

// dbListenerCertificate is the certificate the postgres or mysql listener
// presents (block names which): what serve serves and `ca export --type
// postgres-tls|mysql-tls` prints, so clients pin the very certificate they
// are shown.
func dbListenerCertificate(cfg *Config, block string, log *slog.Logger) (tls.Certificate, error) {
	l := cfg.Postgres
	if block == "mysql" {
		l = cfg.MySQL
	}
	return listenerCertificate(block, l, cfg.Path("keys/"+block+"_tls.crt"), cfg.Path("keys/"+block+"_tls.key"), log)
}

// listenerCertificate is a database listener's TLS certificate: the
// operator's pair named by block.tls_cert_file and block.tls_key_file (the
// same files on every replica, for clients that verify the certificate),
// or else a self-signed pair kept under data_dir at generatedCert and
// generatedKey for the names clients reach the listener by.
func listenerCertificate(block string, l DBListenerConfig, generatedCert, generatedKey string, log *slog.Logger) (tls.Certificate, error) {
	if l.TLSCertFile == "" {
		return generatedCertificate(block, l, generatedCert, generatedKey, log)
	}
	// A key others can read is refused, as sshd and PostgreSQL refuse one:
	// whoever reads it can impersonate the bastion to every verifying client.
	fi, err := os.Stat(l.TLSKeyFile)
	if err != nil {
		return tls.Certificate{}, configErrorf("%s.tls_key_file: %v", block, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return tls.Certificate{}, configErrorf("%s.tls_key_file: key %s is readable by others (mode %04o): run chmod 600 %s",
			block, l.TLSKeyFile, fi.Mode().Perm(), l.TLSKeyFile)
	}
	cert, err := tls.LoadX509KeyPair(l.TLSCertFile, l.TLSKeyFile)
	if err != nil {
		return tls.Certificate{}, configErrorf("%s.tls_cert_file and %s.tls_key_file: %v", block, block, err)
	}
	return cert, nil
}

// generatedCertificate loads the generated pair, or makes it anew when it
// is missing, expired or no longer names every host of block.listen and
// block.tls_hosts: a certificate that lacks a name clients use fails their
// verify-full.
func generatedCertificate(block string, l DBListenerConfig, certFile, keyFile string, log *slog.Logger) (tls.Certificate, error) {
	names, err := tlscert.Machine{}.ListenerNames(l.Listen, l.TLSHosts)
	if err != nil {
		return tls.Certificate{}, configErrorf("%s.listen: %v", block, err)
	}
	cert, change, err := tlscert.LoadOrCreate(certFile, keyFile, names, time.Now())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s listener certificate: %w", block, err)
	}
	switch {
	case change == nil:
	case change.Replaced == nil:
		log.Info("generated the "+block+" listener certificate", "file", certFile, "names", names.String())
	default:
		log.Info("replaced the "+block+" listener certificate: clients that pin it need the new one (sallyport ca export --type "+block+"-tls)",
			"file", certFile, "missing", change.Missing.String(), "expired", change.Expired, "names", names.String())
	}
	return cert, nil
}
