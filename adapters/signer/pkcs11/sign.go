package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"

	p11 "github.com/miekg/pkcs11"
)

// Sign signs digest with the key in the token (crypto.Signer; rand is
// not used, the token draws its own randomness):
//   - ECDSA: CKM_ECDSA over the digest, answered in ASN.1 DER;
//   - RSA: CKM_RSA_PKCS over the DigestInfo of a SHA-256, SHA-384 or
//     SHA-512 digest, or CKM_RSA_PKCS_PSS when opts is *rsa.PSSOptions;
//   - Ed25519: CKM_EDDSA over the whole message, opts.HashFunc() being 0.
//
// While the key is unusable it fails at once with ErrUnavailable; with no
// session free within Config.Wait, with ErrBusy.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, fmt.Errorf("pkcs11: sign with key %s: no signer options", k.cfg.selector())
	}
	r, err := k.request(digest, opts)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: sign with key %s: %w", k.cfg.selector(), err)
	}
	var sig []byte
	err = k.withSession(func(_ *p11.Ctx, s *session) (err error) {
		sig, err = r.sign(k.mod.fns, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: sign with key %s on token %q: %w", k.cfg.selector(), k.cfg.Token, err)
	}
	return sig, nil
}

const (
	digestInfoMax = 19 + 64 // the DigestInfo of a SHA-512 digest
	ecdsaRawMax   = 2 * 66  // r||s on P-521
)

// request is one signature asked of the token: the mechanism, what it
// signs, and how the token's signature becomes Go's.
type request struct {
	mech mech
	// input is what C_Sign signs; when prefix is set, it is prefix and
	// input together, put in the session's scratch space.
	input, prefix []byte
	// ecSize is the length of r and of s of an ECDSA key, whose r||s
	// becomes DER; 0 for other keys, whose signature is the token's.
	ecSize int
	// sigLen is the signature's length as the token answers it.
	sigLen int
}

// request chooses the mechanism and what it signs for the key and opts.
func (k *Key) request(digest []byte, opts crypto.SignerOpts) (request, error) {
	hash := opts.HashFunc()
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		if hash == 0 || len(digest) != hash.Size() {
			return request{}, fmt.Errorf("ECDSA signs a digest: %d bytes given for %v", len(digest), hash)
		}
		return request{mech: mech{typ: p11.CKM_ECDSA}, input: digest, ecSize: k.ecSize, sigLen: 2 * k.ecSize}, nil
	case *rsa.PublicKey:
		if len(digest) != hash.Size() || hash.Size() == 0 {
			return request{}, fmt.Errorf("RSA signs a digest: %d bytes given for %v", len(digest), hash)
		}
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			params, err := pssParams(hash, pss.SaltLength, pub)
			if err != nil {
				return request{}, err
			}
			return request{mech: mech{typ: p11.CKM_RSA_PKCS_PSS, param: params}, input: digest, sigLen: pub.Size()}, nil
		}
		prefix, ok := digestInfoPrefix[hash]
		if !ok {
			return request{}, fmt.Errorf("RSA PKCS#1 v1.5 with %v: Chronolog signs SHA-256, SHA-384 or SHA-512", hash)
		}
		return request{mech: mech{typ: p11.CKM_RSA_PKCS}, input: digest, prefix: prefix, sigLen: pub.Size()}, nil
	case ed25519.PublicKey:
		if hash != 0 {
			return request{}, fmt.Errorf("Ed25519 signs the message itself, not a %v digest (Ed25519ph is not supported)", hash)
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return request{}, errors.New("Ed25519ctx (a context string) is not supported")
		}
		return request{mech: mech{typ: ckmEdDSA}, input: digest, sigLen: ed25519.SignatureSize}, nil
	}
	return request{}, fmt.Errorf("a %T key cannot sign", k.pub)
}

// sign signs on s: one cgo call to C_SignInit and C_Sign, into the
// signature it returns or, for ECDSA, the session's scratch space.
func (r *request) sign(fs functions, s *session) ([]byte, error) {
	in := r.input
	if r.prefix != nil {
		in = append(append(s.in[:0], r.prefix...), r.input...)
	}
	if r.ecSize == 0 {
		return fs.sign(s.h, s.obj, r.mech, in, make([]byte, r.sigLen))
	}
	raw, err := fs.sign(s.h, s.obj, r.mech, in, s.raw[:r.sigLen])
	if err != nil {
		return nil, err
	}
	return ecdsaDER(raw, r.ecSize)
}

