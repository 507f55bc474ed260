package renewal

import (
	"strings"
	"testing"
	"time"
)

func load(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func end(year int, month time.Month, day int) time.Time {
	return time.Date(year, month, day, 23, 59, 59, 0, time.UTC)
}

func TestEmbeddedCatalog(t *testing.T) {
	c := load(t)
	if c.Version() == "" || c.Date().IsZero() {
		t.Errorf("version %q, date %v", c.Version(), c.Date())
	}
	ids := map[string]bool{}
	for _, s := range c.Sources() {
		ids[s.ID] = true
		if s.Title == "" || s.Reading == "" {
			t.Errorf("source %q: title and reading are required", s.ID)
		}
	}
	if !ids["etsi-ts-119-312-v1.5.1"] || !ids["issue"] {
		t.Errorf("sources %v: ETSI TS 119 312 V1.5.1 and the issue's reading expected", ids)
	}
}

func TestHashValidUntil(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		name  string
		until time.Time
		ok    bool
	}{
		{"md5", end(2004, 7, 31), true},
		{"sha1", end(2012, 7, 31), true},
		{"sha224", end(2026, 12, 31), true},
		{"sha256", end(2029, 12, 31), true},
		{"sha384", end(2029, 12, 31), true},
		{"sha512", end(2029, 12, 31), true},
		{"sha3-256", end(2029, 12, 31), true},
		{"sha3-384", end(2029, 12, 31), true},
		{"sha3-512", end(2029, 12, 31), true},
		{"SHA256", time.Time{}, false}, // names are the events', lower case
		{"sha3-224", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		until, ok := c.HashValidUntil(tc.name)
		if ok != tc.ok || !until.Equal(tc.until) {
			t.Errorf("HashValidUntil(%q) = %v, %v; want %v, %v", tc.name, until, ok, tc.until, tc.ok)
		}
	}
}

func TestSignatureValidUntil(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		keyType string
		until   time.Time
		ok      bool
	}{
		{"rsa-2048", end(2026, 12, 31), true},
		{"rsa-1900", end(2026, 12, 31), true},
		{"rsa-2999", end(2026, 12, 31), true},
		{"rsa-3000", end(2028, 12, 31), true},
		{"rsa-3072", end(2028, 12, 31), true},
		{"rsa-4096", end(2028, 12, 31), true},
		{"rsa-1024", time.Time{}, false},
		{"ecdsa-p256", end(2029, 12, 31), true},
		{"ecdsa-p384", end(2029, 12, 31), true},
		{"ecdsa-p521", end(2029, 12, 31), true},
		{"ecdsa-p224", time.Time{}, false},
		{"ed25519", time.Time{}, false}, // listed, no date could be sourced
		{"dsa-2048", time.Time{}, false},
		{"rsa-", time.Time{}, false},
		{"rsa-+2048", time.Time{}, false},
		{"rsa-02048", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		until, ok := c.SignatureValidUntil(tc.keyType)
		if ok != tc.ok || !until.Equal(tc.until) {
			t.Errorf("SignatureValidUntil(%q) = %v, %v; want %v, %v", tc.keyType, until, ok, tc.until, tc.ok)
		}
	}
}

func TestParseKeyType(t *testing.T) {
	for _, tc := range []struct {
		in     string
		family string
		bits   int
		ok     bool
	}{
		{"rsa-2048", "rsa", 2048, true},
		{"ecdsa-p384", "ecdsa", 384, true},
		{"ed25519", "ed25519", 256, true},
		{"ed448", "ed448", 448, true},
		{"ecdsa-p", "", 0, false},
		{"rsa--1", "", 0, false},
		{"RSA-2048", "", 0, false},
	} {
		f, b, ok := ParseKeyType(tc.in)
		if f != tc.family || b != tc.bits || ok != tc.ok {
			t.Errorf("ParseKeyType(%q) = %q, %d, %v; want %q, %d, %v", tc.in, f, b, ok, tc.family, tc.bits, tc.ok)
		}
	}
}

func TestDue(t *testing.T) {
	c := load(t)
	gen := time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)
	for _, tc := range []struct {
		name    string
		tok     Token
		due     time.Time
		reason  string
		renewal string
	}{
		{
			name: "rsa-2048: the signature algorithm ends first",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha256", KeyType: "rsa-2048", CertNotAfter: end(2031, 6, 30)},
			due:  end(2026, 12, 31), reason: "signature algorithm rsa-2048 ends", renewal: RenewalTimestamp,
		},
		{
			name: "ecdsa-p256 and sha256: the certificate expires before 2029",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha256", KeyType: "ecdsa-p256", CertNotAfter: time.Date(2028, 3, 31, 10, 0, 0, 0, time.UTC)},
			due:  time.Date(2028, 3, 31, 10, 0, 0, 0, time.UTC), reason: "certificate expires", renewal: RenewalTimestamp,
		},
		{
			name: "ecdsa-p256 and sha256: both algorithms end in 2029, the hash asks for hash-tree renewal",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha256", KeyType: "ecdsa-p256", CertNotAfter: end(2035, 1, 1)},
			due:  end(2029, 12, 31), reason: "signature algorithm ecdsa-p256 ends; hash algorithm sha256 ends", renewal: RenewalHashTree,
		},
		{
			name: "ecdsa-p384 and sha512 with a certificate past 2029",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha512", KeyType: "ecdsa-p384", CertNotAfter: end(2030, 1, 1)},
			due:  end(2029, 12, 31), reason: "signature algorithm ecdsa-p384 ends; hash algorithm sha512 ends", renewal: RenewalHashTree,
		},
		{
			name: "sha224 imprint: hash-tree renewal at the end of 2026",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha224", KeyType: "ecdsa-p256", CertNotAfter: end(2030, 1, 1)},
			due:  end(2026, 12, 31), reason: "hash algorithm sha224 ends", renewal: RenewalHashTree,
		},
		{
			name: "sha224 imprint on rsa-2048: same instant, both reasons, hash-tree",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha224", KeyType: "rsa-2048", CertNotAfter: end(2030, 1, 1)},
			due:  end(2026, 12, 31), reason: "signature algorithm rsa-2048 ends; hash algorithm sha224 ends", renewal: RenewalHashTree,
		},
		{
			name: "certificate and signature end together: timestamp renewal",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha384", KeyType: "rsa-2048", CertNotAfter: end(2026, 12, 31)},
			due:  end(2026, 12, 31), reason: "certificate expires; signature algorithm rsa-2048 ends", renewal: RenewalTimestamp,
		},
		{
			name: "rsa-4096: the source's end of 2028",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha3-256", KeyType: "rsa-4096", CertNotAfter: end(2032, 1, 1)},
			due:  end(2028, 12, 31), reason: "signature algorithm rsa-4096 ends", renewal: RenewalTimestamp,
		},
		{
			name: "sha1 imprint: ended before the token was made",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha1", KeyType: "ecdsa-p256", CertNotAfter: end(2030, 1, 1)},
			due:  end(2012, 7, 31), reason: "hash algorithm sha1 ends", renewal: RenewalHashTree,
		},
		{
			name: "certificate unknown to the record: due at genTime",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha256"},
			due:  gen, reason: ReasonCertificateUnknown, renewal: RenewalTimestamp,
		},
		{
			name: "certificate and request unknown: both said, hash-tree",
			tok:  Token{GenTime: gen},
			due:  gen, reason: ReasonCertificateUnknown + "; hash algorithm unknown to the record", renewal: RenewalHashTree,
		},
		{
			name: "hash algorithm unknown to the record",
			tok:  Token{GenTime: gen, KeyType: "ecdsa-p256", CertNotAfter: end(2030, 1, 1)},
			due:  gen, reason: "hash algorithm unknown to the record", renewal: RenewalHashTree,
		},
		{
			name: "ed25519: listed without a date",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha256", KeyType: "ed25519", CertNotAfter: end(2030, 1, 1)},
			due:  gen, reason: "signature algorithm ed25519 has no end date in the catalogue", renewal: RenewalTimestamp,
		},
		{
			name: "a key type the catalogue does not list",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha256", KeyType: "rsa-1024", CertNotAfter: end(2030, 1, 1)},
			due:  gen, reason: "signature algorithm rsa-1024 is not in the catalogue", renewal: RenewalTimestamp,
		},
		{
			name: "a known certificate without a key type",
			tok:  Token{GenTime: gen, HashAlgorithm: "sha256", CertNotAfter: end(2030, 1, 1)},
			due:  gen, reason: "signature algorithm unknown to the record", renewal: RenewalTimestamp,
		},
		{
			name: "a hash the catalogue does not list",
			tok:  Token{GenTime: gen, HashAlgorithm: "whirlpool", KeyType: "ecdsa-p256", CertNotAfter: end(2030, 1, 1)},
			due:  gen, reason: "hash algorithm whirlpool is not in the catalogue", renewal: RenewalHashTree,
		},
		{
			name: "times in another zone compare as instants",
			tok: Token{GenTime: gen, HashAlgorithm: "sha256", KeyType: "ecdsa-p256",
				CertNotAfter: time.Date(2028, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))},
			due: time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), reason: "certificate expires", renewal: RenewalTimestamp,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Due(tc.tok, c)
			if !a.DueAt.Equal(tc.due) || a.Reason != tc.reason || a.Renewal != tc.renewal {
				t.Errorf("Due = %v %q %q; want %v %q %q", a.DueAt, a.Reason, a.Renewal, tc.due, tc.reason, tc.renewal)
			}
		})
	}
}

