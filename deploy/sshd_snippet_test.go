package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSSHDSnippetLoadsIntoDebianConfig installs deploy/sshd/sallyport.conf the
// way its README says — into the sshd_config.d that Debian's stock
// sshd_config includes — and asks the real sshd to check the result.
func TestSSHDSnippetLoadsIntoDebianConfig(t *testing.T) {
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	stock, err := os.ReadFile("/etc/ssh/sshd_config")
	if err != nil || !fileExists(sshd) {
		if os.Getenv("CI") != "" {
			t.Fatalf("openssh-server is not installed (make deps installs it): %v", err)
		}
		t.Skip("SKIPPED LOUDLY: openssh-server is not installed; run make deps")
	}
	dir := t.TempDir()
	confd := filepath.Join(dir, "sshd_config.d")
	require.NoError(t, os.Mkdir(confd, 0o755))
	main := strings.ReplaceAll(string(stock), "/etc/ssh/sshd_config.d", confd)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(main), 0o644))
	snippet, err := os.ReadFile(filepath.Join("sshd", "sallyport.conf"))
	require.NoError(t, err)
	caPub := filepath.Join(dir, "ca.pub")
	snippet = []byte(strings.ReplaceAll(string(snippet), "/etc/ssh/sallyport_user_ca.pub", caPub))
	require.NoError(t, os.WriteFile(filepath.Join(confd, "sallyport.conf"), snippet, 0o644))
	keygen := func(path string) {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput()
		require.NoError(t, err, "ssh-keygen: %s", out)
	}
	keygen(filepath.Join(dir, "ca"))
	keygen(filepath.Join(dir, "host"))
	require.NoError(t, os.MkdirAll("/run/sshd", 0o755))
	out, err := exec.Command(sshd, "-t", "-f", filepath.Join(dir, "sshd_config"), "-h", filepath.Join(dir, "host")).CombinedOutput()
	require.NoError(t, err, "sshd -t rejects the snippet in Debian's config: %s", out)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
