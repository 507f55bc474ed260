package pkcs11

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"

	p11 "github.com/miekg/pkcs11"
)

// KeyType names an algorithm and a size.
type KeyType string

// The key types GenerateKey makes.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	RSA4096   KeyType = "rsa-4096"
	Ed25519   KeyType = "ed25519"
)

// KeySpec says what key GenerateKey makes.
type KeySpec struct {
	Type  KeyType
	Label string
	// ID is the CKA_ID; nil draws 16 random bytes.
	ID []byte
}

// KeyInfo describes a private key as the token reports it.
type KeyInfo struct {
	Label  string
	ID     []byte
	Type   KeyType
	Public crypto.PublicKey

	Extractable, Sensitive, AlwaysSensitive, NeverExtractable bool
	Sign, Decrypt, Unwrap, Derive                             bool

	HasCertificate bool
	Certificate    *x509.Certificate
}

// withToken runs f in a session on the token labelled token, logged in
// with pin, read-write if rw: an administrative task's session.
func withToken(module, token, pin string, rw bool, f func(*p11.Ctx, p11.SessionHandle) error) error {
	m, fresh, err := acquire(module)
	if err != nil {
		return err
	}
	defer release(m)
	return m.onToken(fresh, func() error {
		slot, err := findToken(m.ctx, token)
		if err != nil {
			return err
		}
		flags := uint(p11.CKF_SERIAL_SESSION)
		if rw {
			flags |= p11.CKF_RW_SESSION
		}
		sh, err := m.ctx.OpenSession(slot, flags)
		if err != nil {
			return fmt.Errorf("C_OpenSession: %w", err)
		}
		// No C_Logout: login state is the token's, shared with every key
		// of the process on it, which a logout would leave unusable.
		defer m.ctx.CloseSession(sh)
		if err := login(m.ctx, sh, token, pin); err != nil {
			return err
		}
		return f(m.ctx, sh)
	})
}

// InitToken initialises the first slot with an uninitialised token (SoftHSM
// always offers one) with label and the security officer's PIN, then sets
// the user PIN. It refuses a label already in use.
func InitToken(module, label, soPIN, userPIN string) error {
	switch {
	case label == "" || len(label) > 32:
		return fmt.Errorf("pkcs11: init token: a token label has 1 to 32 bytes, not %d", len(label))
	case soPIN == "" || userPIN == "":
		return errors.New("pkcs11: init token: the security officer's and the user's PIN are both needed")
	}
	m, _, err := acquire(module)
	if err != nil {
		return err
	}
	defer release(m)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := initToken(m.ctx, label, soPIN, userPIN); err != nil {
		return fmt.Errorf("pkcs11: init token %q: %w", label, err)
	}
	return nil
}

func initToken(ctx *p11.Ctx, label, soPIN, userPIN string) error {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("C_GetSlotList: %w", err)
	}
	free, found := uint(0), false
	for _, slot := range slots {
		ti, err := ctx.GetTokenInfo(slot)
		if err != nil {
			return fmt.Errorf("C_GetTokenInfo of slot %d: %w", slot, err)
		}
		if ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			if !found {
				free, found = slot, true
			}
			continue
		}
		if strings.TrimRight(ti.Label, " \x00") == label {
			return fmt.Errorf("a token with that label exists already (slot %d)", slot)
		}
	}
	if !found {
		return errors.New("no slot offers an uninitialised token")
	}
	if err := ctx.InitToken(free, soPIN, label); err != nil {
		return fmt.Errorf("C_InitToken on slot %d: %w", free, err)
	}
	// Some modules move a token they initialise to another slot.
	slot, err := findToken(ctx, label)
	if err != nil {
		slot = free
	}
	sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %w", err)
	}
	defer ctx.CloseSession(sh)
	if err := ctx.Login(sh, p11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("log in as security officer: %w", err)
	}
	defer ctx.Logout(sh)
	if err := ctx.InitPIN(sh, userPIN); err != nil {
		return fmt.Errorf("C_InitPIN: %w", err)
	}
	return nil
}

// GenerateKey makes a key pair on the token: the private key stays on it
// (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE) and can
// only sign; the public key can only verify. It refuses a label or an id
// already in use on the token, and answers the key as the token reports
// it.
func GenerateKey(module, token, pin string, spec KeySpec) (KeyInfo, error) {
	var info KeyInfo
	mech, pubAttrs, err := generation(spec.Type)
	if err != nil {
		return info, fmt.Errorf("pkcs11: generate key %q: %w", spec.Label, err)
	}
	if spec.Label == "" {
		return info, errors.New("pkcs11: generate key: a key needs a label")
	}
	id := spec.ID
	if len(id) == 0 {
		id = make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return info, fmt.Errorf("pkcs11: generate key %q: draw an id: %w", spec.Label, err)
		}
	}
	err = withToken(module, token, pin, true, func(ctx *p11.Ctx, sh p11.SessionHandle) error {
		for _, a := range []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, spec.Label), p11.NewAttribute(p11.CKA_ID, id)} {
			used, err := findObjects(ctx, sh, []*p11.Attribute{a})
			if err != nil {
				return err
			}
			if len(used) > 0 {
				what := fmt.Sprintf("label %q", spec.Label)
				if a.Type == p11.CKA_ID {
					what = fmt.Sprintf("id %x", id)
				}
				return fmt.Errorf("the %s is used by %d object(s) on the token already", what, len(used))
			}
		}
		pub := append(pubAttrs,
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_PRIVATE, false),
			p11.NewAttribute(p11.CKA_VERIFY, true),
			p11.NewAttribute(p11.CKA_ENCRYPT, false),
			p11.NewAttribute(p11.CKA_WRAP, false),
			p11.NewAttribute(p11.CKA_LABEL, spec.Label),
			p11.NewAttribute(p11.CKA_ID, id),
		)
		priv := []*p11.Attribute{
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(p11.CKA_SIGN, true),
			p11.NewAttribute(p11.CKA_DECRYPT, false),
			p11.NewAttribute(p11.CKA_UNWRAP, false),
			p11.NewAttribute(p11.CKA_DERIVE, false),
			p11.NewAttribute(p11.CKA_LABEL, spec.Label),
			p11.NewAttribute(p11.CKA_ID, id),
		}
		_, obj, err := ctx.GenerateKeyPair(sh, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, pub, priv)
		if err != nil {
			return fmt.Errorf("C_GenerateKeyPair: %w", err)
		}
		info, err = keyInfo(ctx, sh, obj)
		return err
	})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("pkcs11: generate key %q on token %q: %w", spec.Label, token, err)
	}
	return info, nil
}

