package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// The PROXY protocol (HAProxy's spec, versions 1 and 2) carries the address
// of the client a load balancer accepted in front of the stream it opens to
// the bastion. The header is parsed here rather than with
// github.com/pires/go-proxyproto: its Conn reads ahead through a buffer and
// hides the *net.TCPConn, so plain sessions could no longer be handed to
// the epoll Pump, and its current release needs a newer Go toolchain than
// the one sallyport builds with.

const (
	// v1MaxLen is the longest v1 header the spec allows, CRLF included.
	v1MaxLen = 107
	// v2FixedLen is the signature, version/command, family and length.
	v2FixedLen = 16
	// v2MaxBody bounds the addresses and TLVs of a v2 header. The spec
	// allows 64 KiB; balancers send a few hundred bytes (AWS NLB's VPC
	// endpoint TLV, HAProxy's SSL and unique-id TLVs), so 8 KiB leaves room
	// and refuses a peer that would make the bastion buffer more.
	v2MaxBody = 8 << 10
	// headerPrefixLen is read before the version is known: the shortest
	// header ("PROXY UNKNOWN\r\n") is 15 bytes, so reading 15 never waits
	// for bytes a well-behaved sender does not send.
	headerPrefixLen = 15
)

// v2Signature opens every v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v1Signature opens every v1 header.
var v1Signature = []byte("PROXY ")

// ErrNoProxyHeader is returned when a peer that must send a PROXY header
// starts with anything else.
var ErrNoProxyHeader = errors.New("no PROXY protocol header")

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is set for a v2 LOCAL command and a v1 UNKNOWN line: the
	// balancer speaks for itself (health checks), and the connection's own
	// address stands.
	Local bool
	// Source is the client's address; zero when Local.
	Source netip.AddrPort
}

// ReadHeader reads exactly one PROXY header from r, v1 or v2, and not a byte
// more: what follows belongs to the protocol being proxied.
func ReadHeader(r io.Reader) (Header, error) {
	var buf [v2FixedLen]byte
	// Six bytes tell a header from a client's own first message, so one
	// that sends a short message and waits is refused at once.
	if _, err := io.ReadFull(r, buf[:len(v1Signature)]); err != nil {
		return Header{}, fmt.Errorf("read PROXY header: %w", err)
	}
	if !bytes.Equal(buf[:6], v1Signature) && !bytes.Equal(buf[:6], v2Signature[:6]) {
		return Header{}, ErrNoProxyHeader
	}
	if _, err := io.ReadFull(r, buf[len(v1Signature):headerPrefixLen]); err != nil {
		return Header{}, fmt.Errorf("read PROXY header: %w", err)
	}
	switch {
	case bytes.HasPrefix(buf[:], v2Signature):
		return readV2(r, buf)
	case bytes.HasPrefix(buf[:], v1Signature):
		return readV1(r, buf[:headerPrefixLen])
	}
	return Header{}, ErrNoProxyHeader
}

// readV1 reads the rest of a v1 line, one byte at a time so that nothing
// past its CRLF is consumed.
func readV1(r io.Reader, prefix []byte) (Header, error) {
	line := append(make([]byte, 0, v1MaxLen), prefix...)
	var b [1]byte
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) == v1MaxLen {
			return Header{}, errors.New("read PROXY v1 header: no CRLF within 107 bytes")
		}
		if bytes.IndexByte(line, '\n') >= 0 {
			return Header{}, errors.New("read PROXY v1 header: line feed without carriage return")
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, fmt.Errorf("read PROXY v1 header: %w", err)
		}
		line = append(line, b[0])
	}
	return parseV1(string(line[len(v1Signature) : len(line)-2]))
}

// parseV1 parses "TCP4 SRC DST SPORT DPORT", "TCP6 …" or "UNKNOWN…".
func parseV1(s string) (Header, error) {
	if strings.HasPrefix(s, "UNKNOWN") {
		// The spec: the receiver ignores the rest of an UNKNOWN line.
		return Header{Version: 1, Local: true}, nil
	}
	f := strings.Split(s, " ")
	if len(f) != 5 || (f[0] != "TCP4" && f[0] != "TCP6") {
		return Header{}, fmt.Errorf("parse PROXY v1 header %q: want TCP4|TCP6 SRC DST SPORT DPORT", s)
	}
	src, err := v1Addr(f[1], f[3], f[0] == "TCP4")
	if err != nil {
		return Header{}, fmt.Errorf("parse PROXY v1 source: %w", err)
	}
	if _, err := v1Addr(f[2], f[4], f[0] == "TCP4"); err != nil {
		return Header{}, fmt.Errorf("parse PROXY v1 destination: %w", err)
	}
	return Header{Version: 1, Source: src}, nil
}

