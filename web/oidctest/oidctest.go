// Package oidctest runs an OpenID provider over real HTTP for the console's
// tests and the end-to-end tests of serve: devoidc's provider, with the
// login page replaced by whoever the test names. It is a test fixture,
// never a provider for people.
package oidctest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/sallyport/sallyport/web/devoidc"
)

// Provider is a running OpenID provider with one confidential client.
type Provider struct {
	// URL is the issuer.
	URL string
	// ClientID and Secret are the one client's credentials.
	ClientID, Secret string

	mu       sync.Mutex
	email    string // who the next authorization signs in
	verified bool
}

// New starts a provider; it stops when the test ends.
func New(t testing.TB) *Provider {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	op := &Provider{URL: "http://" + ln.Addr().String(), ClientID: "sallyport-console", Secret: "op-client-secret", verified: true}
	srv := &devoidc.Server{Issuer: op.URL, ClientID: op.ClientID, Secret: op.Secret, Pick: op.pick}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		if err := <-served; err != nil && !errors.Is(err, devoidc.ErrServerClosed) {
			t.Errorf("oidctest provider: %v", err)
		}
	})
	return op
}

// SignInAs makes the next authorizations sign in email, with
// email_verified as given.
func (op *Provider) SignInAs(email string, verified bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.email, op.verified = email, verified
}

func (op *Provider) pick() (string, bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.email, op.verified
}
