package sandbox

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// FreePort returns a loopback TCP port nothing listens on now, for a server
// that is told its port before it binds.
//
// A port the kernel picks for 127.0.0.1:0 comes from its ephemeral range,
// the same range every outgoing connection takes its local port from; on a
// busy test machine one of those connections can take the port in the
// moment between this check and the server's bind ("address already in
// use"). So the port is chosen at random below the ephemeral range, where
// only listeners that name their port live, and never handed out twice by
// one process. Another process may still take it; the window is small and
// no longer shared with every connect.
func FreePort() (int, error) {
	low := ephemeralLow()
	const floor = 10000
	if low-floor >= 1000 {
		for range 200 {
			port := floor + rand.IntN(low-floor)
			if !claimPort(port) {
				continue
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				continue
			}
			l.Close()
			return port, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// claimPort reports whether port was not handed out before, and marks it.
func claimPort(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return low
}
