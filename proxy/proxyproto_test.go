package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// v2Header builds a v2 header: command (0 LOCAL, 1 PROXY), family and
// transport byte, source and destination, then tlvs as they are.
func v2Header(cmd, famTrans byte, src, dst netip.AddrPort, tlvs []byte) []byte {
	var body []byte
	if src.IsValid() {
		body = append(body, src.Addr().AsSlice()...)
		body = append(body, dst.Addr().AsSlice()...)
		body = binary.BigEndian.AppendUint16(body, src.Port())
		body = binary.BigEndian.AppendUint16(body, dst.Port())
	}
	body = append(body, tlvs...)
	h := append([]byte(nil), v2Signature...)
	h = append(h, 0x20|cmd, famTrans)
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	return append(h, body...)
}

// tlv is one type-length-value of a v2 header.
func tlv(typ byte, value []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

var (
	client4 = netip.MustParseAddrPort("198.51.100.7:52144")
	lb4     = netip.MustParseAddrPort("10.0.0.5:5432")
	client6 = netip.MustParseAddrPort("[2001:db8::7]:52144")
	lb6     = netip.MustParseAddrPort("[2001:db8::5]:5432")
)

func TestReadHeaderParsesExactly(t *testing.T) {
	const after = "\x00\x00\x00\x08\x04\xd2\x16\x2f" // an SSLRequest: the protocol's first bytes
	tests := []struct {
		name string
		in   []byte
		want Header
	}{
		{"v1 tcp4", []byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432\r\n"), Header{Version: 1, Source: client4}},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::7 2001:db8::5 52144 5432\r\n"), Header{Version: 1, Source: client6}},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Local: true}},
		{"v1 unknown with addresses", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), Header{Version: 1, Local: true}},
		{"v1 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			Header{Version: 1, Source: netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{"v2 inet", v2Header(1, 0x11, client4, lb4, nil), Header{Version: 2, Source: client4}},
		{"v2 inet6", v2Header(1, 0x21, client6, lb6, nil), Header{Version: 2, Source: client6}},
		{"v2 local", v2Header(0, 0x00, netip.AddrPort{}, netip.AddrPort{}, nil), Header{Version: 2, Local: true}},
		{"v2 local with addresses", v2Header(0, 0x11, lb4, lb4, nil), Header{Version: 2, Local: true}},
		{"v2 tlvs ignored", v2Header(1, 0x11, client4, lb4, append(tlv(0x05, []byte("unique-id")), tlv(0xEA, []byte("vpce-0123"))...)),
			Header{Version: 2, Source: client4}},
		{"v2 4 KB", v2Header(1, 0x11, client4, lb4, tlv(0x04, make([]byte, 4096-3))), Header{Version: 2, Source: client4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(append(tt.in, after...))
			got, err := ReadHeader(r)
			if err != nil {
				t.Fatalf("ReadHeader: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != after {
				t.Errorf("left %q for the protocol, want %q", rest, after)
			}
		})
	}
}

