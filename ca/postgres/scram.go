package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

const (
	// scramIterations is the PBKDF2 iteration count of the verifier.
	// Stretching protects guessable human passwords; this one is 256 random
	// bits, so iterations add no strength and only cost time on every
	// session start (the bastion derives the key twice: for the verifier
	// and when it logs in). PostgreSQL accepts any positive count; its
	// default of 4096 made up a sixth of the bastion's CPU per new session.
	scramIterations = 16
	// passwordBytes is the entropy of a per-session password.
	passwordBytes = 32
	// saltBytes is the SCRAM salt length PostgreSQL itself uses.
	saltBytes = 16
)

// newPassword returns a random password in URL-safe base64: printable
// ASCII, so SASLprep leaves it unchanged.
func newPassword() string {
	b := make([]byte, passwordBytes)
	rand.Read(b) // crypto/rand never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (the rolpassword format "SCRAM-SHA-256$iter:salt$StoredKey:ServerKey"),
// so the cleartext never reaches the server, its logs or pg_authid.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, saltBytes)
	rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive scram key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
