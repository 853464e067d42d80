package devoidc

import (
	"html/template"
	"net/http"
	"net/url"
)

// loginPage says on every view what this provider is: a development
// stand-in that signs in whoever is picked.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>development sign-in — demo only</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto; color: #1b1f23; }
.banner { padding: .8em; background: #fff8c5; border: 2px solid #bf8700; }
ul { list-style: none; padding: 0; } li { margin: .6em 0; }
a.person { display: inline-block; padding: .5em 1em; background: #0969da; color: #fff; border-radius: 4px; text-decoration: none; }
</style></head>
<body>
<h1>development sign-in — demo only</h1>
<p class="banner">This is sallyport's built-in development OpenID provider, run by <code>sallyport demo</code>.
It asks for no password: whoever can open this page signs in as anyone listed.
<code>sallyport serve</code> never runs it; a real deployment signs in with the company's identity provider.</p>
<p>Sign in to the console as one of the registry's active people:</p>
{{with .People}}<ul>
{{range .}}<li><a class="person" href="{{.Href}}">{{.Email}}</a> {{.Name}}</li>
{{end}}</ul>{{else}}<p class="banner">The registry has no active people; add some with <code>sallyport iga apply</code>.</p>{{end}}
</body></html>
`))

type loginChoice struct {
	Email, Name string
	Href        string
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, q url.Values) {
	people, err := s.people(r.Context())
	if err != nil {
		s.logger().Warn("development sign-in: list people", "err", err)
		http.Error(w, "the registry cannot be read", http.StatusInternalServerError)
		return
	}
	choices := make([]loginChoice, 0, len(people))
	for _, p := range people {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("email", p.Email)
		choices = append(choices, loginChoice{Email: p.Email, Name: p.Name, Href: "/login?" + v.Encode()})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := loginPage.Execute(w, map[string]any{"People": choices}); err != nil {
		s.logger().Warn("development sign-in: render login page", "err", err)
	}
}

// pageHeaders keeps the login page out of frames and caches.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}
