package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// templates holds one template set per page: the layout plus the page.
var templates = parsePages()

var templateFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"join":   strings.Join,
	"speeds": func() []string { return []string{"0.5", "1", "2", "4", "8"} },
	"bytes":  humanBytes,
	"pathid": func(s string) string { return template.URLQueryEscaper(s) },
	// execAny is true for an entitlement that may exec any command.
	"execAny": func(e iga.Entitlement) bool { return execUnrestricted([]iga.Entitlement{e}) },
}

func parsePages() map[string]*template.Template {
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimPrefix(p, "templates/")
		if name == "layout.html" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", p))
	}
	return out
}

// view is what every page template gets.
type view struct {
	Title string
	Me    *principal
	CSRF  string
	Path  string
	Data  any
}

func (v view) Has(role string) bool { return v.Me != nil && v.Me.has(role) }

// render executes page into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, p *principal, code int, page, title string, data any) {
	v := view{Title: title, Me: p, Path: r.URL.Path, Data: data}
	if p != nil && p.nonce != "" {
		v.CSRF = s.codec().csrfToken(p.nonce)
	}
	var buf bytes.Buffer
	if err := templates[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.logger().Error("render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// signInView tells a visitor how to sign in, or that they cannot here.
type signInView struct {
	Configured bool
	Message    string
}

func (s *Server) renderSignIn(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, nil, code, "signin.html", "Sign in", signInView{Configured: s.OIDC.configured(), Message: msg})
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.renderSignIn(w, r, http.StatusOK, "")
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
