package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sallyport/sallyport/internal/when"
	"github.com/sallyport/sallyport/proxy/tlscert"
	"github.com/sallyport/sallyport/recorder"
)

// Config is the operator's sallyport.yaml (DESIGN §4). Loading checks its
// shape only: whether a target is reachable, its host key right or its admin
// DSN valid is checked when a session needs it, so a config whose targets are
// not up yet still loads. Secrets are never inline: *_env names an
// environment variable and *_file a file.
type Config struct {
	DataDir       string              `yaml:"data_dir"` // empty: ./data; relative to the config file
	Registry      RegistryConfig      `yaml:"registry"`
	Recordings    RecordingsConfig    `yaml:"recordings"`
	CA            CAConfig            `yaml:"ca"`
	SSH           SSHConfig           `yaml:"ssh"`
	Postgres      DBListenerConfig    `yaml:"postgres"`
	MySQL         DBListenerConfig    `yaml:"mysql"`
	Web           WebConfig           `yaml:"web"`
	Tokens        TokensConfig        `yaml:"tokens"`
	Breakglass    BreakglassConfig    `yaml:"breakglass"`
	Certification CertificationConfig `yaml:"certification"`
	Alerts        AlertsConfig        `yaml:"alerts"`
	Targets       []TargetConfig      `yaml:"targets"`
	Cluster       ClusterConfig       `yaml:"cluster"`
	SCIM          SCIMConfig          `yaml:"scim"`      // zero: SCIM off
	Discovery     DiscoveryConfig     `yaml:"discovery"` // config_discovery.go
	Audit         AuditConfig         `yaml:"audit"`     // config_audit.go
	Search        SearchConfig        `yaml:"search"`    // config_search.go
	// ShutdownGrace is how long serve's live sessions may go on after
	// SIGTERM before they are closed. Zero: 10s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`

	path string // where it was loaded from, for messages
}

// RegistryConfig selects the registry database.
type RegistryConfig struct {
	Driver string `yaml:"driver"`  // sqlite (empty) or postgres
	DSNEnv string `yaml:"dsn_env"` // postgres: variable holding the DSN
}

// RecordingsConfig is where and how sessions are recorded.
type RecordingsConfig struct {
	Store          string   `yaml:"store"` // file (empty) or s3
	S3             S3Config `yaml:"s3"`
	FlushInterval  Duration `yaml:"flush_interval"` // zero: 1s
	FailClosed     *bool    `yaml:"fail_closed"`    // nil: true
	RecordInput    bool     `yaml:"record_input"`
	Compression    string   `yaml:"compression"`      // zstd (empty), gzip or none
	SigningKeyFile string   `yaml:"signing_key_file"` // empty: generated under data_dir
	// ExecCaptureLimit is how much of each exec stream is kept; nil: 16MiB;
	// 0: counts and hashes only.
	ExecCaptureLimit *Size `yaml:"exec_capture_limit"`
	// ExecCaptureStdin keeps exec stdin; nil: true.
	ExecCaptureStdin *bool `yaml:"exec_capture_stdin"`
	// MaxStatementBytes is how much of a database statement (and of each
	// text or binary parameter) is kept; nil: 64KiB; 0: no cap.
	MaxStatementBytes *Size `yaml:"max_statement_bytes"`
	// Retention is how long stored recordings are kept before serve's
	// daily job deletes them (legal holds excepted); zero: for ever.
	Retention Duration `yaml:"retention"`
}

// S3Config locates the recordings bucket.
type S3Config struct {
	Endpoint     string `yaml:"endpoint"`
	Bucket       string `yaml:"bucket"`
	Region       string `yaml:"region"`
	Secure       *bool  `yaml:"secure"` // nil: true
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
	Prefix       string `yaml:"prefix"`
	// ObjectLock is the Object Lock retention every upload carries; zero: none.
	ObjectLock recorder.ObjectLock `yaml:"object_lock"`
}

// CAConfig names the SSH user CA key.
type CAConfig struct {
	SSHUserKeyFile string `yaml:"ssh_user_key_file"` // empty: generated under data_dir
}

