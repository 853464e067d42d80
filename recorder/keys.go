package recorder

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/ca"
)

// keyComment is written into generated key files and public key lines.
const keyComment = "sallyport-recording"

// LoadOrCreateSigningKey reads the OpenSSH-format ed25519 private key at path,
// creating it (mode 0600, parent directories 0700) when it does not exist.
// A key file readable by group or others is refused, as ssh does. Key files
// are ca's business; this is the recorder's name for the same file format.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	key, err := ca.LoadOrCreateKey(path)
	if err != nil {
		return nil, fmt.Errorf("load recording key: %w", err)
	}
	return key, nil
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