func TestDueWithoutCatalog(t *testing.T) {
	gen := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a := Due(Token{GenTime: gen, HashAlgorithm: "sha256", KeyType: "ecdsa-p256", CertNotAfter: end(2030, 1, 1)}, nil)
	if !a.DueAt.Equal(gen) || a.Renewal != RenewalHashTree {
		t.Errorf("a nil catalogue knows nothing: got %+v", a)
	}
}

const header = `"version": "t", "date": "2026-01-01", "sources": [{"id": "s", "title": "t", "reading": "r"}]`

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not json", `{`, "unexpected EOF"},
		{"unknown field", `{` + header + `, "colour": "red"}`, "unknown field"},
		{"trailing data", `{` + header + `} {}`, "data after"},
		{"no version", `{"version": "", "date": "2026-01-01"}`, "version is empty"},
		{"bad date", `{"version": "t", "date": "1 Jan 2026"}`, `date "1 Jan 2026"`},
		{"duplicate source", `{"version": "t", "date": "2026-01-01", "sources": [{"id": "s"}, {"id": "s"}]}`, "declared twice"},
		{"unnamed source", `{"version": "t", "date": "2026-01-01", "sources": [{"title": "x"}]}`, "has no id"},
		{"bad hash date", `{` + header + `, "hashes": [{"name": "sha256", "lastDay": "2029-13-01", "source": "s"}]}`, `lastDay "2029-13-01"`},
		{"undeclared source", `{` + header + `, "hashes": [{"name": "sha256", "lastDay": "2029-12-31", "source": "x"}]}`, `source "x" is not declared`},
		{"duplicate hash", `{` + header + `, "hashes": [{"name": "sha256", "source": "s"}, {"name": "sha256", "source": "s"}]}`, "listed twice"},
		{"unnamed hash", `{` + header + `, "hashes": [{"source": "s"}]}`, "has no name"},
		{"no family", `{` + header + `, "signatures": [{"minBits": 1, "source": "s"}]}`, "has no family"},
		{"inverted range", `{` + header + `, "signatures": [{"family": "rsa", "minBits": 3000, "maxBits": 2000, "source": "s"}]}`, "maxBits below minBits"},
		{"negative size", `{` + header + `, "signatures": [{"family": "rsa", "minBits": -1, "source": "s"}]}`, "negative"},
		{"overlapping ranges", `{` + header + `, "signatures": [
			{"family": "rsa", "minBits": 1900, "maxBits": 3000, "lastDay": "2026-12-31", "source": "s"},
			{"family": "rsa", "minBits": 3000, "lastDay": "2029-12-31", "source": "s"}]}`, "overlaps rsa 1900-3000"},
		{"open ranges overlap", `{` + header + `, "signatures": [
			{"family": "ecdsa", "minBits": 256, "source": "s"},
			{"family": "ecdsa", "minBits": 384, "source": "s"}]}`, "overlaps ecdsa 256-0"},
		{"bad signature date", `{` + header + `, "signatures": [{"family": "rsa", "minBits": 3000, "lastDay": "soon", "source": "s"}]}`, `lastDay "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`{"version": "", "date": "x", "sources": [{"id": "s"}], "hashes": [{"name": "sha256", "lastDay": "y", "source": "z"}]}`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"version is empty", `date "x"`, `lastDay "y"`, `source "z"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %q missing", err, want)
		}
	}
}