// SSHConfig is the SSH listener.
type SSHConfig struct {
	Listen        string   `yaml:"listen"`        // empty: :2222
	HostKeyFile   string   `yaml:"host_key_file"` // empty: generated under data_dir
	CertTTL       Duration `yaml:"cert_ttl"`      // zero: 2m
	SourceAddress string   `yaml:"source_address"`
	IdleTimeout   Duration `yaml:"idle_timeout"` // zero: none
	MaxSession    Duration `yaml:"max_session"`  // zero: none
	// FirstChannelTimeout closes a login that opens no channel this long
	// (identities entitled to forward are exempt), and a refused login once
	// its client had this long to read why. Zero: 10s.
	FirstChannelTimeout Duration `yaml:"first_channel_timeout"`
	// ProxyProtocol: see config_proxyproto.go. Nil: no PROXY header is read.
	ProxyProtocol *ProxyProtocolConfig `yaml:"proxy_protocol"`
}

// DBListenerConfig is the PostgreSQL or MySQL listener.
type DBListenerConfig struct {
	Listen     string `yaml:"listen"`
	RequireTLS *bool  `yaml:"require_tls"` // nil: true
	// TLSCertFile and TLSKeyFile are the listener's certificate and key
	// (PEM), served as they are. Both empty: a self-signed pair generated
	// under data_dir for the listen address and TLSHosts.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TLSHosts are the host names and IP addresses clients reach the
	// listener by, which the generated certificate names besides the listen
	// address's own. Empty: those of the listen address only. Not with
	// TLSCertFile, whose certificate names its own hosts.
	TLSHosts []string `yaml:"tls_hosts"`
	// ProxyProtocol: see config_proxyproto.go. Nil: no PROXY header is read.
	ProxyProtocol *ProxyProtocolConfig `yaml:"proxy_protocol"`
}

// WebConfig is the console, API, health and metrics listener.
type WebConfig struct {
	Listen      string     `yaml:"listen"` // empty: :8080
	TLSCertFile string     `yaml:"tls_cert_file"`
	TLSKeyFile  string     `yaml:"tls_key_file"`
	OIDC        OIDCConfig `yaml:"oidc"`
	// SessionKeyFile signs the console's cookies. Empty: generated under
	// data_dir.
	SessionKeyFile string `yaml:"session_key_file"`
}

// OIDCConfig is the console's sign-in provider.
type OIDCConfig struct {
	Issuer          string `yaml:"issuer"`
	ClientID        string `yaml:"client_id"`
	ClientSecretEnv string `yaml:"client_secret_env"`
}

// TokensConfig lists the workload token issuers sallyport trusts.
type TokensConfig struct {
	TrustedIssuers []TrustedIssuerConfig `yaml:"trusted_issuers"`
	// SigningKeyFile signs and verifies the tokens sallyport mints (token
	// issue). Empty: generated under data_dir.
	SigningKeyFile string `yaml:"signing_key_file"`
}

// TrustedIssuerConfig is one trusted OIDC issuer.
type TrustedIssuerConfig struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
}

// BreakglassConfig bounds break-glass grants.
type BreakglassConfig struct {
	MaxDuration  Duration `yaml:"max_duration"`  // zero: 1h
	ReviewWithin Duration `yaml:"review_within"` // zero: 72h
}

// CertificationConfig bounds certifications.
type CertificationConfig struct {
	MaxPeriod Duration `yaml:"max_period"` // zero: 90d
}

// AlertsConfig is the optional alert webhook.
type AlertsConfig struct {
	WebhookURL string `yaml:"webhook_url"`
	SecretEnv  string `yaml:"secret_env"`
}

// TargetConfig is one target the bastion may connect to.
type TargetConfig struct {
	Name        string `yaml:"name"`
	Kind        string `yaml:"kind"` // ssh, postgres, mysql
	Address     string `yaml:"address"`
	HostKey     string `yaml:"host_key"`
	HostCA      string `yaml:"host_ca"`
	Environment string `yaml:"environment"`
	Database    string `yaml:"database"`
	AdminDSNEnv string `yaml:"admin_dsn_env"`
	// DiscoveryLogin is the Unix login discovery uses on an ssh target
	// (config_discovery.go). Empty: the target is not discovered.
	DiscoveryLogin string `yaml:"discovery_login"`
	// TLS secures the bastion's connections to a postgres or mysql target
	// (see TargetTLSConfig). Zero: verify-full, or disable on loopback.
	TLS TargetTLSConfig `yaml:"tls"`
	// ExecCaptureStdin false keeps no exec stdin of sessions to this ssh
	// target (counts and hashes only); nil: as recordings.exec_capture_stdin.
	ExecCaptureStdin *bool `yaml:"exec_capture_stdin"`
}

