package tlscert_test

import (
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/proxy/tlscert"
)

// machine is a host named bastion-1 with a loopback, a LAN, a link-local
// and a global IPv6 address.
var machine = tlscert.Machine{
	Hostname: func() (string, error) { return "bastion-1", nil },
	InterfaceAddrs: func() ([]net.Addr, error) {
		var out []net.Addr
		for _, c := range []string{"127.0.0.1/8", "10.0.0.5/24", "fe80::1/64", "2001:db8::5/64", "::1/128"} {
			ip, n, _ := net.ParseCIDR(c)
			out = append(out, &net.IPNet{IP: ip, Mask: n.Mask})
		}
		return out, nil
	},
}

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestListenerNames(t *testing.T) {
	wildcard := tlscert.Names{DNS: []string{"bastion-1", "db.example.com", "localhost"},
		IPs: ips("10.0.0.5", "127.0.0.1", "::1", "2001:db8::5")}
	tests := []struct {
		listen string
		hosts  []string
		want   tlscert.Names
	}{
		{"10.0.0.5:6432", nil, tlscert.Names{IPs: ips("10.0.0.5")}},
		{"10.0.0.5:6432", []string{"DB.Example.com.", "192.0.2.7", "::ffff:198.51.100.1"},
			tlscert.Names{DNS: []string{"db.example.com"}, IPs: ips("10.0.0.5", "192.0.2.7", "198.51.100.1")}},
		{"127.0.0.1:6432", nil, tlscert.Names{DNS: []string{"localhost"}, IPs: ips("127.0.0.1")}},
		{"[::1]:3307", nil, tlscert.Names{DNS: []string{"localhost"}, IPs: ips("::1")}},
		{"localhost:3307", nil, tlscert.Names{DNS: []string{"localhost"}, IPs: ips("127.0.0.1", "::1")}},
		{"db.example.com:3307", nil, tlscert.Names{DNS: []string{"db.example.com"}}},
		{":6432", []string{"db.example.com"}, wildcard},
		{"0.0.0.0:6432", []string{"db.example.com"}, wildcard},
		{"[::]:6432", []string{"db.example.com", "localhost"}, wildcard},
	}
	for _, tc := range tests {
		t.Run(tc.listen, func(t *testing.T) {
			got, err := machine.ListenerNames(tc.listen, tc.hosts)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestListenerNamesWithoutHostname: a machine whose host name cannot be
// told (or is no DNS name) is still named by its addresses.
func TestListenerNamesWithoutHostname(t *testing.T) {
	for _, hostname := range []func() (string, error){
		func() (string, error) { return "", errors.New("no uts namespace") },
		func() (string, error) { return "my_host", nil },
	} {
		m := machine
		m.Hostname = hostname
		got, err := m.ListenerNames(":6432", nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"localhost"}, got.DNS)
		assert.Equal(t, ips("10.0.0.5", "127.0.0.1", "::1", "2001:db8::5"), got.IPs)
	}
}

func TestCheckHost(t *testing.T) {
	for host, ok := range map[string]bool{
		"db.example.com": true, "localhost": true, "*.db.example.com": true, "10.0.0.5": true, "2001:db8::5": true,
		"db.example.com.": true, "": false, "db..example.com": false, "db.example.com:6432": false,
		"http://db": false, "-db.example.com": false, "db.*.example.com": false, "my_host": false,
	} {
		err := tlscert.CheckHost(host)
		assert.Equal(t, ok, err == nil, "CheckHost(%q): %v", host, err)
	}
}

// TestLoadOrCreate: the generated certificate names host names as DNS SANs
// and addresses as IP SANs, verifies for them and for nothing else, and is
// kept while it still names every wanted name.
func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "keys", "pg.crt"), filepath.Join(dir, "keys", "pg.key")
	names := tlscert.ParseNames("db.example.com", "localhost", "10.0.0.5", "::1")
	now := time.Now()
	cert, change, err := tlscert.LoadOrCreate(certFile, keyFile, names, now)
	require.NoError(t, err)
	require.NotNil(t, change)
	assert.Nil(t, change.Replaced, "nothing was on disk")
	leaf := cert.Leaf
	assert.Equal(t, []string{"db.example.com", "localhost"}, leaf.DNSNames)
	assert.Equal(t, []string{"10.0.0.5", "::1"}, []string{leaf.IPAddresses[0].String(), leaf.IPAddresses[1].String()})
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, host := range []string{"db.example.com", "localhost", "10.0.0.5", "::1"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots})
		assert.NoError(t, err, "verify-full for %s", host)
	}
	for _, host := range []string{"other.example.com", "10.0.0.6", "127.0.0.1"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots})
		assert.Error(t, err, "verify-full for %s, which the certificate does not name", host)
	}
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, change, err := tlscert.LoadOrCreate(certFile, keyFile, tlscert.ParseNames("localhost", "10.0.0.5"), now)
	require.NoError(t, err)
	assert.Nil(t, change, "a certificate naming more than wanted is kept")
	assert.Equal(t, cert.Certificate, again.Certificate)
}

// TestLoadOrCreateReplaces: a generated certificate that lacks a wanted
// name (the config changed) or has expired is made anew, on disk too.
func TestLoadOrCreateReplaces(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "pg.crt"), filepath.Join(dir, "pg.key")
	now := time.Now()
	old, _, err := tlscert.LoadOrCreate(certFile, keyFile, tlscert.ParseNames("localhost", "127.0.0.1"), now)
	require.NoError(t, err)

	wanted := tlscert.ParseNames("localhost", "127.0.0.1", "db.example.com", "10.0.0.5")
	cert, change, err := tlscert.LoadOrCreate(certFile, keyFile, wanted, now)
	require.NoError(t, err)
	require.NotNil(t, change, "the certificate lacks names the config wants")
	assert.Equal(t, old.Leaf.Raw, change.Replaced.Raw)
	assert.Equal(t, "db.example.com, 10.0.0.5", change.Missing.String())
	assert.False(t, change.Expired)
	assert.NoError(t, cert.Leaf.VerifyHostname("db.example.com"))
	assert.NoError(t, cert.Leaf.VerifyHostname("10.0.0.5"))
	onDisk, change, err := tlscert.LoadOrCreate(certFile, keyFile, wanted, now)
	require.NoError(t, err)
	assert.Nil(t, change, "the new certificate was written")
	assert.Equal(t, cert.Certificate, onDisk.Certificate)

	_, change, err = tlscert.LoadOrCreate(certFile, keyFile, wanted, now.Add(6*365*24*time.Hour))
	require.NoError(t, err)
	require.NotNil(t, change)
	assert.True(t, change.Expired)
	assert.True(t, change.Missing.Empty())
}

// TestLoadOrCreateKeepsUnreadable: a certificate file that exists but does
// not load is an error for the operator to look at, not overwritten.
func TestLoadOrCreateKeepsUnreadable(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "pg.crt"), filepath.Join(dir, "pg.key")
	require.NoError(t, os.WriteFile(certFile, []byte("not a certificate"), 0o644))
	_, _, err := tlscert.LoadOrCreate(certFile, keyFile, tlscert.ParseNames("localhost"), time.Now())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "load listener certificate "+certFile)
	data, err := os.ReadFile(certFile)
	require.NoError(t, err)
	assert.Equal(t, "not a certificate", string(data))
}
