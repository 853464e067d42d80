package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// probeTimeout bounds each version probe (`ssh -V`, `git status`, ...).
const probeTimeout = 5 * time.Second

// startMarks are the facts logged before the first command.
func startMarks() [][2]string {
	return [][2]string{
		{"start", time.Now().UTC().Format(time.RFC3339)},
		{"loadavg-start", loadAvg()},
		{"cpu", cpuModel()},
		{"cores", strconv.Itoa(runtime.NumCPU())},
		{"memory", memTotal()},
		{"os", osName()},
		{"kernel", firstLine("/proc/sys/kernel/ostype") + " " + firstLine("/proc/sys/kernel/osrelease")},
		{"go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH},
		{"peers", peers()},
		{"commit", commit()},
	}
}

// endMarks are the facts logged after the last command.
func endMarks() [][2]string {
	return [][2]string{
		{"end", time.Now().UTC().Format(time.RFC3339)},
		{"loadavg-end", loadAvg()},
	}
}

// loadAvg is the 1, 5 and 15 minute load average.
func loadAvg() string {
	f := strings.Fields(firstLine("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	return procField("/proc/cpuinfo", "model name")
}

// memTotal is the machine's memory in GiB.
func memTotal() string {
	f := strings.Fields(procField("/proc/meminfo", "MemTotal"))
	if len(f) == 0 {
		return "unknown"
	}
	kib, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", kib/(1<<20))
}

func osName() string {
	v := procField("/etc/os-release", "PRETTY_NAME")
	return strings.Trim(v, `"`)
}

// procField is the value of the first "name: value" (or name=value) line.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			k, v, ok = strings.Cut(sc.Text(), "=")
		}
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

// peers are the versions of the servers and clients the benchmarks run.
func peers() string {
	var out []string
	for _, p := range []struct {
		name string
		args []string
		re   string
	}{
		{"OpenSSH", []string{"ssh", "-V"}, `OpenSSH_(\S+)`},
		{"PostgreSQL", []string{postgresBinary(), "--version"}, `\) (\S+)`},
		{"PgBouncer", []string{sbinBinary("pgbouncer"), "--version"}, `PgBouncer (\S+)`},
		{"MariaDB", []string{"mariadb", "--version"}, `(\d+\.\d+\.\d+-MariaDB)`},
		{"HAProxy", []string{sbinBinary("haproxy"), "-v"}, `HAProxy version (\S+)`},
	} {
		out = append(out, p.name+" "+probe(p.re, p.args...))
	}
	return strings.Join(out, ", ")
}

// probe runs a version command and returns the first match of re, or
// "not found".
func probe(re string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	b, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	m := regexp.MustCompile(re).FindSubmatch(b)
	if err != nil || m == nil {
		return "not found"
	}
	return string(m[1])
}

// postgresBinary is the newest Debian PostgreSQL server, as the sandbox picks.
func postgresBinary() string {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		return "postgres"
	}
	newest, best := found[0], 0
	for _, f := range found {
		if v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(f)))); v > best {
			newest, best = f, v
		}
	}
	return newest
}

// sbinBinary is the path of a Debian server binary that may be missing
// from a non-root PATH.
func sbinBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// commit is the checked-out commit, noting uncommitted changes.
func commit() string {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	head, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	s := strings.TrimSpace(string(head))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		s += " with uncommitted changes"
	}
	return s
}