func TestReadHeaderRefusesMalformed(t *testing.T) {
	full := v2Header(1, 0x11, client4, lb4, tlv(0x05, []byte("id")))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"no header", []byte("SSH-2.0-OpenSSH_9.6\r\n"), "no PROXY protocol header"},
		{"postgres startup", []byte("\x00\x00\x00\x08\x04\xd2\x16\x2f\x00\x00\x00\x00\x00\x00\x00"), "no PROXY protocol header"},
		{"empty", nil, "EOF"},
		{"truncated prefix", []byte("PROXY TCP4"), "unexpected EOF"},
		{"v1 truncated", []byte("PROXY TCP4 198.51.100.7 10.0"), "EOF"},
		{"v1 without CRLF", []byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432" + strings.Repeat(" ", 80)), "no CRLF within 107 bytes"},
		{"v1 bare LF", []byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432\n\r\n"), "line feed without carriage return"},
		{"v1 wrong family", []byte("PROXY TCP4 2001:db8::7 10.0.0.5 52144 5432\r\n"), "not a TCP4 address"},
		{"v1 v4 as tcp6", []byte("PROXY TCP6 198.51.100.7 2001:db8::5 52144 5432\r\n"), "not a TCP6 address"},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 2001:db8::5 52144 5432\r\n"), "not a TCP6 address"},
		{"v1 not canonical", []byte("PROXY TCP6 2001:DB8:0::7 2001:db8::5 52144 5432\r\n"), "not a TCP6 address in canonical form"},
		{"v1 port too big", []byte("PROXY TCP4 198.51.100.7 10.0.0.5 65536 5432\r\n"), "not a number from 0 to 65535"},
		{"v1 port leading zero", []byte("PROXY TCP4 198.51.100.7 10.0.0.5 052144 5432\r\n"), "not a number from 0 to 65535"},
		{"v1 bad destination", []byte("PROXY TCP4 198.51.100.7 10.0.0 52144 5432\r\n"), "destination"},
		{"v1 extra field", []byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432 1\r\n"), "want TCP4|TCP6"},
		{"v1 double space", []byte("PROXY TCP4  198.51.100.7 10.0.0.5 52144 5432\r\n"), "want TCP4|TCP6"},
		{"v1 udp", []byte("PROXY UDP4 198.51.100.7 10.0.0.5 52144 5432\r\n"), "want TCP4|TCP6"},
		{"v2 truncated fixed", full[:15], "EOF"},
		{"v2 truncated body", full[:len(full)-1], "unexpected EOF"},
		{"v2 version 1", append(append([]byte(nil), full[:12]...), append([]byte{0x11}, full[13:]...)...), "version 1"},
		{"v2 command 2", v2Header(2, 0x11, client4, lb4, nil), "command 0x2"},
		{"v2 unspec family", v2Header(1, 0x01, netip.AddrPort{}, netip.AddrPort{}, nil), "carries no IP address"},
		{"v2 unix", v2Header(1, 0x31, netip.AddrPort{}, netip.AddrPort{}, make([]byte, 216)), "carries no IP address"},
		{"v2 datagram", v2Header(1, 0x12, client4, lb4, nil), "not a stream"},
		{"v2 short addresses", v2Header(1, 0x21, client4, lb4, nil), "want 36"},
		{"v2 tlv past the end", v2Header(1, 0x11, client4, lb4, []byte{0x05, 0x00, 0x09, 'x'}), "TLV 0x5"},
		{"v2 tlv stub", v2Header(1, 0x11, client4, lb4, []byte{0x05, 0x00}), "a TLV needs 3"},
		{"v2 over 8 KB", v2Header(1, 0x11, client4, lb4, tlv(0x04, make([]byte, 9000))), "more than 8192"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ReadHeader(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("got %+v, want an error with %q", h, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to say %q", err, tt.want)
			}
		})
	}
}

// FuzzReadHeader feeds arbitrary bytes: the parser must not panic, must not
// read past its header, and an address it returns must be spelled out in
// the bytes it read, in the place the spec puts it.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.7 10.0.0.5 52144 5432\r\nrest"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::5 52144 5432\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2Header(1, 0x11, client4, lb4, tlv(0x05, []byte("id"))))
	f.Add(v2Header(1, 0x21, client6, lb6, nil))
	f.Add(v2Header(0, 0x00, netip.AddrPort{}, netip.AddrPort{}, nil))
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := ReadHeader(r)
		if err != nil {
			if h != (Header{}) {
				t.Fatalf("error %v came with a header %+v", err, h)
			}
			return
		}
		read := in[:len(in)-r.Len()]
		if h.Local {
			if h.Source.IsValid() {
				t.Fatalf("local header with a source %v", h.Source)
			}
			return
		}
		switch h.Version {
		case 1:
			f := strings.Split(string(read), " ")
			if f[2] != h.Source.Addr().String() || f[4] != strconv.Itoa(int(h.Source.Port())) || !strings.HasSuffix(string(read), "\r\n") {
				t.Fatalf("v1 %q gave source %v", read, h.Source)
			}
		case 2:
			ip := read[16 : 16+len(h.Source.Addr().AsSlice())]
			if !bytes.Equal(ip, h.Source.Addr().AsSlice()) || !bytes.HasPrefix(read, v2Signature) {
				t.Fatalf("v2 % x gave source %v", read, h.Source)
			}
			if n := int(binary.BigEndian.Uint16(read[14:16])); n != len(read)-16 {
				t.Fatalf("v2 header says %d bytes follow, %d were read", n, len(read)-16)
			}
		default:
			t.Fatalf("version %d", h.Version)
		}
	})
}
