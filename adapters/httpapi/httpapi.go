// Package httpapi serves RFC 3161 over HTTP (RFC 3161 §3.4).
//
// Every TSP answer, granted or rejected, is HTTP 200 with a TimeStampResp:
// real clients (osslsigncode, jarsigner) drop the PKIStatus of any 4xx/5xx.
// HTTP errors are kept for transport problems only: 405 for a method other
// than POST, 415 for another content type, 413 for a body over the limit.
// Those refusals are recorded too.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chronolog/chronolog/domain/clock"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/translog"
	"github.com/chronolog/chronolog/domain/tsa"
)

// Media types of RFC 3161 §3.4, and of Authenticode requests and
// answers.
const (
	QueryType        = rfc3161.MediaTypeQuery
	ReplyType        = rfc3161.MediaTypeReply
	AuthenticodeType = "application/octet-stream"
)

// DefaultMaxBody is the body limit when Config leaves it zero. A
// TimeStampReq with a SHA-512 imprint, a long nonce and a policy is under
// 200 bytes; 64 KiB leaves room for extensions we reject with a TSP answer.
const DefaultMaxBody = 64 << 10

// Service is one timestamp service as the transport sees it.
type Service = tsa.Handler

// Config describes the HTTP surface.
type Config struct {
	// Routes finds the service answering on a URL path (e.g. "/tsa"); a
	// configuration reload changes what it finds.
	Routes Router
	// MaxBody is the request body limit in bytes; zero means DefaultMaxBody.
	MaxBody int64
	// RequestTimeout bounds the handling of one request, the wait for its
	// events to be durable included; zero means 5 s. When it passes, any
	// token is discarded and the client gets systemFailure.
	RequestTimeout time.Duration
	Log            *slog.Logger
	// TransparencyLog, when set, is served to auditors under /log/v1/.
	TransparencyLog *LogAPI
	// LogStatus, when set, reports the log writer in /healthz and
	// /metrics; StoreHead is the event store's last position, against
	// which the log's lag is measured.
	LogStatus func() translog.Status
	StoreHead func() uint64
	// Clock, when set, reports the clock gate's current assessment: a
	// closed gate makes /healthz fail, since no token can be issued.
	Clock func() (clock.Assessment, bool)
	// API, when set, serves the read side under /api/ (its own
	// authentication: bearer tokens with roles).
	API http.Handler
	// Projections, when set, reports the live read models in /metrics.
	Projections func() []ProjectionStatus
	// Tally counts the answers for /metrics; the TCP transport shares it.
	// New makes one when it is nil.
	Tally *Tally
}

// ProjectionStatus is what /metrics reports of one live read model.
type ProjectionStatus struct {
	Name string
	// Checkpoint is the position of the last event it applied; LagEvents
	// how far it trails the store.
	Checkpoint, LagEvents uint64
	// LagP99 and LagMax are from an event's commit to its read model's,
	// over recent batches.
	LagP99, LagMax time.Duration
	// Failed is why it stopped; empty while it runs.
	Failed string
}

// Handler is the TSA's HTTP handler.
type Handler struct {
	cfg   Config
	mux   *http.ServeMux
	tally *Tally
}

// New validates cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Routes == nil {
		return nil, errors.New("httpapi: no timestamp service routes")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Tally == nil {
		cfg.Tally = &Tally{}
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), tally: cfg.Tally}
	h.mux.Handle("/", http.HandlerFunc(h.timestamp))
	h.mux.HandleFunc("GET /healthz", h.serveHealth)
	if cfg.API != nil {
		h.mux.Handle("/api/", cfg.API)
	}
	if cfg.TransparencyLog != nil {
		cfg.TransparencyLog.register(h.mux)
	}
	h.mux.HandleFunc("GET /metrics", h.serveMetrics)
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Router finds the service answering on a path.
type Router interface {
	Route(path string) (Service, bool)
}

// Routes is a fixed path → service map.
type Routes map[string]Service

// Route implements Router.
func (r Routes) Route(path string) (Service, bool) {
	s, ok := r[path]
	return s, ok
}

