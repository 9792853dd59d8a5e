package sidecar

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// guard refuses what a browser can be tricked into sending. Every POST
// must say it carries JSON or YAML: a cross-site form or a text/plain
// fetch cannot set that header without a CORS preflight, which paw never
// grants. Without a token it also refuses requests whose Origin is another
// site, and, against DNS rebinding, Host names the operator did not allow:
// an IP literal or localhost always passes, other names only when listed.
func guard(cfg Config, next http.Handler) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, h := range cfg.AllowedHosts {
		allowed[strings.ToLower(h)] = true
	}
	hostOK := func(hostport string) bool {
		host := hostport
		if h, _, err := net.SplitHostPort(hostport); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
		return net.ParseIP(host) != nil || allowed[host]
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if !slices.Contains([]string{"application/json", "application/yaml", "application/x-yaml"}, mt) {
				writeError(w, http.StatusUnsupportedMediaType, APIError{Error: fmt.Sprintf("Content-Type %q: send application/json or application/yaml", r.Header.Get("Content-Type"))})
				return
			}
		}
		if cfg.Token == "" && r.URL.Path != "/healthz" {
			if !hostOK(r.Host) {
				writeError(w, http.StatusForbidden, APIError{Error: fmt.Sprintf("Host %q is not allowed without a token: set PAW_TOKEN or list it in --allowed-hosts", r.Host)})
				return
			}
			if o := r.Header.Get("Origin"); o != "" {
				if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
					writeError(w, http.StatusForbidden, APIError{Error: fmt.Sprintf("cross-origin request from %q refused", o)})
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
