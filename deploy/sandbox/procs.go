package sandbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procInfo is what the sandbox reads of a process from /proc/PID/stat.
type procInfo struct {
	pid, ppid, pgid int
	state           string
	start           uint64 // clock ticks after boot; tells a reused pid apart
}

// live reports whether the process still runs: zombies hold no port or
// file and wait only for a reaper.
func (i procInfo) live() bool { return i.state != "Z" && i.state != "X" }

// readProc parses /proc/PID/stat.
func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procInfo{}, false
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procInfo{}, false
	}
	info := procInfo{pid: pid, state: f[0]}
	var errs [3]error
	info.ppid, errs[0] = strconv.Atoi(f[1])
	info.pgid, errs[1] = strconv.Atoi(f[2])
	info.start, errs[2] = strconv.ParseUint(f[19], 10, 64)
	return info, errs[0] == nil && errs[1] == nil && errs[2] == nil
}

// allProcs lists every process this one can see.
func allProcs() []procInfo {
	entries, _ := os.ReadDir("/proc")
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, ok := readProc(pid); ok {
			out = append(out, info)
		}
	}
	return out
}

// descendants lists the live processes below root at this moment.
func descendants(root int) []procInfo {
	children := map[int][]procInfo{}
	for _, pr := range allProcs() {
		children[pr.ppid] = append(children[pr.ppid], pr)
	}
	var out []procInfo
	queue := []int{root}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			if c.live() {
				out = append(out, c)
			}
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// stillRunning returns those of ps that are still the same live process.
func stillRunning(ps []procInfo) []procInfo {
	var out []procInfo
	for _, pr := range ps {
		now, ok := readProc(pr.pid)
		if ok && now.start == pr.start && now.live() {
			out = append(out, pr)
		}
	}
	return out
}

// groupAlive reports whether any live process is in group pgid.
func groupAlive(pgid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, pr := range allProcs() {
		if pr.pgid == pgid && pr.live() {
			return true
		}
	}
	return false
}
