package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
)

// Modes of a database target's tls block.
const (
	targetTLSDisable    = "disable"
	targetTLSRequire    = "require"
	targetTLSVerifyFull = "verify-full"
)

// TargetTLSConfig is how the bastion secures its connections to a
// database target: the admin connection and every session's login alike
// (TLS settings in the admin DSN are overridden by it).
type TargetTLSConfig struct {
	// Mode is disable (plaintext), require (encrypted, the certificate not
	// checked: no defence against an impostor) or verify-full (encrypted;
	// the certificate chains to CAFile, or the system's roots, and names
	// ServerName). Empty: verify-full, except for a target on a loopback
	// address (127.0.0.0/8, ::1, localhost), whose traffic never leaves the
	// machine: disable.
	Mode string `yaml:"mode"`
	// CAFile is a PEM file of the CA certificates that sign the target's
	// certificate (verify-full only). Empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name (or IP address) the target's certificate must
	// carry (verify-full only). Empty: the host of the target's address.
	ServerName string `yaml:"server_name"`
}

// checkShape reports a tls block that cannot work, so loading the config
// refuses it (files are read only when serve starts): an unknown mode,
// verify-full settings under another mode, or a tls block on an ssh
// target, whose connection is already secured by SSH.
func (c TargetTLSConfig) checkShape(kind string) error {
	if c == (TargetTLSConfig{}) {
		return nil
	}
	if kind == "ssh" {
		return fmt.Errorf("tls: ssh targets take no tls block (the SSH connection is verified by host_key or host_ca)")
	}
	switch c.Mode {
	case "", targetTLSDisable, targetTLSRequire, targetTLSVerifyFull:
	default:
		return fmt.Errorf("tls.mode %q: want disable, require or verify-full", c.Mode)
	}
	if c.Mode != "" && c.Mode != targetTLSVerifyFull && (c.CAFile != "" || c.ServerName != "") {
		return fmt.Errorf("tls: ca_file and server_name need mode verify-full, not %s", c.Mode)
	}
	return nil
}

// clientConfig is the TLS config of connections to a target whose address
// has host; nil means plaintext.
func (c TargetTLSConfig) clientConfig(host string) (*tls.Config, error) {
	mode := c.Mode
	if mode == "" {
		mode = targetTLSVerifyFull
		if isLoopback(host) {
			mode = targetTLSDisable
		}
	}
	if c.CAFile != "" && mode != targetTLSVerifyFull {
		return nil, fmt.Errorf("tls.ca_file is set but tls.mode is %s: set mode verify-full, or drop ca_file", mode)
	}
	if c.ServerName != "" && mode != targetTLSVerifyFull {
		return nil, fmt.Errorf("tls.server_name is set but tls.mode is %s: set mode verify-full, or drop server_name", mode)
	}
	switch mode {
	case targetTLSDisable:
		return nil, nil
	case targetTLSRequire:
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil
	case targetTLSVerifyFull:
		return c.verifying(host)
	}
	return nil, fmt.Errorf("tls.mode %q: want disable, require or verify-full", c.Mode)
}

func (c TargetTLSConfig) verifying(host string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.ServerName != "" {
		cfg.ServerName = c.ServerName
	}
	if c.CAFile == "" {
		return cfg, nil // the system's roots
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_file: %v", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", c.CAFile)
	}
	return cfg, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
