package runtime

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/pawlogs/paw/internal/bounded"
)

// ProgramSource supplies programs by name.
type ProgramSource interface {
	// Fetch returns the named program. When current (the running ID) is
	// still the latest, it may return nil and no error.
	Fetch(ctx context.Context, name, current string) (*Artifact, error)
	String() string
}

// SourceFor is the sidecar at url (with its bearer token) when url is set,
// else the folder dir.
func SourceFor(dir, url, token string) ProgramSource {
	if url != "" {
		return HTTPSource{URL: url, Token: token}
	}
	return DirSource{Dir: dir}
}

// DirSource reads <name>.paw from a folder.
type DirSource struct{ Dir string }

// Fetch reads the program's file; current is not needed, a local read
// being cheap.
func (d DirSource) Fetch(_ context.Context, name, _ string) (*Artifact, error) {
	return ReadArtifactFile(filepath.Join(d.Dir, name+".paw"))
}

// String is the folder, for logs.
func (d DirSource) String() string { return d.Dir }

// HTTPSource fetches programs from a paw serve sidecar,
// GET <URL>/v1/programs/<name>, sending the running ID as If-None-Match
// so an unchanged program costs a 304.
type HTTPSource struct {
	URL   string
	Token string // sent as a bearer token when set
	// Client defaults to one with a 30s timeout.
	Client *http.Client
}

var defaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

// Fetch asks the sidecar for the program, sending current as
// If-None-Match; a 304 returns (nil, nil).
func (h HTTPSource) Fetch(ctx context.Context, name, current string) (*Artifact, error) {
	url := strings.TrimSuffix(h.URL, "/") + "/v1/programs/" + name
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch program %s: %w", name, err)
	}
	if current != "" {
		req.Header.Set("If-None-Match", `"`+current+`"`)
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	client := h.Client
	if client == nil {
		client = defaultHTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch program %s: %w", name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, nil
	case http.StatusOK:
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("fetch program %s from %s: %s: %s", name, url, resp.Status, strings.TrimSpace(string(msg)))
	}
	data, err := bounded.ReadAll(resp.Body, MaxArtifactBytes, resp.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("fetch program %s: %w", name, tooLargeArtifact(err))
	}
	a, err := DecodeArtifact(data)
	if err != nil {
		return nil, fmt.Errorf("program %s from %s: %w", name, url, err)
	}
	if etag := strings.Trim(resp.Header.Get("ETag"), `"`); etag != "" && etag != a.ID {
		return nil, fmt.Errorf("program %s from %s: ETag %s does not match the artifact %s", name, url, ShortID(etag), ShortID(a.ID))
	}
	return a, nil
}

// String is the sidecar's URL, for logs.
func (h HTTPSource) String() string { return h.URL }
