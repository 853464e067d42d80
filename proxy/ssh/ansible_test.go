package ssh

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
)

// TestAnsibleRecipe runs the Ansible recipe of docs/ansible.md against the
// bastion: the IDENTITY@TARGET login goes in an ssh_config Host block, not
// in ansible_user (which Ansible would expand as ~IDENTITY@TARGET and
// create a directory of that name on the target), with pipelining on. A
// command module and a copy (a file through sftp) work, and no stray
// directory appears in the login's home.
func TestAnsibleRecipe(t *testing.T) {
	bin, err := exec.LookPath("ansible")
	if err != nil {
		sandbox.Need(t, fmt.Errorf("ansible not in PATH: install the Debian package ansible-core: %w", sandbox.ErrNotInstalled))
	}
	h := newHarness(t, harnessOptions{})
	ctx := testCtx(t, 120*time.Second)
	cfg := filepath.Join(h.dir, "ssh_config")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`Host web-via-bastion
  HostName 127.0.0.1
  Port %s
  User svc-ops@web
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
`, h.port, h.keys["svc-ops"], h.known)), 0o600))
	dest := filepath.Join(h.dir, "copied.txt") // the target is this machine
	ansible := func(module, args string) result {
		cmd := exec.CommandContext(ctx, bin, "all", "-i", "web-via-bastion,", "-m", module, "-a", args)
		cmd.Env = append(os.Environ(), "ANSIBLE_SSH_ARGS=-F "+cfg+" -o ControlMaster=no", "ANSIBLE_PIPELINING=True",
			"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3", "ANSIBLE_LOCAL_TEMP="+filepath.Join(h.dir, "ansible-local"),
			"ANSIBLE_NOCOLOR=1")
		return run(t, cmd, "")
	}
	r := ansible("ansible.builtin.command", "echo through-the-bastion")
	require.Equal(t, 0, r.code, "stdout %s\nstderr %s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "through-the-bastion")
	r = ansible("ansible.builtin.copy", "content=from-ansible dest="+dest)
	require.Equal(t, 0, r.code, "stdout %s\nstderr %s", r.stdout, r.stderr)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.Equal(t, "from-ansible", string(got))

	u, err := user.Lookup(h.sshd.User)
	require.NoError(t, err)
	entries, err := os.ReadDir(u.HomeDir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "~"), "Ansible created %s in %s", e.Name(), u.HomeDir)
	}
	commands := 0
	for _, src := range h.recordings(ctx) {
		commands += len(eventsOf(replayJSON(t, ctx, src), "command"))
	}
	assert.NotZero(t, commands, "Ansible's commands are in the recordings")
}
