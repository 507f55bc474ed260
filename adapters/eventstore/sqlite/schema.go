package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/chronolog/chronolog/domain/eventstore"
)

// schemaVersion is kept in PRAGMA user_version.
//
//	v1: one row per event (events), id and (stream, revision) indexed.
//	v2: one row per append (appends, see record.go) keyed by the position
//	    of its last event; event ids in their own WITHOUT ROWID index.
//	v3: the dictionaries records are compressed against (dict.go).
const schemaVersion = 3

const schemaV2 = `
CREATE TABLE appends (
	last_position  INTEGER PRIMARY KEY,
	stream         TEXT    NOT NULL CHECK (stream <> ''),
	first_revision INTEGER NOT NULL CHECK (first_revision >= 0),
	count          INTEGER NOT NULL CHECK (count > 0 AND count <= last_position),
	record         BLOB    NOT NULL,
	UNIQUE (stream, first_revision)
) STRICT;
CREATE TABLE event_ids (
	id       BLOB    PRIMARY KEY CHECK (length(id) = 16),
	position INTEGER NOT NULL
) STRICT, WITHOUT ROWID;`

const schemaV3 = `
CREATE TABLE dictionaries (
	id   INTEGER PRIMARY KEY,
	dict BLOB    NOT NULL
) STRICT;`

// migrate brings the schema to schemaVersion in one transaction.
func migrate(ctx context.Context, c *sql.Conn) (err error) {
	var v int
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this build (%d)", v, schemaVersion)
	}
	if v == schemaVersion {
		return nil
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(ctx, "ROLLBACK")
		}
	}()
	if v < 2 {
		if _, err := c.ExecContext(ctx, schemaV2); err != nil {
			return err
		}
	}
	if v == 1 {
		if err := migrateV1(ctx, c); err != nil {
			return fmt.Errorf("v1 → v2: %w", err)
		}
	}
	if _, err := c.ExecContext(ctx, schemaV3); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, "COMMIT")
	return err
}

// migrateV1 turns every v1 event row into a one-event record, keeping its
// position, and drops the v1 table.
func migrateV1(ctx context.Context, c *sql.Conn) error {
	rows, err := c.QueryContext(ctx, "SELECT position, stream, revision, id, type, payload FROM events ORDER BY position")
	if err != nil {
		return err
	}
	type v1Event struct {
		pos, rev int64
		stream   string
		e        eventstore.EventData
	}
	var all []v1Event
	for rows.Next() {
		var r v1Event
		if err := rows.Scan(&r.pos, &r.stream, &r.rev, &r.e.ID, &r.e.Type, &r.e.Payload); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range all {
		enc, err := encodeAppend([]eventstore.EventData{r.e}, nil)
		if err != nil {
			return fmt.Errorf("event at position %d: %w", r.pos, err)
		}
		if _, err := c.ExecContext(ctx,
			"INSERT INTO appends (last_position, stream, first_revision, count, record) VALUES (?, ?, ?, 1, ?)",
			r.pos, r.stream, r.rev, enc.record); err != nil {
			return fmt.Errorf("event at position %d: %w", r.pos, err)
		}
		if _, err := c.ExecContext(ctx, "INSERT INTO event_ids (id, position) VALUES (?, ?)", enc.ids[0][:], r.pos); err != nil {
			return fmt.Errorf("event at position %d: %w", r.pos, err)
		}
	}
	_, err = c.ExecContext(ctx, "DROP TABLE events")
	return err
}
