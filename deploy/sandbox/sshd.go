package sandbox

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// sshdReadyTimeout bounds the wait for sshd to send its banner; it
	// normally answers within a few milliseconds.
	sshdReadyTimeout = 10 * time.Second
	// sshdProbeTimeout bounds one banner read.
	sshdProbeTimeout = time.Second
	// sshdPrivsepDir must exist for sshd's privilege separation when run as root.
	sshdPrivsepDir = "/run/sshd"
)

// sshdSearch is where sshd is looked for before PATH (Debian's PATH for
// non-root users lacks /usr/sbin).
var sshdSearch = []string{"/usr/sbin", "/usr/local/sbin"}

// SSHDOptions configures StartSSHD. The zero value starts an sshd that
// accepts no key at all; set TrustedUserCAKeys or AuthorizedKeys.
type SSHDOptions struct {
	// BaseDir is where the sandbox dir is created; zero means /dev/shm when
	// usable (memory, faster), else os.TempDir().
	BaseDir string
	// TrustedUserCAKeys are CA public keys in authorized_keys form whose user
	// certificates sshd accepts (principal = login name); zero trusts no CA.
	TrustedUserCAKeys []string
	// AuthorizedKeys are authorized_keys lines accepted for any login;
	// zero means AuthorizedKeysFile none.
	AuthorizedKeys []string
	// RecordCertificates installs an AuthorizedPrincipalsCommand that saves
	// every certificate sshd checks, for Certificates to read back. Logins
	// still need a principal equal to the login name. Zero installs none.
	RecordCertificates bool
	// Config holds extra sshd_config lines, appended last; zero adds none.
	Config []string
	// HostCA signs a host certificate for sshd's host key (principal: the
	// listen address, valid for a day), which sshd presents to clients
	// that ask for certificate host keys; zero presents the plain key only.
	HostCA ssh.Signer
}

// Validate reports keys that sshd could not parse.
func (o SSHDOptions) Validate() error {
	for _, k := range append(append([]string{}, o.TrustedUserCAKeys...), o.AuthorizedKeys...) {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			return fmt.Errorf("sshd key %.40q: %w", k, err)
		}
	}
	for _, line := range o.Config {
		if strings.ContainsAny(line, "\n\r") {
			return fmt.Errorf("sshd config line %q: must be one line", line)
		}
	}
	return nil
}

// SSHD is a running throwaway OpenSSH server on loopback.
type SSHD struct {
	// Host is the listen address, always 127.0.0.1.
	Host string
	// Port is the TCP port sshd listens on.
	Port int
	// User is the Unix account tests log in as: the user running this process.
	User string
	// HostKey is sshd's ed25519 host public key in authorized_keys form.
	HostKey string
	// Dir holds sshd_config, the host key and the log (sshd.log); Stop removes it.
	Dir string

	recordCerts bool // the principals command logs to certLogPath
	hostCert    bool // sshd presents hostCertPath
	proc        *process
	stopOnce    sync.Once
	stopErr     error
}

// StartSSHD writes a config and a fresh host key into a temp dir and runs
// sshd in the foreground on a free loopback port, returning once it answers.
func StartSSHD(ctx context.Context, opts SSHDOptions) (*SSHD, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	bin, ok := lookBinary("sshd", sshdSearch...)
	if !ok {
		return nil, missing("sshd", strings.Join(sshdSearch, ", ")+" or PATH", "openssh-server")
	}
	me, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("start sshd: look up current user: %w", err)
	}
	dir, err := makeBaseDir(opts.BaseDir, "sallyport-sshd-*")
	if err != nil {
		return nil, err
	}
	s := &SSHD{Host: "127.0.0.1", User: me.Username, Dir: dir}
	if err = s.prepare(opts); err == nil {
		err = s.serve(ctx, bin, opts)
	}
	if err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	return s, nil
}

// prepare writes the host key, key files and the principals command.
func (s *SSHD) prepare(opts SSHDOptions) error {
	if err := s.writeHostKey(); err != nil {
		return err
	}
	if opts.HostCA != nil {
		if err := s.writeHostCert(opts.HostCA); err != nil {
			return err
		}
	}
	if err := writeLines(filepath.Join(s.Dir, "trusted_user_ca_keys"), opts.TrustedUserCAKeys); err != nil {
		return err
	}
	if err := writeLines(filepath.Join(s.Dir, "authorized_keys"), opts.AuthorizedKeys); err != nil {
		return err
	}
	if isRoot() {
		if err := os.MkdirAll(sshdPrivsepDir, 0o755); err != nil {
			return fmt.Errorf("create sshd privilege separation dir: %w", err)
		}
	}
	s.recordCerts = opts.RecordCertificates
	if s.recordCerts && strings.ContainsAny(s.certLogPath(), "'\"%$ \t\\") {
		return fmt.Errorf("record sshd certificates: sandbox dir %q must not need quoting", s.Dir)
	}
	return nil
}

// writeHostKey generates an ed25519 host key (mode 0600, as sshd demands).
func (s *SSHD) writeHostKey() error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate sshd host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return fmt.Errorf("encode sshd host key: %w", err)
	}
	if err := os.WriteFile(s.hostKeyPath(), pem.EncodeToMemory(block), 0o600); err != nil {
		return fmt.Errorf("write sshd host key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encode sshd host public key: %w", err)
	}
	s.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	return nil
}

// hostCertValidity is how long a sandbox host certificate is valid; a
// sandbox lives for one test or demo.
const hostCertValidity = 24 * time.Hour