// ecdsaDER turns the token's r||s into the ASN.1 SEQUENCE of two
// INTEGERs that X.509, CMS and ecdsa.VerifyASN1 expect, written by hand:
// encoding/asn1 would cost two big.Int and a reflective walk per token.
func ecdsaDER(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size || 2*size > ecdsaRawMax {
		return nil, fmt.Errorf("the token answered an ECDSA signature of %d bytes, not %d", len(raw), 2*size)
	}
	r, s := derInteger(raw[:size]), derInteger(raw[size:])
	if r.len() == 0 || s.len() == 0 {
		return nil, errors.New("the token answered an ECDSA signature with a zero r or s")
	}
	// Each INTEGER is at most 67 octets (P-521), so its length fits in
	// one octet; the SEQUENCE's takes two (0x81 n) past 127.
	body := 2 + r.len() + 2 + s.len()
	out := make([]byte, 0, 3+body)
	out = append(out, 0x30)
	if body > 127 {
		out = append(out, 0x81)
	}
	out = append(out, byte(body))
	return s.append(r.append(out)), nil
}

// derInt is the content of a DER INTEGER of an unsigned big-endian
// number: its digits without leading zeros, after a zero octet when the
// first digit's high bit is set.
type derInt struct {
	digits []byte
	pad    bool
}

func derInteger(b []byte) derInt {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return derInt{digits: b, pad: len(b) > 0 && b[0] >= 0x80}
}

// len is the content's length; 0 for the number zero, which an ECDSA
// signature never holds.
func (d derInt) len() int {
	if d.pad {
		return 1 + len(d.digits)
	}
	return len(d.digits)
}

func (d derInt) append(out []byte) []byte {
	out = append(out, 0x02, byte(d.len()))
	if d.pad {
		out = append(out, 0)
	}
	return append(out, d.digits...)
}

// digestInfoPrefix is the DER of DigestInfo up to the digest (RFC 8017
// §9.2 note 1): CKM_RSA_PKCS pads what it is given, so the DigestInfo is
// ours to build.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssHashes = map[crypto.Hash]struct{ mech, mgf uint }{
	crypto.SHA256: {p11.CKM_SHA256, p11.CKG_MGF1_SHA256},
	crypto.SHA384: {p11.CKM_SHA384, p11.CKG_MGF1_SHA384},
	crypto.SHA512: {p11.CKM_SHA512, p11.CKG_MGF1_SHA512},
}

// pssParams are the CK_RSA_PKCS_PSS_PARAMS for Go's salt length, which
// the token needs spelt out: PSSSaltLengthAuto signs with the longest salt
// that fits, as rsa.SignPSS does, and PSSSaltLengthEqualsHash with one of
// the digest's length.
func pssParams(hash crypto.Hash, saltLength int, pub *rsa.PublicKey) ([]byte, error) {
	h, ok := pssHashes[hash]
	if !ok {
		return nil, fmt.Errorf("RSA-PSS with %v: Chronolog signs SHA-256, SHA-384 or SHA-512", hash)
	}
	salt, err := pssSaltLength(saltLength, hash.Size(), pub.N.BitLen())
	if err != nil {
		return nil, err
	}
	return p11.NewPSSParams(h.mech, h.mgf, uint(salt)), nil
}

func pssSaltLength(saltLength, hashLen, modBits int) (int, error) {
	longest := (modBits-1+7)/8 - hashLen - 2 // RFC 8017 §9.1.1: emLen - hLen - 2
	switch {
	case saltLength == rsa.PSSSaltLengthAuto:
		return longest, nil
	case saltLength == rsa.PSSSaltLengthEqualsHash:
		return hashLen, nil
	case saltLength > 0 && saltLength <= longest:
		return saltLength, nil
	}
	return 0, fmt.Errorf("RSA-PSS salt length %d does not fit a %d-bit key (at most %d)", saltLength, modBits, longest)
}
