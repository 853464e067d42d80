// Package tlscert keeps the TLS certificates the database listeners present
// to their clients: the names a listener is reached by, and a self-signed
// certificate for them that is made again when those names change.
// cmd/sallyport uses it for the PostgreSQL and MySQL listeners; the
// proxies' tests use it for theirs.
package tlscert

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Names are the host names and IP addresses a certificate is valid for: its
// DNS and IP subject alternative names.
type Names struct {
	DNS []string     // lower case, without a trailing dot
	IPs []netip.Addr // IPv4 addresses unmapped
}

// String lists the names, host names first, comma-separated.
func (n Names) String() string {
	all := slices.Clone(n.DNS)
	for _, ip := range n.IPs {
		all = append(all, ip.String())
	}
	return strings.Join(all, ", ")
}

// Empty reports whether n names nothing.
func (n Names) Empty() bool { return len(n.DNS) == 0 && len(n.IPs) == 0 }

// ParseNames sorts hosts into host names and IP addresses, each once. Hosts
// are expected valid (CheckHost).
func ParseNames(hosts ...string) Names {
	var n Names
	for _, h := range hosts {
		n.add(h)
	}
	n.sort()
	return n
}

func (n *Names) add(host string) {
	if ip, err := netip.ParseAddr(host); err == nil {
		n.IPs = append(n.IPs, ip.Unmap())
		return
	}
	n.DNS = append(n.DNS, strings.TrimSuffix(strings.ToLower(host), "."))
}

func (n *Names) sort() {
	slices.Sort(n.DNS)
	n.DNS = slices.Compact(n.DNS)
	slices.SortFunc(n.IPs, netip.Addr.Compare)
	n.IPs = slices.Compact(n.IPs)
}

// missingFrom returns the names of n that have does not carry.
func (n Names) missingFrom(have Names) Names {
	var m Names
	for _, d := range n.DNS {
		if !slices.Contains(have.DNS, d) {
			m.DNS = append(m.DNS, d)
		}
	}
	for _, ip := range n.IPs {
		if !slices.Contains(have.IPs, ip) {
			m.IPs = append(m.IPs, ip)
		}
	}
	return m
}

// hostRE is a DNS name, optionally a wildcard's leftmost label.
var hostRE = regexp.MustCompile(`^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.?$`)

// CheckHost says what is wrong with host as a certificate name: it must be
// an IP address or a DNS name (a leading "*." makes a wildcard).
func CheckHost(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if len(host) > 253 || !hostRE.MatchString(host) {
		return fmt.Errorf("%q is neither an IP address nor a DNS name", host)
	}
	return nil
}

// Machine answers what the certificate of a listener on every address (a
// wildcard listen such as ":6432") names of the host. Its fields are seams
// for tests.
type Machine struct {
	// Hostname is the machine's host name. Nil: os.Hostname.
	Hostname func() (string, error)
	// InterfaceAddrs lists the machine's addresses. Nil: net.InterfaceAddrs.
	InterfaceAddrs func() ([]net.Addr, error)
}

// ListenerNames returns the names clients reach a listener on listen
// (host:port) by: every one of hosts, and
//   - for a listen IP, that IP (and localhost with it when it is loopback);
//   - for a listen host name, that name (localhost: 127.0.0.1 and ::1 too);
//   - for a wildcard (":6432", "0.0.0.0:6432", "[::]:6432"), the machine's
//     host name, localhost, 127.0.0.1, ::1 and the machine's interface
//     addresses, link-local ones aside (a certificate cannot name their zone).
func (m Machine) ListenerNames(listen string, hosts []string) (Names, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return Names{}, fmt.Errorf("listen address %q: %w", listen, err)
	}
	var n Names
	for _, h := range hosts {
		n.add(h)
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case host == "" || err == nil && ip.IsUnspecified():
		if err := m.addMachine(&n); err != nil {
			return Names{}, err
		}
	case err == nil:
		n.IPs = append(n.IPs, ip.Unmap())
		if ip.IsLoopback() {
			n.DNS = append(n.DNS, "localhost")
		}
	default:
		n.add(host)
		if strings.EqualFold(host, "localhost") {
			n.add("127.0.0.1")
			n.add("::1")
		}
	}
	n.sort()
	return n, nil
}

// addMachine adds the names of every address the machine answers on.
func (m Machine) addMachine(n *Names) error {
	hostname, ifaddrs := m.Hostname, m.InterfaceAddrs
	if hostname == nil {
		hostname = os.Hostname
	}
	if ifaddrs == nil {
		ifaddrs = net.InterfaceAddrs
	}
	n.add("localhost")
	n.add("127.0.0.1")
	n.add("::1")
	// A host name that is no DNS name (or none at all) cannot be in a
	// certificate; the addresses still are.
	if name, err := hostname(); err == nil && name != "" && CheckHost(name) == nil {
		n.add(name)
	}
	addrs, err := ifaddrs()
	if err != nil {
		return fmt.Errorf("list the machine's addresses: %w", err)
	}
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		addr, ok := netip.AddrFromSlice(ip)
		if ok && !addr.IsLinkLocalUnicast() && !addr.IsUnspecified() {
			n.IPs = append(n.IPs, addr.Unmap())
		}
	}
	return nil
}
