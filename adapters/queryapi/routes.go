package queryapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/archive"
	"github.com/chronolog/chronolog/projections/billing"
	"github.com/chronolog/chronolog/projections/clockview"
	"github.com/chronolog/chronolog/projections/renewaldue"
)

// StreamReader reads one stream of the event store: the token itself
// stays there, the archive only says where.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
}

// Sources are the read stores and the event store the API reads.
type Sources struct {
	Archive, Billing, Clock, Renewal *sql.DB
	Events                           StreamReader
	// Status reports the projections' checkpoints and lag.
	Status func() []projections.ProjectionStatus
}

const (
	roleAuditor  = "auditor"
	roleBilling  = "billing"
	roleOperator = "operator"
)

// Routes are the endpoints of /api/v1/ (schemas/openapi.yaml).
func Routes(s Sources) []Route {
	return []Route{
		{"GET /api/v1/tokens/{serial}", []string{roleAuditor}, s.token},
		{"GET /api/v1/tokens", []string{roleAuditor}, s.searchTokens},
		{"GET /api/v1/billing", []string{roleBilling}, s.billing},
		{"GET /api/v1/renewal-due", []string{roleAuditor, roleOperator}, s.renewalDue},
		{"GET /api/v1/renewal-due/count", []string{roleAuditor, roleOperator}, s.renewalCount},
		{"GET /api/v1/clock/samples", []string{roleAuditor, roleOperator}, s.clockSamples},
		{"GET /api/v1/clock/changes", []string{roleAuditor, roleOperator}, s.clockChanges},
		{"GET /api/v1/clock/outside-accuracy", []string{roleAuditor, roleOperator}, s.clockOutside},
		{"GET /api/v1/projections", []string{roleOperator}, s.projections},
	}
}

// token answers the token of a serial as application/timestamp-reply (an
// Authenticode countersignature as application/pkcs7-mime), read from the
// event store where the archive says it is.
func (s Sources) token(w http.ResponseWriter, r *http.Request) {
	e, err := archive.BySerial(r.Context(), s.Archive, strings.ToLower(r.PathValue("serial")))
	if errors.Is(err, archive.ErrNotFound) {
		problem(w, http.StatusNotFound, "no token with this serial in the archive")
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	recs, err := s.Events.ReadStream(r.Context(), e.Stream)
	if err != nil {
		fail(w, err)
		return
	}
	for _, rec := range recs {
		if rec.Position != e.Position {
			continue
		}
		_, ev, err := events.Decode(rec.Payload)
		if err != nil {
			fail(w, err)
			return
		}
		issued, ok := ev.(*events.TimestampIssued)
		if !ok {
			fail(w, fmt.Errorf("event %d is a %s, not the token", rec.Position, rec.Type))
			return
		}
		w.Header().Set("X-Chronolog-Position", strconv.FormatUint(rec.Position, 10))
		if issued.Protocol == events.ProtocolAuthenticode {
			w.Header().Set("Content-Type", "application/pkcs7-mime")
			w.Write(issued.Token)
			return
		}
		w.Header().Set("Content-Type", rfc3161.MediaTypeReply)
		w.Write(rfc3161.GrantedResponse(issued.Token))
		return
	}
	fail(w, fmt.Errorf("stream %s has no event at position %d", e.Stream, e.Position))
}

// searchTokens finds tokens by imprint (imprint=sha256:HEX), or by
// service, client and genTime range, a page at a time.
func (s Sources) searchTokens(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if imp := q.Get("imprint"); imp != "" {
		alg, digest, ok := strings.Cut(imp, ":")
		if !ok {
			problem(w, http.StatusBadRequest, "imprint is ALGORITHM:HEX, e.g. sha256:9f86d0…")
			return
		}
		found, err := archive.ByImprint(r.Context(), s.Archive, alg, strings.ToLower(digest))
		if errors.Is(err, archive.ErrInvalidImprint) {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, map[string]any{"tokens": orEmpty(found)})
		return
	}
	aq := archive.Query{Service: q.Get("service"), Client: q.Get("client"), After: q.Get("after")}
	var err error
	if aq.From, aq.To, err = timeRange(q.Get("from"), q.Get("to")); err == nil {
		aq.Limit, err = limit(q.Get("limit"))
	}
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	found, err := archive.Search(r.Context(), s.Archive, aq)
	if errors.Is(err, archive.ErrNotFound) {
		problem(w, http.StatusBadRequest, "after: no token with this serial to continue from")
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	out := map[string]any{"tokens": orEmpty(found)}
	if len(found) > 0 && len(found) == max(aq.Limit, 1) {
		out["next"] = found[len(found)-1].Serial
	}
	writeJSON(w, out)
}

// billing answers counts per day, service and client, as JSON or, with
// format=csv or Accept: text/csv, as CSV.
func (s Sources) billing(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := timeRange(q.Get("from"), q.Get("to"))
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	rows, err := billing.Counts(r.Context(), s.Billing, billing.Filter{From: from, To: to, Service: q.Get("service"), Client: q.Get("client")})
	if err != nil {
		fail(w, err)
		return
	}
	if q.Get("format") == "csv" || strings.Contains(r.Header.Get("Accept"), "text/csv") {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if err := billing.WriteCSV(w, rows); err != nil {
			fail(w, err)
		}
		return
	}
	writeJSON(w, map[string]any{"rows": orEmpty(rows)})
}

func (s Sources) renewalQuery(r *http.Request) (renewaldue.Query, error) {
	q := r.URL.Query()
	rq := renewaldue.Query{HashAlgorithm: q.Get("hashAlgorithm"), SignatureAlgorithm: q.Get("signatureAlgorithm"),
		CertIssuer: q.Get("certIssuer"), CertSerial: q.Get("certSerial"), Service: q.Get("service"), After: q.Get("after")}
	var err error
	if v := q.Get("dueBefore"); v != "" {
		if rq.DueBefore, err = parseTime(v); err != nil {
			return rq, err
		}
	}
	rq.Limit, err = limit(q.Get("limit"))
	return rq, err
}

func (s Sources) renewalDue(w http.ResponseWriter, r *http.Request) {
	rq, err := s.renewalQuery(r)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	found, err := renewaldue.Search(r.Context(), s.Renewal, rq)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, map[string]any{"tokens": orEmpty(found)})
}

func (s Sources) renewalCount(w http.ResponseWriter, r *http.Request) {
	rq, err := s.renewalQuery(r)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	rq.Limit = 0
	if by := r.URL.Query().Get("by"); by != "" {
		groups, err := renewaldue.CountBy(r.Context(), s.Renewal, rq, by)
		if err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, map[string]any{"by": by, "groups": orEmpty(groups)})
		return
	}
	n, err := renewaldue.Count(r.Context(), s.Renewal, rq)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, map[string]any{"count": n})
}

