package discover

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

func newKey(t testing.TB, comment string) (line, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment, ssh.FingerprintSHA256(k)
}

func TestParseListing(t *testing.T) {
	plain, plainFP := newKey(t, "ci@build")
	opt, optFP := newKey(t, "backup")
	out := strings.Join([]string{
		listingHeader,
		"u root:x:0:0:root:/root:/bin/bash",
		"k root 400",
		"| # a comment",
		"| " + plain,
		`| from="10.0.0.0/8",command="/usr/bin/rsync --server SECRET=hunter2",no-pty ` + opt,
		"| not a key at all",
		"",
		"e root",
		"u daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
		"u alice:x:1000:1000::/home/alice:/bin/zsh",
		"d alice",
		"u bob:x:1001:1001::/home/bob:/bin/sh",
		"n bob",
	}, "\n") + "\n"
	found, err := ParseListing([]byte(out), DefaultKeysFileCap)
	require.NoError(t, err)
	require.Len(t, found.Accounts, 3, "daemon has no login shell")
	root := found.Accounts[0]
	assert.Equal(t, "root", root.Login)
	assert.Equal(t, []string{"uid 0", "shell /bin/bash"}, root.Attributes)
	require.Len(t, root.Keys, 2)
	assert.Equal(t, iga.DiscoveredKey{Type: "ssh-ed25519", Fingerprint: plainFP, Comment: "ci@build"}, root.Keys[0])
	assert.Equal(t, iga.DiscoveredKey{Type: "ssh-ed25519", Fingerprint: optFP, Comment: "backup", Options: []string{"from", "command", "no-pty"}}, root.Keys[1])
	require.Len(t, root.Problems, 1)
	assert.Contains(t, root.Problems[0], "line 4 is not a key")
	assert.NotContains(t, fmt.Sprint(found), "hunter2", "option values never kept")
	assert.Equal(t, []string{"authorized_keys is not readable by the discovery login"}, found.Accounts[1].Problems)
	assert.Empty(t, found.Accounts[2].Problems)
	assert.Empty(t, found.Notes)
}

func TestParseListingCut(t *testing.T) {
	a, aFP := newKey(t, "a")
	b, _ := newKey(t, "b")
	tests := []struct {
		name string
		out  string
	}{
		{"file bigger than the cap", listingHeader + "\nu root:x:0:0::/root:/bin/bash\nk root 999999\n| " + a + "\n| " + b[:30] + "\ne root\n"},
		{"output ends inside the file", listingHeader + "\nu root:x:0:0::/root:/bin/bash\nk root 200\n| " + a + "\n| " + b[:30]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			found, err := ParseListing([]byte(tc.out), 100)
			require.NoError(t, err)
			require.Len(t, found.Accounts, 1)
			root := found.Accounts[0]
			require.Len(t, root.Keys, 1, "the partial last line is dropped, not reported as a bad key")
			assert.Equal(t, aFP, root.Keys[0].Fingerprint)
			require.Len(t, root.Problems, 1)
			assert.Contains(t, root.Problems[0], "cut")
		})
	}
}

func TestParseListingRefuses(t *testing.T) {
	for _, out := range []string{"", "Welcome to host\n" + listingHeader + "\n", "sallyport-discovery 2\n"} {
		_, err := ParseListing([]byte(out), 100)
		assert.Error(t, err, "%q", out)
	}
	found, err := ParseListing([]byte(listingHeader+"\nzz what\nu a:b\n"), 100)
	require.NoError(t, err)
	assert.Empty(t, found.Accounts, "a short passwd entry is no account")
	assert.Equal(t, []string{"1 line(s) of the listing were not understood and skipped"}, found.Notes)
}

func TestKeysFileWord(t *testing.T) {
	tests := []struct{ tmpl, want, err string }{
		{"", `"$h"'/.ssh/authorized_keys'`, ""},
		{".ssh/authorized_keys2", `"$h"'/.ssh/authorized_keys2'`, ""},
		{"/etc/ssh/keys/%u", `'/etc/ssh/keys/'"$n"`, ""},
		{"/k/it's 100%%", `'/k/it'\''s 100''%'`, ""},
		{"/k/%i", "", "%i is not supported"},
		{"/k/%", "", "lone"},
		{"/k/a\nb", "", "newline"},
	}
	for _, tc := range tests {
		got, err := keysFileWord(tc.tmpl)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.tmpl)
			continue
		}
		require.NoError(t, err, tc.tmpl)
		assert.Equal(t, tc.want, got, tc.tmpl)
	}
}

// TestScriptRunsUnderSh runs the listing script with sh against a fake
// home, the way sshd would, and parses what it prints: the framing and the
// parser agree, and a file past the cap is cut.
func TestScriptRunsUnderSh(t *testing.T) {
	dir := t.TempDir()
	key, fp := newKey(t, "x")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "root"), []byte(key+"\n"+strings.Repeat("#", 300)+"\n"+key), 0o600))
	script, err := Script(dir+"/%u", 200)
	require.NoError(t, err)
	out, err := exec.Command("sh", "-c", script).Output()
	require.NoError(t, err)
	found, err := ParseListing(out, 200)
	require.NoError(t, err)
	var root *iga.DiscoveredAccount
	for i := range found.Accounts {
		if found.Accounts[i].Login == "root" {
			root = &found.Accounts[i]
		}
	}
	require.NotNil(t, root, "root has a login shell here: %s", out)
	require.Len(t, root.Keys, 1)
	assert.Equal(t, fp, root.Keys[0].Fingerprint)
	require.Len(t, root.Problems, 1)
	assert.Contains(t, root.Problems[0], "cut")
}

// FuzzParseListing: whatever a target prints, the parser returns without
// panicking, keeps only printable text and never more keys than lines.
func FuzzParseListing(f *testing.F) {
	key, _ := newKey(f, "seed")
	f.Add([]byte(listingHeader + "\nu root:x:0:0::/root:/bin/bash\nk root 10\n| " + key + "\ne root\n"))
	f.Add([]byte(listingHeader + "\nu a:x:1:1::/h:/bin/sh\nk a 5\n| command=\"x\" " + key + "\n| \xff\x00\ne a\nd a\n"))
	f.Add([]byte(listingHeader + "\nk nobody 3\n| x\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		found, err := ParseListing(out, 64)
		if err != nil {
			return
		}
		lines := strings.Count(string(out), "\n") + 1
		for _, a := range found.Accounts {
			if len(a.Keys) > lines {
				t.Fatalf("%d keys from %d lines", len(a.Keys), lines)
			}
			for _, k := range a.Keys {
				if k.Comment != clean(k.Comment, maxComment) {
					t.Fatalf("comment %q not cleaned", k.Comment)
				}
			}
		}
	})
}
