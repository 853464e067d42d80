// Package ca issues the per-session credentials sallyport hands to targets —
// SSH user certificates today, database roles and users with the database
// proxies — and keeps the long-lived keys they are signed with.
package ca

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// keyFileMode is the only mode a private key file is written with.
const keyFileMode = 0o600

// LoadOrCreateKey reads an OpenSSH-format ed25519 private key from path, or
// creates one there (mode 0600) when the file does not exist. A key file that
// group or others can read is refused: a leaked signing key forges every
// certificate or recording it vouches for.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if err := checkKeyMode(path); err != nil {
		return nil, err
	}
	return parseKey(path, data)
}

func checkKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat key %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("key %s is readable by others (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return nil
}

func parseKey(path string, data []byte) (ed25519.PrivateKey, error) {
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("parse key %s (want an OpenSSH ed25519 private key without passphrase): %w", path, err)
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey:
		return *k, nil
	default:
		return nil, fmt.Errorf("key %s is %T, want ed25519 (ssh-keygen -t ed25519 -N '')", path, raw)
	}
}

func createKey(path string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", path, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sallyport")
	if err != nil {
		return nil, fmt.Errorf("encode key for %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for key %s: %w", path, err)
	}
	// Write a temporary file, then link it into place: two processes starting
	// at once never see a half-written key, and neither overwrites the other's.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, fmt.Errorf("create key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndSync(tmp, pem.EncodeToMemory(block)); err != nil {
		return nil, fmt.Errorf("write key %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("install key %s: %w", path, err)
	}
	return priv, nil
}

func writeAndSync(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// AuthorizedKey returns the public half of key in authorized_keys form.
func AuthorizedKey(key ed25519.PrivateKey) string {
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		// An ed25519 public key always converts; anything else is a programming error.
		panic(fmt.Sprintf("convert ed25519 public key: %v", err))
	}
	return string(ssh.MarshalAuthorizedKey(pub))
}
