package projections

import (
	"context"
	"database/sql"
)

// Tx is a read store's transaction for one batch. It prepares each
// distinct statement once per batch: a replay applies hundreds of
// thousands of events through a handful of statements.
type Tx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func newTx(tx *sql.Tx) *Tx { return &Tx{tx: tx, stmts: map[string]*sql.Stmt{}} }

func (t *Tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.stmts[query]; ok {
		return s, nil
	}
	s, err := t.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.stmts[query] = s
	return s, nil
}

// Exec runs a statement.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryRow runs a query expected to return at most one row.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := t.stmt(ctx, query)
	if err != nil {
		// sql.Row carries no constructor for an error: let the
		// transaction report the failed prepare through an unprepared run.
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// Query runs a query returning rows.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (t *Tx) close() {
	for _, s := range t.stmts {
		s.Close()
	}
}
