package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

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
	mech, input, finish, err := k.mechanism(digest, opts)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: sign with key %s: %w", k.cfg.selector(), err)
	}
	var sig []byte
	err = k.withSession(func(ctx *p11.Ctx, s *session) error {
		if err := ctx.SignInit(s.h, mech, s.obj); err != nil {
			return fmt.Errorf("C_SignInit: %w", err)
		}
		out, err := ctx.Sign(s.h, input)
		if err != nil {
			return fmt.Errorf("C_Sign: %w", err)
		}
		sig = out
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: sign with key %s on token %q: %w", k.cfg.selector(), k.cfg.Token, err)
	}
	if finish != nil {
		return finish(sig)
	}
	return sig, nil
}

// mechanism chooses the mechanism and what it signs for the key and
// opts, and how the token's signature becomes Go's.
func (k *Key) mechanism(digest []byte, opts crypto.SignerOpts) ([]*p11.Mechanism, []byte, func([]byte) ([]byte, error), error) {
	hash := opts.HashFunc()
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		if hash == 0 || len(digest) != hash.Size() {
			return nil, nil, nil, fmt.Errorf("ECDSA signs a digest: %d bytes given for %v", len(digest), hash)
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		return []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, digest,
			func(raw []byte) ([]byte, error) { return ecdsaDER(raw, size) }, nil
	case *rsa.PublicKey:
		if len(digest) != hash.Size() || hash.Size() == 0 {
			return nil, nil, nil, fmt.Errorf("RSA signs a digest: %d bytes given for %v", len(digest), hash)
		}
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			params, err := pssParams(hash, pss.SaltLength, pub)
			if err != nil {
				return nil, nil, nil, err
			}
			return []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, params)}, digest, nil, nil
		}
		prefix, ok := digestInfoPrefix[hash]
		if !ok {
			return nil, nil, nil, fmt.Errorf("RSA PKCS#1 v1.5 with %v: Chronolog signs SHA-256, SHA-384 or SHA-512", hash)
		}
		return []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS, nil)}, append(append([]byte(nil), prefix...), digest...), nil, nil
	case ed25519.PublicKey:
		if hash != 0 {
			return nil, nil, nil, fmt.Errorf("Ed25519 signs the message itself, not a %v digest (Ed25519ph is not supported)", hash)
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return nil, nil, nil, errors.New("Ed25519ctx (a context string) is not supported")
		}
		return []*p11.Mechanism{p11.NewMechanism(ckmEdDSA, nil)}, digest, nil, nil
	}
	return nil, nil, nil, fmt.Errorf("a %T key cannot sign", k.pub)
}

// ecdsaDER turns the token's r||s into the ASN.1 SEQUENCE of two
// INTEGERs that X.509, CMS and ecdsa.VerifyASN1 expect.
func ecdsaDER(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size {
		return nil, fmt.Errorf("the token answered an ECDSA signature of %d bytes, not %d", len(raw), 2*size)
	}
	r := new(big.Int).SetBytes(raw[:size])
	s := new(big.Int).SetBytes(raw[size:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("the token answered an ECDSA signature with a zero r or s")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
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