// writeHostCert signs the host key with ca and writes the certificate
// next to it, where config names it as HostCertificate.
func (s *SSHD) writeHostCert(ca ssh.Signer) error {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKey))
	if err != nil {
		return fmt.Errorf("parse sshd host key: %w", err)
	}
	now := time.Now()
	cert := &ssh.Certificate{Key: key, CertType: ssh.HostCert, KeyId: "sallyport-sandbox-sshd",
		ValidPrincipals: []string{s.Host}, ValidAfter: uint64(now.Add(-time.Minute).Unix()),
		ValidBefore: uint64(now.Add(hostCertValidity).Unix())}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return fmt.Errorf("sign sshd host certificate: %w", err)
	}
	if err := os.WriteFile(s.hostCertPath(), ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		return fmt.Errorf("write sshd host certificate: %w", err)
	}
	s.hostCert = true
	return nil
}

func (s *SSHD) hostCertPath() string { return s.hostKeyPath() + "-cert.pub" }

// writeLines writes one entry a line with mode 0644.
func writeLines(path string, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimSpace(l) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// principalsCommand saves the key type and certificate sshd passes (%t
// %k) to a log and answers with the login name (%u), the principal sshd
// would expect without a command. sshd runs the command only from a
// root-owned path no one else can write, so it is /bin/sh with an inline
// script rather than a script file; the script avoids '%', which sshd expands.
const principalsCommand = `/bin/sh -c 'echo "$2 $3" >> %s; echo "$1"' sh %%u %%t %%k`

// config renders sshd_config: loopback only, keys and certificates only.
func (s *SSHD) config(opts SSHDOptions) string {
	authorized := "none"
	if len(opts.AuthorizedKeys) > 0 {
		authorized = filepath.Join(s.Dir, "authorized_keys")
	}
	lines := []string{
		"Port " + strconv.Itoa(s.Port),
		"ListenAddress " + s.Host,
		"HostKey " + s.hostKeyPath(),
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"TrustedUserCAKeys " + filepath.Join(s.Dir, "trusted_user_ca_keys"),
		"AuthorizedKeysFile " + authorized,
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"StrictModes no",
		"UsePAM no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		"Subsystem sftp internal-sftp",
		// Debian's bash sources ~/.bashrc for a command run by sshd when it
		// is the top-level shell; SHLVL=1 makes it the second level, so a
		// session runs the same on any machine, whatever the dotfiles of
		// the user running the tests (a pyenv init there costs 240 ms per
		// session, and its lock, left by a killed session, stalls the next
		// ones for a minute).
		"SetEnv SHLVL=1",
		// Many concurrent test sessions must not be dropped as a flood.
		"MaxStartups 500",
		"MaxSessions 100",
	}
	if s.hostCert {
		lines = append(lines, "HostCertificate "+s.hostCertPath())
	}
	if s.recordCerts {
		lines = append(lines,
			"AuthorizedPrincipalsCommand "+fmt.Sprintf(principalsCommand, s.certLogPath()),
			"AuthorizedPrincipalsCommandUser "+s.User)
	}
	lines = append(lines, opts.Config...)
	return strings.Join(lines, "\n") + "\n"
}

// serve picks a free port, writes the config and runs sshd -D -e.
func (s *SSHD) serve(ctx context.Context, bin string, opts SSHDOptions) error {
	var err error
	if s.Port, err = FreePort(); err != nil {
		return err
	}
	cfg := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(s.config(opts)), 0o644); err != nil {
		return fmt.Errorf("write sshd_config: %w", err)
	}
	// sshd re-executes itself and so needs its absolute path.
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
	if s.proc, err = startProcess("sshd", cmd, filepath.Join(s.Dir, "sshd.log")); err != nil {
		return err
	}
	if err := s.proc.waitReady(ctx, sshdReadyTimeout, s.probe); err != nil {
		_ = s.proc.stop(syscall.SIGKILL)
		return err
	}
	return nil
}

// probe reads sshd's version banner.
func (s *SSHD) probe(ctx context.Context) error {
	d := net.Dialer{Timeout: sshdProbeTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(sshdProbeTimeout))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read sshd banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("unexpected sshd banner %q", line)
	}
	return nil
}

func (s *SSHD) hostKeyPath() string { return filepath.Join(s.Dir, "ssh_host_ed25519_key") }
func (s *SSHD) certLogPath() string { return filepath.Join(s.Dir, "certificates.log") }

// Addr is host:port of sshd.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// KnownHostsLine is the line a client's known_hosts file needs to trust sshd.
func (s *SSHD) KnownHostsLine() string {
	return fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, s.HostKey)
}

// HostPublicKey is HostKey parsed, e.g. for ssh.FixedHostKey.
func (s *SSHD) HostPublicKey() ssh.PublicKey {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKey))
	if err != nil {
		panic(fmt.Sprintf("sandbox: own sshd host key does not parse: %v", err))
	}
	return k
}

// Certificates returns the user certificates sshd checked so far, oldest
// first. It needs SSHDOptions.RecordCertificates.
func (s *SSHD) Certificates() ([]*ssh.Certificate, error) {
	if !s.recordCerts {
		return nil, fmt.Errorf("read sshd certificates: RecordCertificates was not set")
	}
	b, err := os.ReadFile(s.certLogPath())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sshd certificates: %w", err)
	}
	return parseCertLog(string(b))
}

// parseCertLog parses "type base64" lines written by principalsScript.
func parseCertLog(log string) ([]*ssh.Certificate, error) {
	var certs []*ssh.Certificate
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line == "" {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("parse recorded certificate: %w", err)
		}
		if c, ok := k.(*ssh.Certificate); ok {
			certs = append(certs, c)
		}
	}
	return certs, nil
}

// Stop terminates sshd and its connections, then removes its dirs. It is
// safe to call more than once.
func (s *SSHD) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.proc.stop(syscall.SIGTERM)
		os.RemoveAll(s.Dir)
	})
	return s.stopErr
}