func (s Sources) clockSamples(w http.ResponseWriter, r *http.Request) {
	from, to, lim, ok := rangeAndLimit(w, r)
	if !ok {
		return
	}
	found, err := clockview.Samples(r.Context(), s.Clock, from, to, lim)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, map[string]any{"samples": orEmpty(found)})
}

func (s Sources) clockChanges(w http.ResponseWriter, r *http.Request) {
	from, to, _, ok := rangeAndLimit(w, r)
	if !ok {
		return
	}
	found, err := clockview.Changes(r.Context(), s.Clock, from, to)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, map[string]any{"changes": orEmpty(found)})
}

func (s Sources) clockOutside(w http.ResponseWriter, r *http.Request) {
	from, to, _, ok := rangeAndLimit(w, r)
	if !ok {
		return
	}
	found, err := clockview.OutsideAccuracy(r.Context(), s.Clock, r.URL.Query().Get("service"), from, to)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, map[string]any{"periods": orEmpty(found)})
}

type projectionStatus struct {
	Name       string  `json:"name"`
	Checkpoint uint64  `json:"checkpoint"`
	Head       uint64  `json:"head"`
	LagEvents  uint64  `json:"lagEvents"`
	LagP50     float64 `json:"lagP50Seconds"`
	LagP99     float64 `json:"lagP99Seconds"`
	LagMax     float64 `json:"lagMaxSeconds"`
	Failed     string  `json:"failed,omitempty"`
}

func (s Sources) projections(w http.ResponseWriter, _ *http.Request) {
	var out []projectionStatus
	if s.Status != nil {
		for _, p := range s.Status() {
			out = append(out, projectionStatus{p.Name, p.Checkpoint, p.Head, p.LagEvents,
				p.LagP50.Seconds(), p.LagP99.Seconds(), p.LagMax.Seconds(), p.Failed})
		}
	}
	writeJSON(w, map[string]any{"projections": orEmpty(out)})
}

func rangeAndLimit(w http.ResponseWriter, r *http.Request) (time.Time, time.Time, int, bool) {
	q := r.URL.Query()
	from, to, err := timeRange(q.Get("from"), q.Get("to"))
	var lim int
	if err == nil {
		lim, err = limit(q.Get("limit"))
	}
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return time.Time{}, time.Time{}, 0, false
	}
	return from, to, lim, true
}

// parseTime reads RFC 3339 or a day (YYYY-MM-DD, midnight UTC).
func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a day YYYY-MM-DD", v)
	}
	return t, nil
}

func timeRange(from, to string) (time.Time, time.Time, error) {
	var f, t time.Time
	var err error
	if from != "" {
		if f, err = parseTime(from); err != nil {
			return f, t, fmt.Errorf("from: %w", err)
		}
	}
	if to != "" {
		if t, err = parseTime(to); err != nil {
			return f, t, fmt.Errorf("to: %w", err)
		}
	}
	if !f.IsZero() && !t.IsZero() && t.Before(f) {
		return f, t, errors.New("to is before from")
	}
	return f, t, nil
}

func limit(v string) (int, error) {
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("limit %q is not a number from 1 to 1000", v)
	}
	return n, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers 500 for a read store's error; the read side never writes
// the record, so nothing is lost, and the detail is the operator's.
func fail(w http.ResponseWriter, err error) {
	problem(w, http.StatusInternalServerError, err.Error())
}
