package measure

import (
	"net"
	"testing"

	"github.com/sallyport/sallyport/proxy"
)

// PumpRelay relays loopback connections to addr through a proxy.Pump
// whose flows pass every byte on untouched, until the benchmark ends, and
// returns its port: sallyport's relay without the audit and the recording.
func PumpRelay(tb testing.TB, addr string) int {
	var pump proxy.Pump
	pass := func(_ *proxy.Link, p []byte) ([]byte, error) { return p, nil }
	return Serve(tb, func(c net.Conn) {
		up, err := net.Dial("tcp", addr)
		if err != nil {
			c.Close()
			return
		}
		l, err := pump.Link(c, up, nil, nil, pass, pass)
		if err != nil {
			c.Close()
			up.Close()
			return
		}
		l.Start()
		client, target, _ := l.Wait()
		client.Close()
		target.Close()
	})
}
