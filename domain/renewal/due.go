package renewal

import (
	"strings"
	"time"
)

// Token is what the assessment needs to know of an issued timestamp token.
type Token struct {
	Serial  string
	GenTime time.Time
	// HashAlgorithm is the message imprint's hash algorithm, as
	// TimestampRequested names it; empty when the request is not on record.
	HashAlgorithm string
	// KeyType is the TSA key's type (rsa-2048, ecdsa-p256, …).
	KeyType string
	// CertNotAfter, CertIssuer and CertSerial describe the TSA certificate;
	// a zero CertNotAfter means the certificate is unknown to the record.
	CertNotAfter time.Time
	CertIssuer   string
	CertSerial   string
}

// Assessment is when a token loses its evidential value, why, and which
// renewal keeps it.
type Assessment struct {
	// DueAt is the last instant the token keeps its value unrenewed. It
	// precedes GenTime for a token made with an algorithm already ended.
	DueAt time.Time
	// Reason says what ends at DueAt: "certificate expires", "signature
	// algorithm rsa-2048 ends", "hash algorithm sha256 ends", or, fail safe,
	// what is unknown. Several reasons ending at the same instant are
	// joined by "; ", certificate first, then signature, then hash.
	Reason string
	// Renewal is RenewalTimestamp or RenewalHashTree.
	Renewal string
}

// The renewal kinds of RFC 4998 §5.2.
//
// A token proves that its message imprint existed at genTime for as long
// as three things hold: the TSA certificate is valid, the signature
// algorithm and key size are not forgeable, and the imprint's hash
// algorithm (the messageImprint of RFC 3161 §2.4.2) admits no second
// preimage. RFC 4998 §5.2 asks for a new Archive Timestamp before any of
// them gives way ("before cryptographic algorithms become weak or
// timestamp certificates become invalid") and names two ways to make it:
//
//   - Timestamp renewal: the old token is hashed and timestamped again by
//     a new token, under a valid certificate and a strong signature. It is
//     enough when what ages is the token's own signature or certificate:
//     the verification of §5.3 (step 2) needs each Archive Timestamp to be
//     valid only relative to the time of the one that follows it, so the
//     new token carries the old one's proof past its certificate's expiry
//     and its signature algorithm's end.
//   - Hash-tree renewal: the archived data itself is hashed again with a
//     secure hash algorithm and timestamped together with the old
//     sequence, in a new chain. It is needed when the imprint's hash
//     algorithm weakens: a new token over the old one still dates only
//     the weak imprint, which another document may then be forged to
//     match, and §5.3 (step 2) requires a chain's hash algorithm to be
//     secure at the time of the first Archive Timestamp of the chain that
//     follows. It also renews the timestamp, so when the hash algorithm
//     ends at the same instant as the signature or the certificate,
//     hash-tree renewal is the one asked for.
const (
	RenewalTimestamp = "timestamp"
	RenewalHashTree  = "hash-tree"
)

// ReasonCertificateUnknown is the reason given for a token whose TSA
// certificate was never activated on record: due at once, to be looked at.
const ReasonCertificateUnknown = "certificate unknown to the record"

// Due assesses t against c: the earliest of the certificate's expiry, the
// signature algorithm's end and the hash algorithm's end wins. What cannot
// be assessed (a certificate, key type or hash algorithm unknown to the
// record, or an algorithm the catalogue does not list or cannot date) is
// due at GenTime, fail safe: it must be looked at.
func Due(t Token, c *Catalog) Assessment {
	type candidate struct {
		at     time.Time
		reason string
		hash   bool
	}
	var cs []candidate
	gen := t.GenTime.UTC()

	certKnown := !t.CertNotAfter.IsZero()
	if certKnown {
		cs = append(cs, candidate{at: t.CertNotAfter.UTC(), reason: "certificate expires"})
	} else {
		cs = append(cs, candidate{at: gen, reason: ReasonCertificateUnknown})
	}

	// An unknown certificate leaves its key type unknown too: the
	// certificate's reason says it all.
	if t.KeyType != "" || certKnown {
		until, s := c.signature(t.KeyType)
		cs = append(cs, candidate{at: pick(until, s, gen), reason: algorithmReason("signature", t.KeyType, s)})
	}

	until, s := c.hash(t.HashAlgorithm)
	cs = append(cs, candidate{at: pick(until, s, gen), reason: algorithmReason("hash", t.HashAlgorithm, s), hash: true})

	first := cs[0].at
	for _, x := range cs[1:] {
		if x.at.Before(first) {
			first = x.at
		}
	}
	a := Assessment{DueAt: first, Renewal: RenewalTimestamp}
	var reasons []string
	for _, x := range cs {
		if x.at.Equal(first) {
			reasons = append(reasons, x.reason)
			if x.hash {
				a.Renewal = RenewalHashTree
			}
		}
	}
	a.Reason = strings.Join(reasons, "; ")
	return a
}

func pick(until time.Time, s status, gen time.Time) time.Time {
	if s == valid {
		return until
	}
	return gen
}

func algorithmReason(kind, name string, s status) string {
	switch {
	case name == "":
		return kind + " algorithm unknown to the record"
	case s == valid:
		return kind + " algorithm " + name + " ends"
	case s == undated:
		return kind + " algorithm " + name + " has no end date in the catalogue"
	}
	return kind + " algorithm " + name + " is not in the catalogue"
}
