package discover

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/deploy/sandbox"
)

// sshTarget is a real sshd that trusts a fresh bastion CA, and an SSH
// source that discovers it with keys files under keysDir.
func sshTarget(t *testing.T) (*SSH, *sandbox.SSHD, string) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	userCA := &ca.SSHUserCA{Key: key}
	sshd := sandbox.SSHDT(t, sandbox.SSHDOptions{TrustedUserCAKeys: []string{userCA.AuthorizedKey()}})
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sshd.HostKey))
	require.NoError(t, err)
	keysDir := t.TempDir()
	src := &SSH{Address: net.JoinHostPort(sshd.Host, strconv.Itoa(sshd.Port)), HostKeys: []ssh.PublicKey{hostKey},
		Login: sshd.User, CA: userCA, KeysFile: keysDir + "/%u"}
	return src, sshd, keysDir
}

// TestSSHDiscovery logs in to a real sshd with a certificate of the
// bastion's CA and reads the login's authorized_keys: a plain key, a key
// with options (their values left out) and a line that is no key.
func TestSSHDiscovery(t *testing.T) {
	src, sshd, keysDir := sshTarget(t)
	plain, plainFP := newKey(t, "svc-backup")
	opt, optFP := newKey(t, "forced")
	file := strings.Join([]string{plain, `command="/bin/backup --token=s3cr3t",from="10.0.0.0/8" ` + opt, "garbage"}, "\n") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(keysDir, sshd.User), []byte(file), 0o600))

	found, err := src.Discover(ctxT(t))
	require.NoError(t, err)
	me, ok := account(found, sshd.User)
	require.True(t, ok, "found %v", names(found))
	require.Len(t, me.Keys, 2)
	assert.Equal(t, plainFP, me.Keys[0].Fingerprint)
	assert.Equal(t, "svc-backup", me.Keys[0].Comment)
	assert.Equal(t, optFP, me.Keys[1].Fingerprint)
	assert.Equal(t, []string{"command", "from"}, me.Keys[1].Options)
	require.Len(t, me.Problems, 1)
	assert.Contains(t, me.Problems[0], "line 3 is not a key")
	assert.NotContains(t, strings.Join(me.Problems, " "), "s3cr3t")
	for _, a := range found.Accounts {
		assert.NotContains(t, a.Attributes, "shell /usr/sbin/nologin", "only login shells: %s", a.Account)
	}
}

// TestSSHDiscoveryHugeFile: an authorized_keys of 2 MiB is read up to the
// cap, its keys before it found, and reported as cut.
func TestSSHDiscoveryHugeFile(t *testing.T) {
	src, sshd, keysDir := sshTarget(t)
	first, firstFP := newKey(t, "first")
	var b strings.Builder
	b.WriteString(first + "\n")
	for b.Len() < 2<<20 {
		k, _ := newKey(t, "filler")
		b.WriteString(k + "\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(keysDir, sshd.User), []byte(b.String()), 0o600))
	src.KeysFileCap = 64 << 10

	found, err := src.Discover(ctxT(t))
	require.NoError(t, err)
	me, ok := account(found, sshd.User)
	require.True(t, ok)
	assert.Equal(t, firstFP, me.Keys[0].Fingerprint)
	assert.Less(t, len(me.Keys), 1000, "no more than fits in 64 KiB")
	assert.Greater(t, len(me.Keys), 500)
	require.Len(t, me.Problems, 1, "the cut last line is dropped, not reported as a bad key")
	assert.Contains(t, me.Problems[0], "cut")
}

// TestSSHDiscoveryRefused: a login the target does not let in, or a host
// key that is not the configured one, fails the target with why.
func TestSSHDiscoveryRefused(t *testing.T) {
	src, _, _ := sshTarget(t)
	other := *src
	other.Login = "nobody-here"
	_, err := other.Discover(ctxT(t))
	assert.ErrorContains(t, err, "log in to")

	wrongHost, _ := newKey(t, "")
	k, _, _, _, perr := ssh.ParseAuthorizedKey([]byte(wrongHost))
	require.NoError(t, perr)
	other = *src
	other.HostKeys = []ssh.PublicKey{k}
	_, err = other.Discover(ctxT(t))
	assert.ErrorContains(t, err, "not the configured host_key")
}

// TestSSHDiscoveryWithoutRights: a discovery login that may not read an
// account's authorized_keys reports that account's keys as unreadable and
// still lists the rest. Root reads every file, and sshd lets no locked
// account in, so as root the listing runs as nobody through setpriv
// instead of through sshd: the same script, the same real permissions.
func TestSSHDiscoveryWithoutRights(t *testing.T) {
	key, _ := newKey(t, "hidden")
	if os.Getuid() == 0 {
		dir, err := os.MkdirTemp("", "sallyport-discovery-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		require.NoError(t, os.Chmod(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "root"), []byte(key+"\n"), 0o600))
		script, err := Script(dir+"/%u", DefaultKeysFileCap)
		require.NoError(t, err)
		out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script).Output()
		require.NoError(t, err)
		found, err := ParseListing(out, DefaultKeysFileCap)
		require.NoError(t, err)
		checkUnreadable(t, found, "root")
		return
	}
	src, sshd, keysDir := sshTarget(t)
	require.NoError(t, os.WriteFile(filepath.Join(keysDir, sshd.User), []byte(key+"\n"), 0o000))
	found, err := src.Discover(ctxT(t))
	require.NoError(t, err)
	checkUnreadable(t, found, sshd.User)
}

func checkUnreadable(t *testing.T, found Found, login string) {
	t.Helper()
	a, ok := account(found, login)
	require.True(t, ok, "found %v", names(found))
	assert.Empty(t, a.Keys)
	assert.Equal(t, []string{"authorized_keys is not readable by the discovery login"}, a.Problems)
	for _, other := range found.Accounts {
		if other.Login != login {
			assert.Empty(t, other.Problems, "%s has no keys file: none, not unreadable", other.Login)
		}
	}
}
