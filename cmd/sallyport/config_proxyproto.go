package main

import (
	"net/netip"

	"github.com/sallyport/sallyport/proxy"
)

// ProxyProtocolConfig is a listener's proxy_protocol block (ssh:,
// postgres:, mysql:): the load balancers in front of it that send the
// PROXY protocol (v1 or v2), and whose header then names the client.
type ProxyProtocolConfig struct {
	// Trusted are the balancers' networks, as CIDRs ("10.0.1.0/24",
	// "2001:db8::/64"; one host is "10.0.1.7/32"). A peer in one must open
	// with a PROXY header and is refused without it; any other peer that
	// sends one is refused. Required.
	Trusted []string `yaml:"trusted"`
}

// settings is the block as the proxies take it; nil when there is none.
// Validate has checked it.
func (p *ProxyProtocolConfig) settings() *proxy.ProxyProtocol {
	if p == nil {
		return nil
	}
	pp := &proxy.ProxyProtocol{}
	for _, s := range p.Trusted {
		if n, err := netip.ParsePrefix(s); err == nil {
			pp.Trusted = append(pp.Trusted, n)
		}
	}
	return pp
}

// validateProxyProtocol checks the proxy_protocol blocks of the three
// listeners.
func (c *Config) validateProxyProtocol(add func(string, ...any)) {
	for _, l := range []struct {
		block string
		pp    *ProxyProtocolConfig
	}{{"ssh", c.SSH.ProxyProtocol}, {"postgres", c.Postgres.ProxyProtocol}, {"mysql", c.MySQL.ProxyProtocol}} {
		if l.pp == nil {
			continue
		}
		if len(l.pp.Trusted) == 0 {
			add("%s.proxy_protocol.trusted: name the load balancers' networks (CIDRs); without any, every client would be refused", l.block)
		}
		for i, s := range l.pp.Trusted {
			if msg := checkTrustedCIDR(s); msg != "" {
				add("%s.proxy_protocol.trusted[%d] %q: %s", l.block, i, s, msg)
			}
		}
	}
}

// checkTrustedCIDR says what is wrong with one trusted network; "" if
// nothing.
func checkTrustedCIDR(s string) string {
	n, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		if _, aerr := netip.ParseAddr(s); aerr == nil {
			return "want a CIDR; one host is " + s + "/32 (IPv4) or /128 (IPv6)"
		}
		return "want a CIDR such as 10.0.1.0/24"
	case n.Bits() == 0:
		return "trusts every peer, so any client could claim any address; name the balancers' networks"
	case n != n.Masked():
		return "has host bits set; did you mean " + n.Masked().String() + "?"
	}
	return ""
}