// timestamp answers one request on a service's path. The request is
// handled, recorded and answered on the server's own context, not the
// client's: a client that hangs up does not stop the record of its
// request, which comes to its true outcome (a token issued is issued, and
// on the record) with the answer's fate recorded after it.
func (h *Handler) timestamp(w http.ResponseWriter, r *http.Request) {
	svc, ok := h.cfg.Routes.Route(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.RequestTimeout)
	defer cancel()
	req := tsa.Request{
		Method:      r.Method,
		Path:        r.URL.Path,
		ContentType: r.Header.Get("Content-Type"),
		Source:      r.RemoteAddr,
		BodySize:    r.ContentLength,
		Transport:   "http",
		Bearer:      bearer(r.Header.Get("Authorization")),
	}
	if r.TLS != nil {
		req.Transport = "https"
		req.PeerCertificates = r.TLS.PeerCertificates
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(ctx, w, r, svc, req, tsa.RefusedMethod, "method "+r.Method+" is not allowed")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBody+1))
	req.Body = body
	if err != nil {
		// The client went away or sent a broken body: what arrived is
		// recorded, and answered in case the client still listens.
		req.BodySize = int64(len(body))
		h.refuse(ctx, w, r, svc, req, tsa.RefusedIncomplete, "body could not be read: "+err.Error())
		return
	}
	if int64(len(body)) > h.cfg.MaxBody {
		if req.BodySize < int64(len(body)) {
			req.BodySize = int64(len(body))
		}
		w.Header().Set("Connection", "close")
		h.refuse(ctx, w, r, svc, req, tsa.RefusedTooLarge, fmt.Sprintf("body exceeds %d bytes", h.cfg.MaxBody))
		return
	}
	req.BodySize = int64(len(body))
	// The body is read before the content type is judged, so that a
	// refused body is still recorded by its hash.
	switch {
	case isQueryType(req.ContentType):
		req.Protocol = tsa.ProtocolRFC3161
	case isAuthenticodeType(req.ContentType):
		req.Protocol = tsa.ProtocolAuthenticode
	default:
		h.refuse(ctx, w, r, svc, req, tsa.RefusedMediaType, fmt.Sprintf("content type %q names no protocol of this TSA", req.ContentType))
		return
	}
	h.deliver(ctx, w, r, svc, svc.Handle(ctx, req))
}

func (h *Handler) refuse(ctx context.Context, w http.ResponseWriter, r *http.Request, svc Service, req tsa.Request, refusal tsa.Refusal, reason string) {
	h.deliver(ctx, w, r, svc, svc.Refuse(ctx, req, refusal, reason))
}

// deliver counts and writes an outcome's answer and, when the client is
// known not to have it (its connection closed before the answer was
// written, or writing it failed), records so. A write that succeeds proves
// nothing more than that the kernel took the bytes.
func (h *Handler) deliver(ctx context.Context, w http.ResponseWriter, r *http.Request, svc Service, o tsa.Outcome) {
	h.tally.Answered(o)
	gone := r.Context().Err() != nil
	a := answer(o)
	hdr := w.Header()
	if a.contentType == ReplyType {
		hdr["Content-Type"] = replyTypeHeader
	} else {
		hdr.Set("Content-Type", a.contentType)
	}
	if a.contentType == textPlain {
		hdr.Set("X-Content-Type-Options", "nosniff")
	}
	hdr["Content-Length"] = []string{strconv.Itoa(len(a.body))}
	w.WriteHeader(a.status)
	_, err := w.Write(a.body)
	if err == nil {
		err = http.NewResponseController(w).Flush()
	}
	if !gone && err == nil {
		return
	}
	reason := "the client closed its connection before the answer was written"
	if !gone {
		reason = "the answer could not be written: " + err.Error()
	}
	h.tally.Undelivered()
	if !o.Recorded || o.Serial == "" {
		return
	}
	if err := svc.Undelivered(ctx, o.Serial, reason); err != nil {
		h.cfg.Log.Error("undelivered answer not recorded", "serial", o.Serial, "err", err)
	}
}

// bearer returns the credential of an "Authorization: Bearer" header.
func bearer(h string) string {
	const scheme = "bearer "
	if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
		return strings.TrimSpace(h[len(scheme):])
	}
	return ""
}

// isAuthenticodeType recognises what Authenticode clients send:
// signtool and osslsigncode say application/octet-stream.
func isAuthenticodeType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == AuthenticodeType
}

// replyTypeHeader is shared by every answer; net/http only reads it.
var replyTypeHeader = []string{ReplyType}

// isQueryType reports whether a Content-Type names a TimeStampReq; the
// exact string every client sends is recognised without parsing.
func isQueryType(ct string) bool {
	if ct == QueryType {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == QueryType
}

func (h *Handler) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	h.tally.write(w)
	if h.cfg.StoreHead != nil {
		fmt.Fprintf(w, "# HELP chronolog_store_head_position Position of the last durable event.\n")
		fmt.Fprintf(w, "# TYPE chronolog_store_head_position gauge\n")
		fmt.Fprintf(w, "chronolog_store_head_position %d\n", h.cfg.StoreHead())
	}
	if h.cfg.Clock != nil {
		h.clockMetrics(w)
	}
	if h.cfg.Projections != nil {
		h.projectionMetrics(w)
	}
	if h.cfg.LogStatus == nil {
		return
	}
	st := h.cfg.LogStatus()
	up := 0
	if st.LogUp {
		up = 1
	}
	for _, m := range []struct {
		name, help string
		v          any
	}{
		{"chronolog_log_up", "1 while the transparency log takes appends.", up},
		{"chronolog_log_leaves", "Leaves (segments) in the transparency log.", st.Leaves},
		{"chronolog_log_checkpoint_size", "Size of the last checkpoint recorded.", st.CheckpointSize},
		{"chronolog_log_covered_position", "Position of the last event in the log.", st.Covered},
		{"chronolog_log_lag_events", "Events committed but not yet in the log.", h.lagEvents(st)},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", m.name, m.help, m.name, m.name, m.v)
	}
	fmt.Fprintf(w, "# HELP chronolog_log_lag_seconds From an event reaching the log writer to a checkpoint covering it, over recent segments.\n")
	fmt.Fprintf(w, "# TYPE chronolog_log_lag_seconds summary\n")
	fmt.Fprintf(w, "chronolog_log_lag_seconds{quantile=\"0.5\"} %g\n", st.LagP50.Seconds())
	fmt.Fprintf(w, "chronolog_log_lag_seconds{quantile=\"0.99\"} %g\n", st.LagP99.Seconds())
	fmt.Fprintf(w, "chronolog_log_lag_seconds{quantile=\"1\"} %g\n", st.LagMax.Seconds())
	fmt.Fprintf(w, "chronolog_log_lag_seconds_count %d\n", st.LagSamples)
}

