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

var sharedKeys = []sharedKey{
	{"ssh-user-ca", "ca.ssh_user_key_file", caKeyPathSSHUser},
	{"recording", "recordings.signing_key_file", recordingKeyPath},
}

// checkSharedKeys makes serve refuse to start with another SSH user CA or
// recording key than the registry has seen: the first replica records the
// keys' fingerprints, and every later one must match them, so `ca export`
// gives one answer and any replica verifies any recording.
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
