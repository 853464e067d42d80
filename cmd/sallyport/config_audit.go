package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/sallyport/sallyport/auditexport"
)

// AuditConfig is the audit block: where the audit trail is exported
// (docs/audit.md).
type AuditConfig struct {
	// Export lists the sinks every audit event is delivered to, at least
	// once and in order. Empty: no export (the outbox is kept empty).
	Export []AuditSinkConfig `yaml:"export"`
}

// AuditSinkConfig is one export sink as the config writes it.
type AuditSinkConfig struct {
	Name   string `yaml:"name"`   // empty: type and destination
	Type   string `yaml:"type"`   // file, syslog or http
	Format string `yaml:"format"` // ocsf (empty) or native
	// file
	Path    string `yaml:"path"`     // relative to data_dir
	MaxSize *Size  `yaml:"max_size"` // nil: 100MiB
	Keep    int    `yaml:"keep"`     // rotated files kept; 0: 10
	// syslog
	Address string `yaml:"address"` // host:port, TCP
	TLS     bool   `yaml:"tls"`
	// CAFile verifies the receiver (syslog with tls, or an https URL);
	// empty: the system roots. Relative: to the working directory.
	CAFile string `yaml:"ca_file"`
	// http
	URL string `yaml:"url"`
	// HeadersEnv maps a header to the environment variable holding its
	// value (a Splunk HEC token, say): never in the config, never logged.
	HeadersEnv map[string]string `yaml:"headers_env"`
}

// validateAudit checks the audit block's shape; header variables are read
// only by serve.
func (c *Config) validateAudit(add func(string, ...any)) {
	names := map[string]int{}
	for i, s := range c.Audit.Export {
		sc := s.sinkConfig(c)
		if err := sc.Validate(); err != nil {
			add("audit.export[%d]: %v", i, err)
			continue
		}
		if j, dup := names[sc.SinkName()]; dup {
			add("audit.export[%d]: same sink as audit.export[%d] (%s); give one a name", i, j, sc.SinkName())
		}
		names[sc.SinkName()] = i
		if s.TLS && s.Type != auditexport.TypeSyslog {
			add("audit.export[%d].tls: only for syslog (an http sink's URL says https)", i)
		}
		if s.CAFile != "" && !sinkUsesTLS(s) {
			add("audit.export[%d].ca_file: the sink does not use TLS (syslog needs tls: true, http an https URL); its events would go in plain text", i)
		}
		for h, env := range s.HeadersEnv {
			if env == "" {
				add("audit.export[%d].headers_env.%s: name the environment variable that holds the value", i, h)
			}
		}
	}
}

// sinkUsesTLS reports whether s talks TLS to its receiver.
func sinkUsesTLS(s AuditSinkConfig) bool {
	switch s.Type {
	case auditexport.TypeSyslog:
		return s.TLS
	case auditexport.TypeHTTP:
		return strings.HasPrefix(strings.ToLower(s.URL), "https://")
	}
	return false
}

// sinkConfig is s as auditexport takes it, without secrets or TLS.
func (s AuditSinkConfig) sinkConfig(c *Config) auditexport.SinkConfig {
	sc := auditexport.SinkConfig{Name: s.Name, Type: s.Type, Format: s.Format, Keep: s.Keep,
		Address: s.Address, TLS: s.TLS, URL: s.URL}
	if s.Path != "" {
		sc.Path = c.Path(s.Path)
	}
	if s.MaxSize != nil {
		sc.MaxSize = int64(*s.MaxSize)
	}
	return sc
}

// exportConfig is s ready to open: header values read from the
// environment, the CA file loaded.
func (s AuditSinkConfig) exportConfig(c *Config) (auditexport.SinkConfig, error) {
	sc := s.sinkConfig(c)
	if len(s.HeadersEnv) > 0 {
		sc.Headers = map[string]string{}
	}
	for h, env := range s.HeadersEnv {
		v := os.Getenv(env)
		if v == "" {
			return sc, configErrorf("audit export %s: environment variable %s (header %s) is empty", sc.SinkName(), env, h)
		}
		sc.Headers[h] = v
	}
	if s.CAFile == "" {
		return sc, nil
	}
	pem, err := os.ReadFile(s.CAFile) // relative: to the working directory, as every *_file key
	if err != nil {
		return sc, fmt.Errorf("audit export %s: read ca_file: %w", sc.SinkName(), err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return sc, configErrorf("audit export %s: ca_file %s holds no PEM certificate", sc.SinkName(), s.CAFile)
	}
	sc.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return sc, nil
}