// generation is the mechanism and the public key's domain attributes of
// a key type.
func generation(t KeyType) (uint, []*p11.Attribute, error) {
	curve := func(oid asn1.ObjectIdentifier) []*p11.Attribute {
		der, _ := asn1.Marshal(oid) // a constant OID always marshals
		return []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_PARAMS, der)}
	}
	rsaBits := func(bits int) []*p11.Attribute {
		return []*p11.Attribute{
			p11.NewAttribute(p11.CKA_MODULUS_BITS, bits),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		}
	}
	switch t {
	case ECDSAP256:
		return p11.CKM_EC_KEY_PAIR_GEN, curve(oidP256), nil
	case ECDSAP384:
		return p11.CKM_EC_KEY_PAIR_GEN, curve(oidP384), nil
	case RSA2048:
		return p11.CKM_RSA_PKCS_KEY_PAIR_GEN, rsaBits(2048), nil
	case RSA3072:
		return p11.CKM_RSA_PKCS_KEY_PAIR_GEN, rsaBits(3072), nil
	case RSA4096:
		return p11.CKM_RSA_PKCS_KEY_PAIR_GEN, rsaBits(4096), nil
	case Ed25519:
		// The OID (RFC 8410) rather than the printable string
		// "edwards25519": PKCS#11 v3.0 allows both, SoftHSM 2.6 takes
		// both, and the OID is what other modules take too.
		return ckmECEdwardsKeyPairGen, curve(oidEd25519), nil
	}
	return 0, nil, fmt.Errorf("key type %q is none of %s, %s, %s, %s, %s, %s", t, ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096, Ed25519)
}

// ListKeys lists every private key on the token, with its attributes as
// the token reports them and its certificate if one is stored.
func ListKeys(module, token, pin string) ([]KeyInfo, error) {
	var keys []KeyInfo
	err := withToken(module, token, pin, false, func(ctx *p11.Ctx, sh p11.SessionHandle) error {
		objs, err := findObjects(ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)})
		if err != nil {
			return err
		}
		for _, o := range objs {
			info, err := keyInfo(ctx, sh, o)
			if err != nil {
				return err
			}
			keys = append(keys, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: list the keys of token %q: %w", token, err)
	}
	slices.SortFunc(keys, func(a, b KeyInfo) int {
		if c := strings.Compare(a.Label, b.Label); c != 0 {
			return c
		}
		return bytes.Compare(a.ID, b.ID)
	})
	return keys, nil
}

// keyInfo reads a private key's description back from the token.
func keyInfo(ctx *p11.Ctx, sh p11.SessionHandle, obj p11.ObjectHandle) (KeyInfo, error) {
	id, err := readIdentity(ctx, sh, obj)
	if err != nil {
		return KeyInfo{}, err
	}
	a, err := attributes(ctx, sh, obj,
		p11.CKA_EXTRACTABLE, p11.CKA_SENSITIVE, p11.CKA_ALWAYS_SENSITIVE, p11.CKA_NEVER_EXTRACTABLE,
		p11.CKA_SIGN, p11.CKA_DECRYPT, p11.CKA_UNWRAP, p11.CKA_DERIVE)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("read the attributes of key %q: %w", id.label, err)
	}
	info := KeyInfo{
		Label: id.label, ID: id.id, Type: KeyTypeOf(id.pub), Public: id.pub,
		Extractable: boolean(a[p11.CKA_EXTRACTABLE]), Sensitive: boolean(a[p11.CKA_SENSITIVE]),
		AlwaysSensitive: boolean(a[p11.CKA_ALWAYS_SENSITIVE]), NeverExtractable: boolean(a[p11.CKA_NEVER_EXTRACTABLE]),
		Sign: boolean(a[p11.CKA_SIGN]), Decrypt: boolean(a[p11.CKA_DECRYPT]),
		Unwrap: boolean(a[p11.CKA_UNWRAP]), Derive: boolean(a[p11.CKA_DERIVE]),
	}
	if len(id.id) > 0 {
		cert, err := certificateOf(ctx, sh, id.id, id.pub)
		switch {
		case err == nil:
			info.HasCertificate, info.Certificate = true, cert
		case !errors.Is(err, errNoCertificate):
			return KeyInfo{}, fmt.Errorf("the certificate of key %q: %w", id.label, err)
		}
	}
	return info, nil
}
