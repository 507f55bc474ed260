package trilliantest

import "testing"

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		in, uri string // uri: uriFor("db"); empty when in is refused
	}{
		{"root@tcp(127.0.0.1:3306)/", "root@tcp(127.0.0.1:3306)/db"},
		{"u:p@tcp(db.local:3307)/?parseTime=true", "u:p@tcp(db.local:3307)/db?parseTime=true"},
		{"u@tcp(localhost)/", "u@tcp(localhost:3306)/db"},
		{"u@tcp([::1]:3306)/", "u@tcp([::1]:3306)/db"},
		{"root@tcp(127.0.0.1:3306)/trillian", ""}, // names a database
		{"@tcp(127.0.0.1:3306)/", ""},             // no user
		{"root@unix(/run/mysqld.sock)/", ""},      // not TCP
		{"mysql://root@127.0.0.1/", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			d, err := parseDSN(tc.in)
			if tc.uri == "" {
				if err == nil {
					t.Fatalf("accepted, as %+v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.uriFor("db"); got != tc.uri {
				t.Fatalf("uriFor = %q, want %q", got, tc.uri)
			}
		})
	}
}
