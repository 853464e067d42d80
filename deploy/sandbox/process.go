package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const (
	// stopGrace is how long a server may take to shut down after its polite
	// stop signal before the whole process group is killed.
	stopGrace = 10 * time.Second
	// reapTimeout bounds the wait for the killed group's last members to go.
	reapTimeout = 5 * time.Second
	// probeInterval is the pause between readiness probes while a server starts.
	probeInterval = 25 * time.Millisecond
	// logTailLines is how much of a server's log a start error quotes.
	logTailLines = 20
)

// process is a server child in its own process group, its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the leader has exited
	waitErr error         // valid once done is closed
}

// startProcess runs cmd in a new process group with stdout and stderr
// appended to logPath. The child is killed if this process dies.
func startProcess(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the leader's process id, which is also the process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the leader has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the leader, waits up to stopGrace, then kills the whole
// group and every process that descended from the leader (sshd puts each
// connection in a session of its own), and waits until none is left.
func (p *process) stop(sig syscall.Signal) error {
	// Taken first: once the leader is gone its children re-parent.
	tree := descendants(p.pid())
	if !p.exited() {
		_ = p.cmd.Process.Signal(sig)
	}
	select {
	case <-p.done:
	case <-time.After(stopGrace):
	}
	deadline := time.Now().Add(reapTimeout)
	for {
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		left := stillRunning(tree)
		for _, pr := range left {
			_ = syscall.Kill(pr.pid, syscall.SIGKILL)
		}
		if p.exited() && len(left) == 0 && !groupAlive(p.pid()) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stop %s: processes of %d still running after %s", p.name, p.pid(), reapTimeout)
		}
		time.Sleep(probeInterval)
	}
}

// waitReady calls probe until it succeeds, the process exits, ctx ends or
// timeout passes. Errors quote the tail of the server's log.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = probe(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting (%v)%s", p.name, p.waitErr, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to accept connections: %w (last probe: %v)%s",
				p.name, ctx.Err(), last, p.logTail())
		case <-time.After(probeInterval):
		}
	}
}

// logTail returns the last lines of the log, prefixed for an error message.
func (p *process) logTail() string {
	return tailOf(p.logPath)
}

// tailOf formats the last logTailLines lines of a file for an error
// message, preceded by earlier lines that report errors, which installers
// tend to follow with pages of advice.
func tailOf(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var errs []string
	if len(lines) > logTailLines {
		errs = errorLines(lines[:len(lines)-logTailLines])
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("; log %s ends:\n%s", path, strings.Join(append(errs, lines...), "\n"))
}

// errorLines picks the first few lines that mention an error.
func errorLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if len(out) < logTailLines/4 && (strings.Contains(l, "ERROR") || strings.Contains(l, "FATAL")) {
			out = append(out, l)
		}
	}
	if len(out) > 0 {
		out = append(out, "[...]")
	}
	return out
}

// runLogged runs a setup command (initdb, install-db) to completion with its
// output appended to logPath, quoting the log tail when it fails.
func runLogged(ctx context.Context, name string, cmd *exec.Cmd, logPath string) error {
	p, err := startProcess(name, cmd, logPath)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = p.stop(syscall.SIGKILL)
		return fmt.Errorf("run %s: %w", name, ctx.Err())
	}
	if p.waitErr != nil {
		return fmt.Errorf("run %s: %w%s", name, p.waitErr, p.logTail())
	}
	return nil
}
