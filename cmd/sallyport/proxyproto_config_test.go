package main

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProxyProtocolConfig: each listener's proxy_protocol block reaches its
// server as the trusted networks, and a block that would trust everyone,
// no one, or a mistyped network is refused with the key that is wrong.
func TestProxyProtocolConfig(t *testing.T) {
	load := func(yaml string) (*Config, error) {
		return ParseConfig("sallyport.yaml", []byte("data_dir: "+t.TempDir()+"\n"+yaml))
	}
	cfg, err := load("ssh: {proxy_protocol: {trusted: [10.0.1.0/24, '2001:db8::/64']}}\n" +
		"postgres: {proxy_protocol: {trusted: [10.0.2.7/32]}}\n")
	require.NoError(t, err)
	pp := cfg.SSH.ProxyProtocol.settings()
	require.NotNil(t, pp)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("2001:db8::/64")}, pp.Trusted)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.2.7/32")}, cfg.Postgres.ProxyProtocol.settings().Trusted)
	assert.Nil(t, cfg.MySQL.ProxyProtocol.settings(), "no block: no header is read")

	for _, tc := range []struct{ yaml, want string }{
		{"mysql: {proxy_protocol: {trusted: []}}", "mysql.proxy_protocol.trusted: name the load balancers' networks"},
		{"ssh: {proxy_protocol: {trusted: [10.0.1.7]}}", `ssh.proxy_protocol.trusted[0] "10.0.1.7": want a CIDR; one host is 10.0.1.7/32`},
		{"postgres: {proxy_protocol: {trusted: [balancer.internal]}}", `postgres.proxy_protocol.trusted[0] "balancer.internal": want a CIDR`},
		{"postgres: {proxy_protocol: {trusted: [0.0.0.0/0]}}", "trusts every peer"},
		{"mysql: {proxy_protocol: {trusted: ['::/0']}}", "trusts every peer"},
		{"ssh: {proxy_protocol: {trusted: [10.0.1.7/24]}}", "did you mean 10.0.1.0/24?"},
		{"ssh: {proxy_protocol: {trusted: [10.0.1.0/24], require: true}}", "require"},
	} {
		_, err := load(tc.yaml + "\n")
		assert.ErrorContains(t, err, tc.want, "config %s", tc.yaml)
	}
}
