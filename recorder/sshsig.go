package recorder

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// The manifest signature is an OpenSSH SSHSIG (PROTOCOL.sshsig), so auditors
// can check it with `ssh-keygen -Y verify` and nothing from sallyport.
const (
	sigNamespace = "sallyport-recording"
	sigMagic     = "SSHSIG"
	sigVersion   = 1
	sigHashAlg   = "sha512"
	sigPEMType   = "SSH SIGNATURE"
)

// sshsigBlob is the wire form of an SSHSIG signature (after the magic).
type sshsigBlob struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	HashAlg   string
	Signature []byte
}

// signedData is what SSHSIG actually signs for message hash h.
func signedData(h []byte) []byte {
	body := ssh.Marshal(struct {
		Namespace string
		Reserved  string
		HashAlg   string
		Hash      []byte
	}{sigNamespace, "", sigHashAlg, h})
	return append([]byte(sigMagic), body...)
}

// signManifest returns the armored SSHSIG of msg made with key.
func signManifest(key ed25519.PrivateKey, msg []byte) ([]byte, error) {
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	h := sha512.Sum512(msg)
	sig, err := signer.Sign(rand.Reader, signedData(h[:]))
	if err != nil {
		return nil, fmt.Errorf("sign manifest: %w", err)
	}
	blob := ssh.Marshal(sshsigBlob{
		Version: sigVersion, PublicKey: signer.PublicKey().Marshal(),
		Namespace: sigNamespace, HashAlg: sigHashAlg, Signature: ssh.Marshal(sig),
	})
	return armor(append([]byte(sigMagic), blob...)), nil
}

// armor wraps b at 70 columns the way ssh-keygen writes signatures.
func armor(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	out.WriteString("-----BEGIN " + sigPEMType + "-----\n")
	for len(enc) > 70 {
		out.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	out.WriteString(enc + "\n-----END " + sigPEMType + "-----\n")
	return out.Bytes()
}

// errForeignKey marks a signature that is valid but made by another key.
var errForeignKey = errors.New("signed by a foreign key")

// checkManifestSig verifies the armored SSHSIG sig over msg against want.
func checkManifestSig(want ed25519.PublicKey, msg, sig []byte) error {
	blob, signer, err := parseSig(sig)
	if err != nil {
		return err
	}
	var s ssh.Signature
	if err := ssh.Unmarshal(blob.Signature, &s); err != nil {
		return fmt.Errorf("signature blob: %w", err)
	}
	h := sha512.Sum512(msg)
	if err := signer.Verify(signedData(h[:]), &s); err != nil {
		return errors.New("signature does not match the manifest")
	}
	wantSSH, err := ssh.NewPublicKey(want)
	if err != nil {
		return fmt.Errorf("trusted key: %w", err)
	}
	if !bytes.Equal(signer.Marshal(), wantSSH.Marshal()) {
		return fmt.Errorf("%w %s, want %s", errForeignKey, ssh.FingerprintSHA256(signer), ssh.FingerprintSHA256(wantSSH))
	}
	return nil
}

func parseSig(sig []byte) (sshsigBlob, ssh.PublicKey, error) {
	var blob sshsigBlob
	p, _ := pem.Decode(sig)
	if p == nil || p.Type != sigPEMType {
		return blob, nil, errors.New("signature is not an armored SSH SIGNATURE")
	}
	if !bytes.HasPrefix(p.Bytes, []byte(sigMagic)) {
		return blob, nil, errors.New("signature lacks the SSHSIG magic")
	}
	if err := ssh.Unmarshal(p.Bytes[len(sigMagic):], &blob); err != nil {
		return blob, nil, fmt.Errorf("signature blob: %w", err)
	}
	if blob.Version != sigVersion || blob.Namespace != sigNamespace || blob.HashAlg != sigHashAlg {
		return blob, nil, fmt.Errorf("signature v%d namespace %q hash %q, want v%d %q %q",
			blob.Version, blob.Namespace, blob.HashAlg, sigVersion, sigNamespace, sigHashAlg)
	}
	pk, err := ssh.ParsePublicKey(blob.PublicKey)
	if err != nil {
		return blob, nil, fmt.Errorf("signature public key: %w", err)
	}
	return blob, pk, nil
}
