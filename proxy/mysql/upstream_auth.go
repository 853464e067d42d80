package mysql

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// pluginCachingSHA2 is MySQL 8's default authentication plugin.
const pluginCachingSHA2 = "caching_sha2_password"

// caching_sha2_password's AuthMoreData codes.
const (
	sha2FastAuthOK   = 3 // the server's cache knew the password: OK follows
	sha2FullAuth     = 4 // the password must be sent, encrypted
	sha2RequestKey   = 2 // the client asks for the server's RSA public key
	maxAuthExchanges = 6
)

// authResult reads the end of authentication, answering auth switches
// (to mysql_native_password or caching_sha2_password) and
// caching_sha2_password's full authentication, which sends the password
// in clear over TLS and otherwise encrypts it with the server's RSA key.
func (up *upstream) authResult(plugin, password string, seed []byte) error {
	for range maxAuthExchanges {
		p, err := up.r.read()
		if err != nil {
			return fmt.Errorf("read auth result: %w", err)
		}
		switch firstByte(p) {
		case hdrOK:
			_, up.status, _ = parseOK(p)
			return nil
		case hdrErr:
			code, _, msg, _ := parseErr(p)
			return fmt.Errorf("refused: error %d: %s", code, msg)
		case hdrEOF:
			var rest []byte
			plugin, rest, _ = cstring(p[1:])
			seed = trimNUL(rest)
			err = up.switchPlugin(plugin, seed, password)
		case 0x01:
			err = up.moreData(plugin, p[1:], seed, password)
		default:
			err = fmt.Errorf("unexpected auth packet %#x", firstByte(p))
		}
		if err != nil {
			return err
		}
	}
	return errors.New("authentication did not end")
}

// switchPlugin answers an AuthSwitchRequest.
func (up *upstream) switchPlugin(plugin string, seed []byte, password string) error {
	data, err := authData(plugin, seed, password)
	if err != nil {
		return err
	}
	if err := up.r.write(data); err != nil {
		return fmt.Errorf("answer auth switch to %s: %w", plugin, err)
	}
	return nil
}

// moreData answers caching_sha2_password's AuthMoreData.
func (up *upstream) moreData(plugin string, data, seed []byte, password string) error {
	switch {
	case plugin != pluginCachingSHA2:
		return fmt.Errorf("unexpected auth data for %s", plugin)
	case len(data) == 1 && data[0] == sha2FastAuthOK:
		return nil
	case len(data) == 1 && data[0] == sha2FullAuth && up.tls:
		return up.r.write(append([]byte(password), 0)) // in clear, as TLS protects it
	case len(data) == 1 && data[0] == sha2FullAuth:
		return up.r.write([]byte{sha2RequestKey})
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return errors.New("caching_sha2_password: the target sent no public key")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("caching_sha2_password: parse the target's public key: %w", err)
	}
	rsaKey, ok := key.(*rsa.PublicKey)
	if !ok {
		return errors.New("caching_sha2_password: the target's public key is not RSA")
	}
	enc, err := encryptPassword(password, seed, rsaKey)
	if err != nil {
		return err
	}
	return up.r.write(enc)
}

// authData answers plugin's challenge for password.
func authData(plugin string, seed []byte, password string) ([]byte, error) {
	switch plugin {
	case pluginNative:
		return scrambleNative(seed, password), nil
	case pluginCachingSHA2:
		return scrambleSHA256(seed, password), nil
	}
	return nil, fmt.Errorf("target asks for auth plugin %q; sallyport logs in with %s or %s", plugin, pluginNative, pluginCachingSHA2)
}

// scrambleNative is mysql_native_password's answer:
// SHA1(pw) XOR SHA1(seed + SHA1(SHA1(pw))).
func scrambleNative(seed []byte, password string) []byte {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(seed)
	h.Write(h2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= h1[i]
	}
	return out
}

// scrambleSHA256 is caching_sha2_password's fast answer:
// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + seed).
func scrambleSHA256(seed []byte, password string) []byte {
	h1 := sha256.Sum256([]byte(password))
	h2 := sha256.Sum256(h1[:])
	h := sha256.New()
	h.Write(h2[:])
	h.Write(seed)
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= h1[i]
	}
	return out
}

// encryptPassword is caching_sha2_password's full answer without TLS: the
// NUL-terminated password XOR the seed, RSA-OAEP (SHA-1) encrypted.
func encryptPassword(password string, seed []byte, key *rsa.PublicKey) ([]byte, error) {
	if len(seed) == 0 {
		return nil, errors.New("caching_sha2_password: empty seed")
	}
	plain := append([]byte(password), 0)
	for i := range plain {
		plain[i] ^= seed[i%len(seed)]
	}
	enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, key, plain, nil)
	if err != nil {
		return nil, fmt.Errorf("caching_sha2_password: encrypt the password: %w", err)
	}
	return enc, nil
}
