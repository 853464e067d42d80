package recorder

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// keyComment is written into generated key files and public key lines.
const keyComment = "sallyport-recording"

// LoadOrCreateSigningKey reads the OpenSSH-format ed25519 private key at path,
// creating it (mode 0600, parent directories 0700) when it does not exist.
// A key file readable by group or others is refused, as ssh does.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	key, err := loadSigningKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSigningKey(path)
	}
	return key, err
}

func loadSigningKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load recording key %s: mode %04o is open to others; chmod 600 it", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load recording key: %w", err)
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("load recording key %s: %w", path, err)
	}
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		return *k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("load recording key %s: %T is not an ed25519 key", path, raw)
	}
}

func createSigningKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate recording key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(key, keyComment)
	if err != nil {
		return nil, fmt.Errorf("encode recording key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create recording key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create recording key: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write recording key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync recording key %s: %w", path, err)
	}
	return key, f.Close()
}

// PublicKeyLine formats pub as one authorized_keys line
// ("ssh-ed25519 AAAA... sallyport-recording"), the form
// `sallyport ca export --type recording` prints and ssh-keygen -Y verify reads.
func PublicKeyLine(pub ed25519.PublicKey) string {
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + keyComment
}

// ParsePublicKey reads an ed25519 public key in authorized_keys form.
func ParsePublicKey(line []byte) (ed25519.PublicKey, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, fmt.Errorf("parse recording public key: %w", err)
	}
	return ed25519FromSSH(pk)
}

func ed25519FromSSH(pk ssh.PublicKey) (ed25519.PublicKey, error) {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		return nil, fmt.Errorf("%s key is not an ed25519 key", pk.Type())
	}
	ed, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s key is not an ed25519 key", pk.Type())
	}
	return ed, nil
}

// Fingerprint is the OpenSSH SHA256 fingerprint of pub ("SHA256:...").
func Fingerprint(pub ed25519.PublicKey) string {
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "invalid-key"
	}
	return ssh.FingerprintSHA256(sp)
}