func (h *Handler) clockMetrics(w io.Writer) {
	a, _ := h.cfg.Clock()
	synced, age := 0, 0.0
	if a.Synchronised {
		synced = 1
	}
	if !a.At.IsZero() {
		age = time.Since(a.At).Seconds()
	}
	for _, m := range []struct {
		name, help string
		v          any
	}{
		{"chronolog_clock_synchronised", "1 while a quorum of clock sources agree.", synced},
		{"chronolog_clock_bound_seconds", "How far the clock may be from UTC at the last sample.", a.Bound.Seconds()},
		{"chronolog_clock_offset_seconds", "Median offset of the agreeing sources at the last sample.", a.Offset.Seconds()},
		{"chronolog_clock_sample_age_seconds", "Age of the last recorded clock sample.", age},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", m.name, m.help, m.name, m.name, m.v)
	}
}

func (h *Handler) projectionMetrics(w io.Writer) {
	st := h.cfg.Projections()
	for _, m := range []struct {
		name, help string
		v          func(ProjectionStatus) any
	}{
		{"chronolog_projection_checkpoint", "Position of the last event a read model applied.", func(p ProjectionStatus) any { return p.Checkpoint }},
		{"chronolog_projection_lag_events", "Events committed but not yet in the read model.", func(p ProjectionStatus) any { return p.LagEvents }},
		{"chronolog_projection_lag_p99_seconds", "From an event's commit to its read model's, p99 over recent batches.", func(p ProjectionStatus) any { return p.LagP99.Seconds() }},
		{"chronolog_projection_lag_max_seconds", "The same, the maximum over recent batches.", func(p ProjectionStatus) any { return p.LagMax.Seconds() }},
		{"chronolog_projection_failed", "1 when the read model stopped on an error (restart replays it from its checkpoint).", func(p ProjectionStatus) any {
			if p.Failed != "" {
				return 1
			}
			return 0
		}},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
		for _, p := range st {
			fmt.Fprintf(w, "%s{projection=%q} %v\n", m.name, p.Name, m.v(p))
		}
	}
}

// lagEvents is how far the log trails the store, in positions.
func (h *Handler) lagEvents(st translog.Status) uint64 {
	head := st.Seen
	if h.cfg.StoreHead != nil {
		head = max(head, h.cfg.StoreHead())
	}
	return head - min(head, st.Covered)
}

// serveHealth answers ok while the TSA issues. A log that is down does
// not stop issuance (the events are durable and the writer catches up),
// so it is reported, not failed.
func (h *Handler) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if h.cfg.Clock != nil {
		a, ok := h.cfg.Clock()
		if !ok || !a.Synchronised {
			// A load balancer must send no one here: every request would
			// be answered timeNotAvailable.
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "clock: not synchronised: %s\n", a.Reason)
			return
		}
		fmt.Fprint(w, "ok\n")
		fmt.Fprintf(w, "clock: synchronised within %v at %s (%d of %d sources agree)\n",
			a.Bound.Round(time.Microsecond), a.At.Format(time.RFC3339), a.Agreeing, a.Sources)
	} else {
		fmt.Fprint(w, "ok\n")
	}
	if h.cfg.LogStatus == nil {
		return
	}
	st := h.cfg.LogStatus()
	state := "up"
	if !st.LogUp {
		state = "down: " + st.LastError
	}
	fmt.Fprintf(w, "log: %s\nlog lag: %d events; checkpoint lag p50 %s p99 %s over %d segments\nlog leaves: %d, checkpoint size %d, covered position %d\n",
		state, h.lagEvents(st), st.LagP50.Round(time.Millisecond), st.LagP99.Round(time.Millisecond), st.LagSamples,
		st.Leaves, st.CheckpointSize, st.Covered)
}
