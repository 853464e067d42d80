package ssh

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"github.com/stretchr/testify/require"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/internal/heapfloor"
	"github.com/sallyport/sallyport/recorder"
)

// idleSessions is how many idle sessions the memory benchmark holds open
// at once: issue 9's scale goal. `go test -bench IdleSession -args
// -idle-sessions 500` measures another count.
var idleSessions = flag.Int("idle-sessions", 2000, "idle SSH sessions BenchmarkSSHIdleSessionMemory holds open")

const (
	// idleDialers is how many sessions the load process opens at a time.
	idleDialers = 8
	// idleOpenTimeout bounds opening every idle session.
	idleOpenTimeout = 5 * time.Minute
	// idleSettle is how long the sessions idle before the bastion's memory
	// is read, so that what opening them allocated is garbage by then.
	idleSettle = 2 * time.Second
	// fdsPerIdleSession is what one idle session holds open in the bastion:
	// client and target connections, the spool file, with room to spare.
	fdsPerIdleSession = 4
	// idleLoadEnv, when set, makes the test binary the load process of
	// BenchmarkSSHIdleSessionMemory instead of running tests.
	idleLoadEnv = "SALLYPORT_IDLE_LOAD"
)

func TestMain(m *testing.M) {
	if os.Getenv(idleLoadEnv) != "" {
		if err := idleLoad(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "idle load:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	heapfloor.Set() // as serve does: the bastion under test collects as it would in production
	os.Exit(m.Run())
}

// BenchmarkSSHIdleSessionMemory holds -idle-sessions idle shell sessions
// open at once through one bastion, recording on, and reports the
// bastion's resident memory per session. The clients and a lightweight Go
// SSH target run in a child process (the load), so this process's RSS is
// the bastion's alone, and thousands of sshd processes are not the
// bottleneck.
func BenchmarkSSHIdleSessionMemory(b *testing.B) {
	n := *idleSessions
	raiseFileLimit(b, uint64(n*fdsPerIdleSession+1024))
	var target atomic.Pointer[Target]
	h := newHarness(b, harnessOptions{tune: func(s *Server) {
		s.Targets = func(name string) (Target, bool) {
			t := target.Load()
			if t == nil || name != "web" {
				return Target{}, false
			}
			return *t, true
		}
	}, tuneRecorder: func(r *recorder.Recorder) {
		r.Config.FlushInterval = time.Second // the default; the tests' 50 ms would swamp the disk
	}})
	for b.Loop() {
		load := startIdleLoad(b, h, n)
		t, err := load.target()
		require.NoError(b, err)
		target.Store(&t)
		baseRSS, baseHeap := settledMemory()
		opened, err := load.open()
		require.NoError(b, err, "open %d sessions through the bastion", n)
		h.waitLive(n, 60*time.Second)
		time.Sleep(idleSettle)
		rss, heap := settledMemory()
		load.close(b)
		h.waitLive(0, 60*time.Second)
		b.ReportMetric(float64(n), "sessions")
		b.ReportMetric(float64(rss-baseRSS)/float64(n)/1024, "bastion-RSS-KiB/session")
		b.ReportMetric(float64(heap-baseHeap)/float64(n)/1024, "bastion-heap-KiB/session")
		b.ReportMetric(opened.Seconds(), "open-s")
	}
}

// settledMemory collects garbage, returns free memory to the OS, and reads
// the process's resident set and its live Go heap and stacks, in bytes.
// Idle sessions allocate nothing, so this is the memory they keep.
func settledMemory() (rss, heap int64) {
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return residentBytes(), int64(m.HeapInuse + m.StackInuse)
}

// residentBytes is this process's VmRSS.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib * 1024
		}
	}
	return 0
}

// raiseFileLimit makes room for need open files in this process and the
// children it starts; root may raise the hard limit too.
func raiseFileLimit(tb testing.TB, need uint64) {
	var lim syscall.Rlimit
	require.NoError(tb, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur >= need {
		return
	}
	lim.Cur, lim.Max = need, max(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatalf("raise the open-file limit to %d (ulimit -n) for %d idle sessions: %v", need, *idleSessions, err)
	}
}

// idleLoadProc is the child process that runs the target and the clients.
type idleLoadProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startIdleLoad re-runs this test binary as the load process for n
// sessions of svc-ops through h.
func startIdleLoad(b *testing.B, h *harness, n int) *idleLoadProc {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), idleLoadEnv+"=1", "IDLE_CA="+h.srv.CA.AuthorizedKey(),
		"IDLE_KEY="+h.keys["svc-ops"], "IDLE_BASTION="+h.addr, "IDLE_USER=svc-ops@web", "IDLE_SESSIONS="+strconv.Itoa(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	require.NoError(b, err)
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	p := &idleLoadProc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	b.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if b.Failed() && stderr.Len() > 0 {
			b.Logf("load process: %s", stderr.String())
		}
	})
	return p
}

// target reads the address and host key of the load's Go target.
func (p *idleLoadProc) target() (Target, error) {
	f, err := p.line("target")
	if err != nil || len(f) < 2 {
		return Target{}, fmt.Errorf("load process target: %v %q", err, f)
	}
	hk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(strings.Join(f[1:], " ")))
	if err != nil {
		return Target{}, fmt.Errorf("load process host key: %w", err)
	}
	return Target{Name: "web", Address: f[0], HostKeys: []gossh.PublicKey{hk}}, nil
}

