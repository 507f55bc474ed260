// Package logclient is a client of Chronolog's auditor API (/log/v1/ on a
// tsad, adapters/httpapi/logapi.go). It fetches and decodes; it trusts
// nothing it fetches: the caller checks every answer against a checkpoint
// signed with the log's key (domain/translog).
package logclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
)

// Bounds on what the client reads: a checkpoint is a few hundred bytes, a
// segment of 4096 events a few MiB of JSON; a server sending far more is
// broken or hostile.
const (
	maxCheckpoint = 1 << 20
	maxJSON       = 256 << 20
)

// Client talks to one server's auditor API.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client of the API under baseURL/log/v1/ (baseURL like
// http://host:port). A nil hc means a client with a 60 s timeout: a
// segment is one request, and an auditor should not hang on a dead server.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/") + "/log/v1/", hc: hc}
}

// ErrNotYet is matched (errors.Is) by the error for a token whose event is
// newer than the log's latest checkpoint: asking again later helps.
var ErrNotYet = errors.New("logclient: not under a checkpoint yet")

// APIError is a non-2xx answer.
type APIError struct {
	URL    string
	Status int
	// Message is the server's WireError text, or the start of the body
	// when it sent none.
	Message string
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
	notYet     bool
}

func (e *APIError) Error() string {
	return fmt.Sprintf("GET %s: %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes a 404 with Retry-After match ErrNotYet: the API answers so for
// a proof that no checkpoint covers yet, and only then.
func (e *APIError) Is(target error) bool { return target == ErrNotYet && e.notYet }

// Checkpoint returns the latest signed checkpoint, as served.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.get(ctx, "checkpoint", maxCheckpoint)
}

// Checkpoints returns a page of the recorded checkpoints, oldest first,
// those recorded after the event position after; limit 0 leaves the page
// size to the server.
func (c *Client) Checkpoints(ctx context.Context, after uint64, limit int) (logwire.Checkpoints, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatUint(after, 10))
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out logwire.Checkpoints
	err := c.getJSON(ctx, "checkpoints?"+q.Encode(), &out)
	return out, err
}

// Proof returns the proof of the token with serial (hex) in the log.
func (c *Client) Proof(ctx context.Context, serial string) (logwire.Proof, error) {
	var out logwire.Proof
	err := c.getJSON(ctx, "proof/"+url.PathEscape(serial), &out)
	return out, err
}

// Consistency returns the proof that the tree of to leaves extends the
// tree of from leaves.
func (c *Client) Consistency(ctx context.Context, from, to uint64) ([]merkle.Hash, error) {
	var w logwire.Consistency
	if err := c.getJSON(ctx, fmt.Sprintf("consistency?from=%d&to=%d", from, to), &w); err != nil {
		return nil, err
	}
	if w.From != from || w.To != to {
		return nil, fmt.Errorf("logclient: asked for consistency %d→%d, got %d→%d", from, to, w.From, w.To)
	}
	p, err := logwire.DecodeHashes(w.Proof)
	if err != nil {
		return nil, fmt.Errorf("logclient: consistency %d→%d: %w", from, to, err)
	}
	return p, nil
}

// Inclusion returns the proof that leaf index is in the tree of size
// leaves.
func (c *Client) Inclusion(ctx context.Context, index, size uint64) ([]merkle.Hash, error) {
	var w logwire.Inclusion
	if err := c.getJSON(ctx, fmt.Sprintf("inclusion?index=%d&size=%d", index, size), &w); err != nil {
		return nil, err
	}
	if w.Index != index || w.Size != size {
		return nil, fmt.Errorf("logclient: asked for the inclusion of leaf %d in %d, got %d in %d", index, size, w.Index, w.Size)
	}
	p, err := logwire.DecodeHashes(w.Proof)
	if err != nil {
		return nil, fmt.Errorf("logclient: inclusion of leaf %d in %d: %w", index, size, err)
	}
	return p, nil
}

// Segment returns the segment at index, with its events unless withEvents
// is false.
func (c *Client) Segment(ctx context.Context, index uint64, withEvents bool) (logwire.Segment, error) {
	path := "segments/" + strconv.FormatUint(index, 10)
	if !withEvents {
		path += "?events=false"
	}
	var out logwire.Segment
	if err := c.getJSON(ctx, path, &out); err != nil {
		return out, err
	}
	if out.Index != index {
		return out, fmt.Errorf("logclient: asked for segment %d, got segment %d", index, out.Index)
	}
	return out, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	body, err := c.get(ctx, path, maxJSON)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("logclient: GET %s: %w", c.base+path, err)
	}
	return nil
}

func (c *Client) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	u := c.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("logclient: %w", err)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("logclient: %w", err)
	}
	defer res.Body.Close()
	// One byte over the limit tells a body at the limit from a longer one.
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("logclient: GET %s: read the answer: %w", u, err)
	}
	if res.StatusCode/100 != 2 {
		return nil, apiError(u, res, body)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("logclient: GET %s: the answer exceeds %d bytes", u, limit)
	}
	return body, nil
}

func apiError(u string, res *http.Response, body []byte) *APIError {
	e := &APIError{URL: u, Status: res.StatusCode}
	var w logwire.Problem
	if json.Unmarshal(body, &w) == nil && w.Error != "" {
		e.Message = w.Error
	} else {
		// Not our API's error (a proxy's page, say): show its start.
		e.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		e.notYet = res.StatusCode == http.StatusNotFound
	}
	return e
}
