package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/scim"
)

// newSCIM builds the SCIM service provider when scim.token_env is set, nil
// otherwise. Its owner_inactive alerts go to alerts.webhook_url (a queue of
// its own, run until ctx ends) or, without one, to the log.
func newSCIM(ctx context.Context, d *serveDeps) (http.Handler, error) {
	cfg := d.ap.cfg.SCIM
	if cfg.TokenEnv == "" {
		return nil, nil
	}
	tokens, err := cfg.scimTokens()
	if err != nil {
		return nil, err
	}
	s := &iga.SCIM{Registry: d.ap.reg, GroupRoles: cfg.Groups}
	hook, err := alertWebhook(d.ap.cfg, d.log)
	if err != nil {
		return nil, err
	}
	if hook != nil {
		go hook.Run(ctx)
		s.Alert = func(a iga.Alert) { hook.Send(a.ID, a.Kind, a) }
	}
	d.log.Info("scim service provider on", "path", scim.Prefix+"/", "tokens", len(tokens), "group_roles", len(cfg.Groups))
	return &scim.Handler{Registry: s, Tokens: tokens, Logger: d.log.With(slog.String("component", "scim"))}, nil
}
