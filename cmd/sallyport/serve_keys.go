package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/ca"
	"github.com/sallyport/sallyport/iga/sqlstore"
	"github.com/sallyport/sallyport/recorder"
)

// sharedKey is a key every replica on one registry must hold alike.
type sharedKey struct {
	purpose   string // as recorded in the registry
	configKey string // where an operator points serve at the right key
	path      func(*Config) string
}

// sharedKeys are the keys replicas behind one load balancer must share.
// The database listeners' TLS certificates are not among them: clients
// with sslmode=require do not pin them, and those that verify them are
// served by postgres.tls_cert_file and mysql.tls_cert_file.
var sharedKeys = []sharedKey{
	// Targets trust one CA: `ca export` gives the same line everywhere.
	{"ssh-user-ca", "ca.ssh_user_key_file", caKeyPathSSHUser},
	// A recording signed by one replica verifies on any.
	{"recording", "recordings.signing_key_file", recordingKeyPath},
	// A client behind the balancer sees one host key, whichever replica
	// it lands on.
	{"ssh-host", "ssh.host_key_file", sshHostKeyPath},
	// A token minted through one replica authenticates on any.
	{"token", "tokens.signing_key_file", tokenKeyPath},
	// A console sign-in survives landing on another replica.
	{"web-session", "web.session_key_file", webSessionKeyPath},
}

// sshHostKeyPath is the bastion's SSH host key: ssh.host_key_file, or one
// generated under data_dir.
func sshHostKeyPath(cfg *Config) string {
	return keyPathOr(cfg, cfg.SSH.HostKeyFile, "keys/ssh_host_ed25519_key")
}

// tokenKeyPath is the key minted tokens are signed with:
// tokens.signing_key_file, or one generated under data_dir.
func tokenKeyPath(cfg *Config) string {
	return keyPathOr(cfg, cfg.Tokens.SigningKeyFile, "keys/token.key")
}

// webSessionKeyPath is the key console cookies are signed with:
// web.session_key_file, or one generated under data_dir.
func webSessionKeyPath(cfg *Config) string {
	return keyPathOr(cfg, cfg.Web.SessionKeyFile, "keys/web-session.key")
}

func keyPathOr(cfg *Config, configured, underDataDir string) string {
	if configured != "" {
		return configured
	}
	return cfg.Path(underDataDir)
}

// checkSharedKeys makes serve refuse to start with another key than the
// registry has seen for any of sharedKeys: the first replica records the
// keys' fingerprints, and every later one must match them, so `ca export`
// gives one answer, any replica verifies any recording and accepts any
// token, and clients see one host key.
func checkSharedKeys(ctx context.Context, cfg *Config, store *sqlstore.Store) error {
	for _, k := range sharedKeys {
		key, err := ca.LoadOrCreateKey(k.path(cfg))
		if err != nil {
			return fmt.Errorf("load %s key: %w", k.purpose, err)
		}
		fp := recorder.Fingerprint(key.Public().(ed25519.PublicKey))
		err = store.CheckKeyFingerprint(ctx, k.purpose, fp, time.Now())
		var mm *sqlstore.KeyMismatchError
		if errors.As(err, &mm) {
			return configErrorf("%s: the %s key %s (%s) is not the %s the registry recorded: set %s to the key file the other replicas use",
				k.configKey, k.purpose, mm.Got, k.path(cfg), mm.Recorded, k.configKey)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