// v1Addr parses an address and port of a v1 line, in the family it names.
func v1Addr(ip, port string, v4 bool) (netip.AddrPort, error) {
	family := "TCP6"
	if v4 {
		family = "TCP4"
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() != v4 || a.Zone() != "" || a.String() != ip { // canonical only, as inet_ntop writes it
		return netip.AddrPort{}, fmt.Errorf("address %q is not a %s address in canonical form", ip, family)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (len(port) > 1 && port[0] == '0') {
		return netip.AddrPort{}, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// v2 command, family and transport values.
const (
	v2CmdLocal     = 0x0
	v2CmdProxy     = 0x1
	v2FamInet      = 0x1
	v2FamInet6     = 0x2
	v2TransStream  = 0x1
	v2Inet4AddrLen = 12
	v2Inet6AddrLen = 36
)

// readV2 reads the body of a v2 header whose first 15 bytes are in fixed.
func readV2(r io.Reader, fixed [v2FixedLen]byte) (Header, error) {
	if _, err := io.ReadFull(r, fixed[headerPrefixLen:]); err != nil {
		return Header{}, fmt.Errorf("read PROXY v2 header: %w", err)
	}
	if fixed[12]>>4 != 2 {
		return Header{}, fmt.Errorf("read PROXY v2 header: version %d", fixed[12]>>4)
	}
	n := int(binary.BigEndian.Uint16(fixed[14:16]))
	if n > v2MaxBody {
		return Header{}, fmt.Errorf("read PROXY v2 header: %d bytes of addresses and TLVs, more than %d", n, v2MaxBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Header{}, fmt.Errorf("read PROXY v2 header: %w", err)
	}
	return parseV2(fixed[12], fixed[13], body)
}

// parseV2 decodes a v2 header's command and addresses; the TLVs after them
// are checked for framing and otherwise ignored.
func parseV2(verCmd, famTrans byte, body []byte) (Header, error) {
	switch verCmd & 0xf {
	case v2CmdLocal:
		// Health checks: the spec says to use the connection's own
		// addresses and skip the body whatever its family.
		return Header{Version: 2, Local: true}, nil
	case v2CmdProxy:
	default:
		return Header{}, fmt.Errorf("parse PROXY v2 header: command %#x", verCmd&0xf)
	}
	if famTrans&0xf != v2TransStream {
		return Header{}, fmt.Errorf("parse PROXY v2 header: transport %#x is not a stream", famTrans&0xf)
	}
	var src netip.AddrPort
	var addrLen int
	switch famTrans >> 4 {
	case v2FamInet:
		addrLen = v2Inet4AddrLen
		if len(body) >= addrLen {
			src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		}
	case v2FamInet6:
		addrLen = v2Inet6AddrLen
		if len(body) >= addrLen {
			src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		}
	default:
		// Unspecified or unix: the bastion would have only the balancer's
		// address to judge the client by, so it refuses (the spec lets
		// the receiver choose).
		return Header{}, fmt.Errorf("parse PROXY v2 header: address family %#x carries no IP address", famTrans>>4)
	}
	if len(body) < addrLen {
		return Header{}, fmt.Errorf("parse PROXY v2 header: %d bytes of addresses, want %d", len(body), addrLen)
	}
	if err := checkTLVs(body[addrLen:]); err != nil {
		return Header{}, err
	}
	return Header{Version: 2, Source: src}, nil
}

// checkTLVs verifies that the TLVs after the addresses frame the rest of
// the header exactly: a header whose length disagrees with its contents is
// not parsed, it is refused.
func checkTLVs(b []byte) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("parse PROXY v2 TLVs: %d bytes left, a TLV needs 3", len(b))
		}
		n := 3 + int(binary.BigEndian.Uint16(b[1:3]))
		if n > len(b) {
			return fmt.Errorf("parse PROXY v2 TLV %#x: %d bytes, %d left", b[0], n, len(b))
		}
		b = b[n:]
	}
	return nil
}