// open tells the load to open its sessions and returns how long that took.
func (p *idleLoadProc) open() (time.Duration, error) {
	if _, err := fmt.Fprintln(p.in, "open"); err != nil {
		return 0, err
	}
	f, err := p.line("open")
	if err != nil {
		return 0, err
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	return time.Duration(secs * float64(time.Second)), err
}

// close closes the load's stdin: it closes every session and exits.
func (p *idleLoadProc) close(b *testing.B) {
	p.in.Close()
	require.NoError(b, p.cmd.Wait(), "load process")
}

// line reads the load's next line, which must start with word, and
// returns its other fields; "error MSG" is returned as an error.
func (p *idleLoadProc) line(word string) ([]string, error) {
	type read struct {
		s   string
		err error
	}
	ch := make(chan read, 1)
	go func() { s, err := p.out.ReadString('\n'); ch <- read{s, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("read from load process: %w", r.err)
		}
		f := strings.Fields(r.s)
		if len(f) == 0 || f[0] != word {
			return nil, fmt.Errorf("load process: %s", strings.TrimSpace(r.s))
		}
		return f[1:], nil
	case <-time.After(idleOpenTimeout):
		return nil, fmt.Errorf("load process said nothing for %s", idleOpenTimeout)
	}
}

// idleLoad is the load process: it serves a Go SSH target trusting the
// CA, prints "target ADDR HOSTKEY", opens the sessions when told "open"
// and prints "open SECONDS", then holds them until stdin closes.
func idleLoad(stdin io.Reader, stdout io.Writer) error {
	caKey, _, _, _, err := gossh.ParseAuthorizedKey([]byte(os.Getenv("IDLE_CA")))
	if err != nil {
		return fmt.Errorf("IDLE_CA: %w", err)
	}
	n, err := strconv.Atoi(os.Getenv("IDLE_SESSIONS"))
	if err != nil {
		return fmt.Errorf("IDLE_SESSIONS: %w", err)
	}
	cfg, err := idleClientConfig(os.Getenv("IDLE_KEY"), os.Getenv("IDLE_USER"))
	if err != nil {
		return err
	}
	target, stop, err := startGoTarget(caKey)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "target %s %s", target.Address, gossh.MarshalAuthorizedKey(target.HostKeys[0]))
	in := bufio.NewReader(stdin)
	if l, err := in.ReadString('\n'); err != nil || strings.TrimSpace(l) != "open" {
		return fmt.Errorf("want open, got %q %v", l, err)
	}
	start := time.Now()
	clients, err := openIdle(n, os.Getenv("IDLE_BASTION"), cfg)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if err != nil {
		fmt.Fprintf(stdout, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return err
	}
	fmt.Fprintf(stdout, "open %.3f\n", time.Since(start).Seconds())
	_, _ = in.ReadString('\n') // until stdin closes
	return nil
}

// idleClientConfig logs in with the private key file at keyPath as user.
func idleClientConfig(keyPath, user string) (*gossh.ClientConfig, error) {
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	key, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	return &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}, nil
}

// startGoTarget is a lightweight SSH target trusting userCA whose sessions
// idle until the client leaves: OpenSSH's per-session processes would make
// the target, not the bastion, the bottleneck.
func startGoTarget(userCA gossh.PublicKey) (Target, func(), error) {
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Target{}, nil, err
	}
	signer, err := gossh.NewSignerFromKey(hk)
	if err != nil {
		return Target{}, nil, err
	}
	isCA := func(k gossh.PublicKey) bool { return bytes.Equal(k.Marshal(), userCA.Marshal()) }
	checker := &gossh.CertChecker{IsUserAuthority: isCA}
	srv := &gliderssh.Server{
		Handler: func(s gliderssh.Session) { <-s.Context().Done() },
		PublicKeyHandler: func(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
			c, ok := key.(*gossh.Certificate)
			return ok && checker.CheckCert(ctx.User(), c) == nil && isCA(c.SignatureKey)
		},
	}
	srv.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Target{}, nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	t := Target{Name: "web", Address: ln.Addr().String(), HostKeys: []gossh.PublicKey{signer.PublicKey()}}
	return t, func() { _ = srv.Close() }, nil
}

// openIdle opens n idle shell sessions, idleDialers at a time, and returns
// the clients opened, also on error.
func openIdle(n int, addr string, cfg *gossh.ClientConfig) ([]*gossh.Client, error) {
	var (
		mu      sync.Mutex
		clients []*gossh.Client
		errs    []error
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	for range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				c, err := openIdleSession(addr, cfg)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					clients = append(clients, c)
				}
				failed := len(errs) > 0
				mu.Unlock()
				if failed {
					return
				}
			}
		}()
	}
	wg.Wait()
	return clients, errors.Join(errs...)
}

// openIdleSession logs in and starts a shell that then does nothing.
func openIdleSession(addr string, cfg *gossh.ClientConfig) (*gossh.Client, error) {
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("dial bastion: %w", err)
	}
	s, err := c.NewSession()
	if err == nil {
		err = s.Shell()
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open shell: %w", err)
	}
	return c, nil
}
