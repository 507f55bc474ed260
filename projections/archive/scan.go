package archive

import (
	"bytes"
	"database/sql"
	"errors"
	"unicode/utf8"
	"unsafe"

	"github.com/chronolog/chronolog/domain/events"
)

// rawString returns the content of the JSON string v: a subslice of v when
// it holds no escape (the rule for the hex, OIDs and names the archive
// reads), a decoded copy otherwise.
func rawString(v []byte) ([]byte, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		body := v[1 : len(v)-1]
		if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
			return body, nil
		}
	}
	s, err := events.String(v)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// alias views b as a string without copying. The string must not outlive
// b's contents: it is only handed to calls that copy or forget it.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// unixNano decodes a JSON RFC 3339 time to unix nanoseconds. The form the
// events are written in, UTC with 'Z' and up to nine fraction digits, is
// decoded here; any other goes through time.Parse.
func unixNano(v []byte) (int64, error) {
	if n, ok := parseUTC(v); ok {
		return n, nil
	}
	t, err := events.Time(v)
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}

// parseUTC decodes `"YYYY-MM-DDTHH:MM:SS[.fffffffff]Z"`.
func parseUTC(v []byte) (int64, bool) {
	// "2006-01-02T15:04:05Z" with its quotes is 22 bytes.
	if len(v) < 22 || v[0] != '"' || v[len(v)-1] != '"' || v[len(v)-2] != 'Z' {
		return 0, false
	}
	s := v[1 : len(v)-2]
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	num := func(b []byte) (int64, bool) {
		var n int64
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		return n, true
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	hour, ok4 := num(s[11:13])
	minute, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	var frac int64
	if rest := s[19:]; len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return 0, false
		}
		f, ok := num(rest[1:])
		if !ok {
			return 0, false
		}
		for i := len(rest) - 1; i < 9; i++ {
			f *= 10
		}
		frac = f
	}
	secs := daysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec
	return secs*1e9 + frac, true
}

func daysIn(year, month int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
