package billing

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Row is the counts of one client of one service on one UTC day.
type Row struct {
	// Day is the UTC day, 2006-01-02.
	Day     string `json:"day"`
	Service string `json:"service"`
	// Client is the identity the filters established; empty for
	// anonymous requests.
	Client string `json:"client"`
	// Issued counts tokens issued; Rejected TSP rejections; Refused
	// transport refusals; Forwarded requests passed to an upstream TSA.
	Issued    int64 `json:"issued"`
	Rejected  int64 `json:"rejected"`
	Refused   int64 `json:"refused"`
	Forwarded int64 `json:"forwarded"`
}

// Filter selects rows for Counts.
type Filter struct {
	// From and To are the first and last UTC days (both inclusive) of
	// the instants given; zero is unbounded.
	From, To time.Time
	// Service and Client select one service or client; empty selects
	// all (anonymous requests cannot be selected alone).
	Service, Client string
}

// Counts returns the rows f selects, ordered by day, service, client.
func Counts(ctx context.Context, db *sql.DB, f Filter) ([]Row, error) {
	var (
		where []string
		args  []any
	)
	if !f.From.IsZero() {
		where, args = append(where, `day >= ?`), append(args, f.From.UTC().Format(dayLayout))
	}
	if !f.To.IsZero() {
		where, args = append(where, `day <= ?`), append(args, f.To.UTC().Format(dayLayout))
	}
	if f.Service != "" {
		where, args = append(where, `service = ?`), append(args, f.Service)
	}
	if f.Client != "" {
		where, args = append(where, `client = ?`), append(args, f.Client)
	}
	q := `SELECT day, service, client, issued, rejected, refused, forwarded FROM billing`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := db.QueryContext(ctx, q+` ORDER BY day, service, client`, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: counts: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Day, &r.Service, &r.Client, &r.Issued, &r.Rejected, &r.Refused, &r.Forwarded); err != nil {
			return nil, fmt.Errorf("billing: counts: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: counts: %w", err)
	}
	return out, nil
}

// CSVHeader is the header line WriteCSV writes.
var CSVHeader = []string{"day", "service", "client", "issued", "rejected", "refused", "forwarded"}

// WriteCSV writes rows as CSV (RFC 4180), after a header line.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	rec := make([]string, len(CSVHeader))
	for _, r := range rows {
		rec[0], rec[1], rec[2] = r.Day, r.Service, r.Client
		rec[3] = strconv.FormatInt(r.Issued, 10)
		rec[4] = strconv.FormatInt(r.Rejected, 10)
		rec[5] = strconv.FormatInt(r.Refused, 10)
		rec[6] = strconv.FormatInt(r.Forwarded, 10)
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
