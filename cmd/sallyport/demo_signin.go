package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/web/devoidc"
)

// demoOIDCSecretEnv carries the development provider's client secret from
// the demo to serve's web.oidc, in this process's environment only.
const demoOIDCSecretEnv = "SALLYPORT_DEMO_OIDC_CLIENT_SECRET"

// demoOIDCClientID is the console's client at the development provider.
const demoOIDCClientID = "sallyport-demo-console"

// devSignIn is the demo's development OpenID provider: a login page that
// lists the registry's active people. Only the demo starts it.
type devSignIn struct {
	ln     net.Listener
	issuer string
	srv    *devoidc.Server
	done   chan error
}

// listenDevSignIn reserves the provider's loopback address, so the config
// can name the issuer before the provider runs, and puts a fresh client
// secret in the environment for serve to read.
func listenDevSignIn() (*devSignIn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the development sign-in: %w", err)
	}
	secret := rand.Text()
	os.Setenv(demoOIDCSecretEnv, secret)
	issuer := "http://" + ln.Addr().String()
	return &devSignIn{ln: ln, issuer: issuer, done: make(chan error, 1),
		srv: &devoidc.Server{Issuer: issuer, ClientID: demoOIDCClientID, Secret: secret}}, nil
}

// start serves the login page with the people of cfg's registry; the
// returned func stops it.
func (ds *devSignIn) start(ctx context.Context, cfg *Config, log *slog.Logger) (func(), error) {
	ap, err := openApp(ctx, cfg, log)
	if err != nil {
		ds.ln.Close()
		return nil, err
	}
	ds.srv.Logger = log
	ds.srv.People = func(ctx context.Context) ([]devoidc.Person, error) { return activePeople(ctx, ap.store) }
	go func() { ds.done <- ds.srv.Serve(ctx, ds.ln) }()
	return func() {
		if err := ds.srv.Shutdown(context.Background()); err != nil {
			log.Warn("stop the development sign-in", "err", err)
		}
		if err := <-ds.done; err != nil && !errors.Is(err, devoidc.ErrServerClosed) {
			log.Warn("development sign-in", "err", err)
		}
		ap.Close()
	}, nil
}

// peopleLister is the subset of the registry store the login page reads.
type peopleLister interface {
	People(ctx context.Context) ([]iga.Person, error)
}

func activePeople(ctx context.Context, s peopleLister) ([]devoidc.Person, error) {
	all, err := s.People(ctx)
	if err != nil {
		return nil, fmt.Errorf("list people for the development sign-in: %w", err)
	}
	var out []devoidc.Person
	for _, p := range all {
		if p.Status == iga.PersonActive {
			out = append(out, devoidc.Person{Email: p.ID, Name: p.Name})
		}
	}
	return out, nil
}
