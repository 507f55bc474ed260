package e2e

import (
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// The structures below re-state RFC 3161 with Go's encoding/asn1, so the
// tests build requests and read answers without the code under test.

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type messageImprint struct {
	HashAlgorithm algorithmIdentifier
	HashedMessage []byte
}

type timeStampReq struct {
	Version        int
	MessageImprint messageImprint
	ReqPolicy      asn1.ObjectIdentifier `asn1:"optional"`
	Nonce          asn1.RawValue         `asn1:"optional"`
	CertReq        bool                  `asn1:"optional"`
	Extensions     []pkix.Extension      `asn1:"optional,tag:0"`
}

type pkiStatusInfo struct {
	Status       int
	StatusString []string       `asn1:"optional,utf8"`
	FailInfo     asn1.BitString `asn1:"optional"`
}

type timeStampResp struct {
	Status pkiStatusInfo
	Token  asn1.RawValue `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo encapsulatedContentInfo
	Rest             []asn1.RawValue `asn1:"optional"`
}

type encapsulatedContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,tag:0"`
}

// tstInfo uses time.Time with the generalized tag: Go's strict decoder
// refuses malformed GeneralizedTime that real clients let through.
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
	GenTime        time.Time       `asn1:"generalized"`
	Accuracy       asn1.RawValue   `asn1:"optional"`
	Ordering       bool            `asn1:"optional"`
	Nonce          asn1.RawValue   `asn1:"optional"`
	Rest           []asn1.RawValue `asn1:"optional"`
}

var (
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidMD5    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	asn1NULL  = asn1.RawValue{Tag: asn1.TagNull}
)

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sha256Query returns a valid request for the SHA-256 of data.
func sha256Query(data string) timeStampReq {
	sum := sha256.Sum256([]byte(data))
	return timeStampReq{
		Version:        1,
		MessageImprint: messageImprint{HashAlgorithm: algorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1NULL}, HashedMessage: sum[:]},
		CertReq:        true,
	}
}

// rawInteger encodes content octets as an INTEGER for the nonce field.
func rawInteger(content []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagInteger, Bytes: content}
}

func parseResp(t *testing.T, der []byte) timeStampResp {
	t.Helper()
	r, err := tryParseResp(der)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tryParseResp(der []byte) (timeStampResp, error) {
	var r timeStampResp
	rest, err := asn1.Unmarshal(der, &r)
	if err != nil || len(rest) != 0 {
		return r, fmt.Errorf("TimeStampResp does not parse strictly: %v (%d trailing bytes)", err, len(rest))
	}
	return r, nil
}

// tokenTSTInfo digs the TSTInfo out of a granted answer with the strict decoder.
func tokenTSTInfo(t *testing.T, r timeStampResp) tstInfo {
	t.Helper()
	info, err := tryTSTInfo(r)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func tryTSTInfo(r timeStampResp) (tstInfo, error) {
	var info tstInfo
	var ci contentInfo
	if _, err := asn1.Unmarshal(r.Token.FullBytes, &ci); err != nil {
		return info, fmt.Errorf("token ContentInfo: %v", err)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return info, fmt.Errorf("SignedData: %v", err)
	}
	if sd.Version != 3 {
		return info, fmt.Errorf("SignedData version %d, want 3", sd.Version)
	}
	rest, err := asn1.Unmarshal(sd.EncapContentInfo.EContent, &info)
	if err != nil || len(rest) != 0 {
		return info, fmt.Errorf("TSTInfo does not parse strictly (genTime included): %v", err)
	}
	return info, nil
}

func marshalQuiet(v any) ([]byte, error) { return asn1.Marshal(v) }
