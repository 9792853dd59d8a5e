package runtime_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pawlogs/paw/runtime"
)

func TestHTTPSource(t *testing.T) {
	good := errorsArtifact(t, "errs", 1)
	id := runtime.ArtifactID(good)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		current string
		wantID  string // "" means unchanged (nil artifact)
		wantErr string
	}{
		{"fetch", serve(good, id, ""), "", id, ""},
		{"not modified", serve(good, id, ""), id, "", ""},
		{"token required", serve(good, id, "tok"), "", "", "401"},
		{"etag mismatch", serve(good, "0000", ""), "", "", "does not match"},
		{"corrupt", serve([]byte("nope"), "", ""), "", "", "invalid artifact"},
		{"missing", func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{"error":"no published program"}`, 404) }, "", "", "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			a, err := runtime.HTTPSource{URL: srv.URL}.Fetch(context.Background(), "errs", tc.current)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tc.wantID == "" && a != nil:
				t.Fatalf("got %s, want unchanged", a.ID)
			case tc.wantID != "" && (a == nil || a.ID != tc.wantID):
				t.Fatalf("got %v, want %s", a, tc.wantID)
			}
		})
	}
}

// serve answers like paw serve: ETag, If-None-Match, bearer token.
func serve(data []byte, etag, token string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", 401)
			return
		}
		if etag != "" {
			w.Header().Set("ETag", `"`+etag+`"`)
			if r.Header.Get("If-None-Match") == `"`+etag+`"` {
				w.WriteHeader(304)
				return
			}
		}
		w.Write(data)
	}
}
