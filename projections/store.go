package projections

import (
	"context"
	"errors"
)

// Store is a projection's read store: its tables and its checkpoint, the
// position of the last event applied, which moves in the same transaction
// as the rows. adapters/readstore/sqlite keeps one in a SQLite file.
type Store interface {
	// Checkpoint is the position of the last event applied.
	Checkpoint() uint64
	// Update runs fn in one transaction that also moves the checkpoint to
	// position to, above the checkpoint. When fn or the commit fails,
	// nothing of it stays and the checkpoint does not move.
	Update(ctx context.Context, to uint64, fn func(Tx) error) error
}

// Tx is a read store's transaction: statements in the store's SQL
// (SQLite's), with positional parameters.
type Tx interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// QueryRow runs a query expected to return at most one row.
	QueryRow(ctx context.Context, query string, args ...any) Row
	// Query runs a query returning rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Row is a QueryRow's result. Scan returns ErrNoRows when there is none.
// Scan accepts *string, *[]byte, *int64, *int, *uint64, *bool and
// *float64 destinations; a NULL leaves their zero value.
type Row interface {
	Scan(dest ...any) error
}

// Rows are a Query's results, scanned as Row's.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// ErrNoRows is Row.Scan's error for a query that returned no row.
var ErrNoRows = errors.New("projections: no row")
