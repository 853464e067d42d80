package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemoPrintsCommandsThatWork starts `sallyport demo` and runs the iga
// check lines it prints, from the directory the demo was started in, as a
// newcomer would paste them.
func TestDemoPrintsCommandsThatWork(t *testing.T) {
	work := t.TempDir()
	cmd := exec.Command(binary, "demo", "--dir", "./demo", "--web", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	cmd.Dir = work
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var checks []string
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("demo exited before printing its tour")
			}
			if strings.Contains(l, " iga check ") {
				checks = append(checks, strings.TrimSpace(l))
			}
			done = strings.Contains(l, "iga export")
		case <-deadline:
			t.Fatal("demo printed no tour within 30s")
		}
	}
	require.GreaterOrEqual(t, len(checks), 4)

	comment := regexp.MustCompile(`\s+#.*$`)
	for i, line := range checks {
		line = comment.ReplaceAllString(line, "")
		sh := exec.Command("sh", "-c", line)
		sh.Dir = work
		out, _ := sh.CombinedOutput()
		code := sh.ProcessState.ExitCode()
		if i == 0 {
			assert.Equalf(t, 0, code, "first printed check must allow: %s\n%s", line, out)
			continue
		}
		assert.Equalf(t, 1, code, "printed denial example %q: %s", line, out)
		assert.Contains(t, string(out), "deny", line)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	assert.NoError(t, cmd.Wait(), "demo exits 0 on Ctrl-C")
}
