package web_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sallyport/sallyport/web"
)

// zitadelPassword is every test user's password at the zitadel provider.
const zitadelPassword = "correct horse battery staple"

// zitadelUsers is the provider's user store: one user per person of the
// test registry, signing in with the e-mail as username, e-mail verified.
type zitadelUsers map[string]*storage.User

func (u zitadelUsers) GetUserByID(id string) *storage.User { return u[id] }

func (u zitadelUsers) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}

func (u zitadelUsers) ExampleClientID() string { return "service" }

// zitadelStorage is the example in-memory storage of zitadel/oidc, whose
// clients put the userinfo claims (e-mail) into the ID token, which is
// where the console reads them.
type zitadelStorage struct{ *storage.Storage }

func (s zitadelStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return claimsInIDToken{c}, nil
}

type claimsInIDToken struct{ op.Client }

func (claimsInIDToken) IDTokenUserinfoClaimsAssertion() bool { return true }

// withZitadelOP serves c's console anew, signing in through a real
// OpenID provider — zitadel/oidc's op package with the example in-memory
// storage and login page — on its own httptest server. The console is a
// confidential web client using the code flow with PKCE.
func withZitadelOP(t *testing.T, c *console) {
	const clientID, secret = "sallyport-console", "zitadel-client-secret"
	opSrv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + opSrv.Listener.Addr().String()

	ws := &web.Server{Logger: c.ws.Logger, OIDC: web.OIDCConfig{Issuer: issuer, ClientID: clientID, ClientSecret: secret},
		Directory: c.ws.Directory, Sessions: c.ws.Sessions, Workflows: c.ws.Workflows, Recordings: c.ws.Recordings,
		Hygiene: c.ws.Hygiene}
	srv := httptest.NewServer(ws.Handler())
	t.Cleanup(srv.Close)

	users := zitadelUsers{}
	for i, email := range []string{auditor, admin, owner} {
		id := string(rune('a' + i))
		users[id] = &storage.User{ID: id, Username: email, Password: zitadelPassword, Email: email, EmailVerified: true}
	}
	client := storage.WebClient(clientID, secret, srv.URL+"/auth/callback")
	st := zitadelStorage{storage.NewStorageWithClients(users, map[string]*storage.Client{clientID: client})}
	opSrv.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	opSrv.Start()
	t.Cleanup(opSrv.Close)

	c.srv, c.ws = srv, ws
}

// zitadelSignIn opens the console, which sends the browser to the
// provider's login page, and signs in there as email.
func zitadelSignIn(t *testing.T, ctx context.Context, c *console, email string) {
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(c.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input#username`)),
		chromedp.SendKeys(chromedp.CSS(`input#username`), email),
		chromedp.SendKeys(chromedp.CSS(`input#password`), zitadelPassword),
		chromedp.Submit(chromedp.CSS(`input#password`)),
		chromedp.WaitVisible(chromedp.CSS(`main h1`))))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	require.NoError(t, err)
	require.Contains(t, text, email, "signed in at the console as %s", email)
}
