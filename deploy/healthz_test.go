package deploy

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// serveReadyTimeout bounds how long `sallyport serve` on SQLite takes to
// open its listeners on a loaded test machine.
const serveReadyTimeout = 30 * time.Second

// TestImageBuildsWithoutCgo: the Dockerfile builds with CGO_ENABLED=0 for
// distroless/static, which has no libc. Every package the binary needs must
// build without cgo (go list, without compiling everything a second time),
// and a CGO_ENABLED=0 build has no dynamic loader (the small probe, built).
func TestImageBuildsWithoutCgo(t *testing.T) {
	cmd := exec.Command("go", "list", "-e", "-deps", "-f", "{{with .Error}}{{$.ImportPath}}: {{.}}{{end}}", "../cmd/sallyport", "./healthcheck")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("CGO_ENABLED=0 go list: %v\n%s", err, out)
	}
	f, err := elf.Open(buildBinary(t, "./healthcheck", []string{"CGO_ENABLED=0"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("healthcheck built with CGO_ENABLED=0 has program header %v; want a static binary", p.Type)
		}
	}
}

// TestHealthcheckProbesServe runs `sallyport serve` on the systemd unit's
// config and the image's HEALTHCHECK binary against it: the probe path every
// manifest uses is one the bastion answers.
func TestHealthcheckProbesServe(t *testing.T) {
	bin, probe := sallyportBinary(t), buildBinary(t, "./healthcheck", []string{"CGO_ENABLED=0"})
	var doc yaml.Node
	if err := yaml.Unmarshal(readFile(t, unitConfig), &doc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	relocatePaths(doc.Content[0], dir)
	loopbackListeners(doc.Content[0])
	data, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sallyport.yaml")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="sallyport serving" web=(\S+)`)
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default: // already reported; keep draining the log
				}
			}
		}
	}()
	var web string
	select {
	case web = <-addr:
	case <-time.After(serveReadyTimeout):
		t.Fatalf("sallyport serve did not log its web address within %v", serveReadyTimeout)
	}

	for _, tc := range []struct {
		url    string
		wantOK bool
	}{
		{"http://" + web + "/healthz", true},
		{"http://" + web + "/no-such-path", false},
	} {
		out, err := exec.Command(probe, tc.url).CombinedOutput()
		if got := err == nil; got != tc.wantOK {
			t.Errorf("sallyport-healthcheck %s: ok=%v (%v, %s), want ok=%v", tc.url, got, err, strings.TrimSpace(string(out)), tc.wantOK)
		}
	}
}

// loopbackListeners moves every listen address to a free loopback port.
func loopbackListeners(n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "listen" {
				n.Content[i+1].Value = "127.0.0.1:0"
				continue
			}
			loopbackListeners(n.Content[i+1])
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			loopbackListeners(c)
		}
	}
}