func TestParseAcceptsAdjacentRanges(t *testing.T) {
	c, err := Parse([]byte(`{` + header + `, "signatures": [
		{"family": "rsa", "minBits": 1900, "maxBits": 2999, "lastDay": "2026-12-31", "source": "s"},
		{"family": "rsa", "minBits": 3000, "lastDay": "2029-12-31", "source": "s"},
		{"family": "ecdsa", "minBits": 1900, "source": "s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if until, ok := c.SignatureValidUntil("rsa-3000"); !ok || !until.Equal(end(2029, 12, 31)) {
		t.Errorf("rsa-3000: %v %v", until, ok)
	}
}

func TestEndedAt(t *testing.T) {
	c := load(t)
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		at      time.Time
		hashes  []string
		keyType string
		want    []Ended
	}{
		{"current algorithms", at, []string{"sha256", "sha384", "sha512"}, "ecdsa-p256", nil},
		{"SHA-1 accepted", at, []string{"sha256", "sha1"}, "ecdsa-p256",
			[]Ended{{Use: UseHash, Algorithm: "sha1", LastValid: end(2012, 7, 31)}}},
		{"RSA-2048 on its last day", end(2026, 12, 31), []string{"sha256"}, "rsa-2048", nil},
		{"RSA-2048 after its end, with MD5", end(2026, 12, 31).Add(time.Second), []string{"md5", "sha256"}, "rsa-2048",
			[]Ended{{Use: UseHash, Algorithm: "md5", LastValid: end(2004, 7, 31)}, {Use: UseSignature, Algorithm: "rsa-2048", LastValid: end(2026, 12, 31)}}},
		{"undated: not said to have ended", at, []string{"sha256"}, "ed25519", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.EndedAt(tc.at, tc.hashes, tc.keyType)
			if len(got) != len(tc.want) {
				t.Fatalf("EndedAt = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Use != tc.want[i].Use || got[i].Algorithm != tc.want[i].Algorithm || !got[i].LastValid.Equal(tc.want[i].LastValid) {
					t.Errorf("EndedAt[%d] = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