// Duration is a YAML duration: Go syntax ("90s", "2m", "1h30m") or whole
// days ("90d").
type Duration time.Duration

// UnmarshalYAML accepts "90d" as well as Go durations.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration parses "30d" or any time.ParseDuration string; negative
// durations are refused (when.ParseDuration).
func ParseDuration(s string) (time.Duration, error) { return when.ParseDuration(s) }

// ConfigError is a problem in the config file; the CLI exits 2 on it.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErrorf(format string, a ...any) error {
	return &ConfigError{msg: fmt.Sprintf(format, a...)}
}

// LoadConfig reads and checks a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, configErrorf("read config: %v (pass --config FILE or set SALLYPORT_CONFIG)", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes a config strictly (unknown keys are errors naming the
// key and its line), applies defaults and validates the result.
func ParseConfig(path string, data []byte) (*Config, error) {
	c := &Config{path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, configErrorf("%s", yamlProblems(path, err))
	}
	c.applyDefaults()
	if !filepath.IsAbs(c.DataDir) {
		// Relative to the config file, so the CLI finds the same registry
		// whichever directory it runs from.
		c.DataDir = filepath.Join(filepath.Dir(path), c.DataDir)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)
var unknownFieldRE = regexp.MustCompile(`field (\S+) not found in type \S+`)

// yamlProblems turns yaml.v3's errors into "file:line: message" lines.
func yamlProblems(path string, err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		m := yamlLineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		msg := unknownFieldRE.ReplaceAllString(m[2], "unknown key $1")
		lines = append(lines, fmt.Sprintf("%s:%s: %s", path, m[1], msg))
	}
	if len(lines) == 0 {
		return fmt.Sprintf("%s: %v", path, err)
	}
	return strings.Join(lines, "\n")
}

func (c *Config) applyDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Registry.Driver == "" {
		c.Registry.Driver = "sqlite"
	}
	if c.Recordings.Store == "" {
		c.Recordings.Store = "file"
	}
	if c.Recordings.FlushInterval == 0 {
		c.Recordings.FlushInterval = Duration(time.Second)
	}
	if c.SSH.Listen == "" {
		c.SSH.Listen = ":2222"
	}
	if c.SSH.CertTTL == 0 {
		c.SSH.CertTTL = Duration(2 * time.Minute)
	}
	if c.Postgres.Listen == "" {
		c.Postgres.Listen = ":6432"
	}
	if c.MySQL.Listen == "" {
		c.MySQL.Listen = ":3307"
	}
	if c.Web.Listen == "" {
		c.Web.Listen = ":8080"
	}
	if c.Breakglass.MaxDuration == 0 {
		c.Breakglass.MaxDuration = Duration(time.Hour)
	}
	if c.Breakglass.ReviewWithin == 0 {
		c.Breakglass.ReviewWithin = Duration(72 * time.Hour)
	}
	if c.Certification.MaxPeriod == 0 {
		c.Certification.MaxPeriod = Duration(90 * 24 * time.Hour)
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = Duration(shutdownGrace)
	}
}

