package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
	sshproxy "github.com/sallyport/sallyport/proxy/ssh"
)

// sshComponent runs the SSH listener on ssh.listen for the targets of kind
// ssh. The user CA key (ca.ssh_user_key_file, or data_dir/keys/ssh_user_ca)
// and the bastion's host key (ssh.host_key_file, or
// data_dir/keys/ssh_host_ed25519_key) are created on first use; a key file
// others can read stops serve.
func (d *serveDeps) sshComponent() (*component, error) {
	cfg := d.ap.cfg
	caKey, err := ca.LoadOrCreateKey(caKeyPathSSHUser(cfg))
	if err != nil {
		return nil, fmt.Errorf("load ssh user ca: %w", err)
	}
	userCA := &ca.SSHUserCA{Key: caKey, TTL: cfg.SSH.CertTTL.D(), SourceAddress: cfg.SSH.SourceAddress}
	if err := userCA.Validate(); err != nil {
		return nil, configErrorf("ssh.source_address: %v", err)
	}
	hostSigner, err := loadSSHHostKey(sshHostKeyPath(cfg))
	if err != nil {
		return nil, err
	}
	targets, err := sshTargets(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.SSH.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on ssh.listen %s: %w", cfg.SSH.Listen, err)
	}
	srv := &sshproxy.Server{
		Gate: d.ap.reg, Live: d.live, Recorder: d.recorder, CA: userCA,
		HostSigners: []gossh.Signer{hostSigner},
		Targets:     func(name string) (sshproxy.Target, bool) { t, ok := targets[name]; return t, ok },
		IdleTimeout: cfg.SSH.IdleTimeout.D(), MaxSession: cfg.SSH.MaxSession.D(),
		FirstChannelTimeout: cfg.SSH.FirstChannelTimeout.D(),
		ProxyProtocol:       cfg.SSH.ProxyProtocol.settings(),
		Logger:              d.log.With("proxy", "ssh"),
	}
	return &component{
		name: "ssh",
		run: func(ctx context.Context) error {
			if err := srv.Serve(ctx, ln); !errors.Is(err, sshproxy.ErrServerClosed) {
				return err
			}
			return nil
		},
		shutdown: srv.Shutdown,
		listener: true,
	}, nil
}

// loadSSHHostKey loads or creates the bastion's ed25519 host key, so that
// clients' known_hosts stay valid across restarts.
func loadSSHHostKey(path string) (gossh.Signer, error) {
	key, err := ca.LoadOrCreateKey(path)
	if err != nil {
		return nil, fmt.Errorf("load ssh host key: %w", err)
	}
	signer, err := gossh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("load ssh host key %s: %w", path, err)
	}
	return signer, nil
}

// sshTargets parses every ssh target's host_key and host_ca. A target with
// neither stays configured: its sessions are refused at connect, as a host
// key is never trusted on first use.
func sshTargets(cfg *Config) (map[string]sshproxy.Target, error) {
	out := map[string]sshproxy.Target{}
	for _, tc := range cfg.Targets {
		if tc.Kind != "ssh" {
			continue
		}
		t := sshproxy.Target{Name: tc.Name, Address: tc.Address}
		if tc.HostKey != "" {
			k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(tc.HostKey))
			if err != nil {
				return nil, configErrorf("target %s: host_key: %v (want a line like \"ssh-ed25519 AAAA...\" from the target's /etc/ssh/ssh_host_ed25519_key.pub)", tc.Name, err)
			}
			t.HostKeys = []gossh.PublicKey{k}
		}
		if tc.HostCA != "" {
			k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(tc.HostCA))
			if err != nil {
				return nil, configErrorf("target %s: host_ca: %v (want the host CA's public key line)", tc.Name, err)
			}
			t.HostCA = k
		}
		out[tc.Name] = t
	}
	return out, nil
}
