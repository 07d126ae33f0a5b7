package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
)

// likePattern turns text into a LIKE pattern matching it anywhere, case-folded, with the
// pattern characters escaped (queries say ESCAPE '\').
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(text)) + "%"
}

// page turns offset and limit (0: all) into LIMIT and OFFSET arguments both databases take.
func page(offset, limit int) (int, int) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	return limit, max(offset, 0)
}

// listPage runs a listing: the number of rows from (a FROM ... WHERE ... clause with args)
// selects in all, and the page of them that query (SELECT columns, then from, then an ORDER BY,
// with LIMIT and OFFSET appended here) returns, each row read by scan. what names the
// listing in errors.
func listPage[T any](ctx context.Context, s *Store, what, columns, from, orderBy string, args []any,
	offset, limit int, scan func(rowScanner) (T, error)) ([]T, int, error) {
	var total int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) `+from, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: count %s: %w", what, err)
	}
	limit, offset = page(offset, limit)
	rows, err := s.query(ctx, s.db, `SELECT `+columns+` `+from+` ORDER BY `+orderBy+` LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	out, err := collect(rows, err, what, scan)
	return out, total, err
}

// collect reads every row of a query (rows and err as the query returned them) with scan.
func collect[T any](rows *sql.Rows, err error, what string, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list %s: %w", what, err)
	}
	return out, nil
}