// Validate checks the shape of the config and reports every problem at once.
func (c *Config) Validate() error {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if c.Registry.Driver != "sqlite" && c.Registry.Driver != "postgres" {
		add("registry.driver %q: want sqlite or postgres", c.Registry.Driver)
	}
	if c.Registry.Driver == "postgres" && c.Registry.DSNEnv == "" {
		add("registry.dsn_env: name the environment variable that holds the PostgreSQL DSN")
	}
	c.validateRecordings(add)
	for _, l := range []struct{ key, addr string }{
		{"ssh.listen", c.SSH.Listen}, {"postgres.listen", c.Postgres.Listen},
		{"mysql.listen", c.MySQL.Listen}, {"web.listen", c.Web.Listen},
	} {
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			add("%s %q: want host:port or :port", l.key, l.addr)
		}
	}
	for _, tl := range []struct{ block, cert, key string }{
		{"web", c.Web.TLSCertFile, c.Web.TLSKeyFile},
		{"postgres", c.Postgres.TLSCertFile, c.Postgres.TLSKeyFile},
		{"mysql", c.MySQL.TLSCertFile, c.MySQL.TLSKeyFile},
	} {
		if (tl.cert == "") != (tl.key == "") {
			add("%s.tls_cert_file and %s.tls_key_file: set both or neither", tl.block, tl.block)
		}
	}
	c.validateTLSHosts("postgres", c.Postgres, add)
	c.validateTLSHosts("mysql", c.MySQL, add)
	for i, ti := range c.Tokens.TrustedIssuers {
		if u, err := url.Parse(ti.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
			add("tokens.trusted_issuers[%d].issuer %q: want an https URL", i, ti.Issuer)
		}
		if ti.Audience == "" {
			add("tokens.trusted_issuers[%d].audience: required (the aud claim sallyport accepts)", i)
		}
	}
	c.validateTargets(add)
	c.SCIM.validate(add)
	c.validateDiscovery(add)
	c.validateProxyProtocol(add)
	c.validateAudit(add)
	if len(p) > 0 {
		return configErrorf("%s: %s", c.path, strings.Join(p, "\n"+c.path+": "))
	}
	return nil
}

// validateTLSHosts checks the names a generated listener certificate is
// to carry.
func (c *Config) validateTLSHosts(block string, l DBListenerConfig, add func(string, ...any)) {
	if len(l.TLSHosts) > 0 && l.TLSCertFile != "" {
		add("%s.tls_hosts: names the hosts of the generated certificate; the one in %s.tls_cert_file names its own: remove one of them", block, block)
	}
	for i, h := range l.TLSHosts {
		if err := tlscert.CheckHost(h); err != nil {
			add("%s.tls_hosts[%d]: %v", block, i, err)
		}
	}
}

func (c *Config) validateRecordings(add func(string, ...any)) {
	r := c.Recordings
	switch r.Store {
	case "file":
	case "s3":
		if r.S3.Endpoint == "" || r.S3.Bucket == "" {
			add("recordings.s3: endpoint and bucket are required when store is s3")
		}
		if r.S3.AccessKeyEnv == "" || r.S3.SecretKeyEnv == "" {
			add("recordings.s3: access_key_env and secret_key_env name the variables holding the credentials")
		}
	default:
		add("recordings.store %q: want file or s3", r.Store)
	}
	switch r.Compression {
	case "", "zstd", "gzip", "none":
	default:
		add("recordings.compression %q: want zstd, gzip or none", r.Compression)
	}
	c.validateRetention(add)
}

var targetNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

func (c *Config) validateTargets(add func(string, ...any)) {
	seen := map[string]bool{}
	for i, t := range c.Targets {
		where := fmt.Sprintf("targets[%d]", i)
		if !targetNameRE.MatchString(t.Name) {
			add("%s.name %q: want letters, digits, '.', '_' or '-'", where, t.Name)
		}
		if seen[t.Name] {
			add("%s.name %q: duplicate target", where, t.Name)
		}
		seen[t.Name] = true
		switch t.Kind {
		case "ssh", "postgres", "mysql":
		default:
			add("%s (%s).kind %q: want ssh, postgres or mysql", where, t.Name, t.Kind)
		}
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			add("%s (%s).address %q: want host:port", where, t.Name, t.Address)
		}
		if err := t.TLS.checkShape(t.Kind); err != nil {
			add("%s (%s).%v", where, t.Name, err)
		}
	}
}

// Path resolves p against the data directory unless it is absolute.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// Target returns the named target.
func (c *Config) Target(name string) (TargetConfig, bool) {
	for _, t := range c.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return TargetConfig{}, false
}

// hasTargetKind reports whether any target is of kind.
func (c *Config) hasTargetKind(kind string) bool {
	for _, t := range c.Targets {
		if t.Kind == kind {
			return true
		}
	}
	return false
}

// boolOr returns *b, or def when unset.
func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// ClusterConfig times what the replicas sharing a registry do together.
type ClusterConfig struct {
	// Lease is how long a replica counts as alive after its last renewal
	// (renewed every third of it); the database credentials of a replica
	// whose lease lapsed are dropped. Zero: 15s; at least 1s.
	Lease Duration `yaml:"lease"`
	// JanitorInterval is how often the leading replica sweeps leftover
	// per-session database credentials. Zero: 1m.
	JanitorInterval Duration `yaml:"janitor_interval"`
}
