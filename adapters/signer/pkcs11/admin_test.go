package pkcs11

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/chronolog/chronolog/internal/testpki"
)

var allTypes = []struct {
	typ  KeyType
	want func(any) bool
}{
	{ECDSAP256, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P256() }},
	{ECDSAP384, func(p any) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() }},
	{RSA2048, func(p any) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 2048 && k.E == 65537 }},
	{RSA3072, func(p any) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 3072 }},
	{RSA4096, func(p any) bool { k, ok := p.(*rsa.PublicKey); return ok && k.N.BitLen() == 4096 }},
	{Ed25519, func(p any) bool { k, ok := p.(ed25519.PublicKey); return ok && len(k) == ed25519.PublicKeySize }},
}

func TestGenerateKeyReadsBackASignOnlyKeyThatNeverLeaves(t *testing.T) {
	module, _ := newToken(t)
	made := map[string]KeyInfo{}
	for _, tc := range allTypes {
		info := generate(t, module, testToken, tc.typ, "key-"+string(tc.typ))
		made[info.Label] = info
		if info.Type != tc.typ || !tc.want(info.Public) || len(info.ID) != 16 {
			t.Errorf("%s: generated %s %T with id %x", tc.typ, info.Type, info.Public, info.ID)
		}
	}
	listed, err := ListKeys(module, testToken, userPIN)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(allTypes) {
		t.Fatalf("ListKeys: %d keys, want %d", len(listed), len(allTypes))
	}
	for _, info := range listed {
		gen := made[info.Label]
		if !bytes.Equal(info.ID, gen.ID) || !samePublic(info.Public, gen.Public) || info.Type != gen.Type {
			t.Errorf("%s: listed %x %s, generated %x %s", info.Label, info.ID, info.Type, gen.ID, gen.Type)
		}
		want := KeyInfo{Label: info.Label, ID: info.ID, Type: info.Type, Public: info.Public,
			Sensitive: true, AlwaysSensitive: true, NeverExtractable: true, Sign: true}
		if !sameAttributes(info, want) {
			t.Errorf("%s: attributes %+v, want sensitive, never extractable, sign only", info.Label, info)
		}
		if info.HasCertificate {
			t.Errorf("%s: a certificate before any was imported", info.Label)
		}
		k := open(t, Config{Module: module, KeyID: info.ID})
		if !samePublic(k.Public(), info.Public) || k.Label() != info.Label || !bytes.Equal(k.ID(), info.ID) {
			t.Errorf("%s: Open found %q %x with another public key", info.Label, k.Label(), k.ID())
		}
	}
}

func sameAttributes(a, b KeyInfo) bool {
	return a.Extractable == b.Extractable && a.Sensitive == b.Sensitive && a.AlwaysSensitive == b.AlwaysSensitive &&
		a.NeverExtractable == b.NeverExtractable && a.Sign == b.Sign && a.Decrypt == b.Decrypt &&
		a.Unwrap == b.Unwrap && a.Derive == b.Derive
}

func TestPrivateKeyValueCannotBeRead(t *testing.T) {
	module, _ := newToken(t)
	for _, typ := range []KeyType{ECDSAP256, RSA2048, Ed25519} {
		generate(t, module, testToken, typ, string(typ))
		k := open(t, Config{Module: module, KeyLabel: string(typ)})
		secret := map[KeyType]uint{ECDSAP256: p11.CKA_VALUE, RSA2048: p11.CKA_PRIVATE_EXPONENT, Ed25519: p11.CKA_VALUE}[typ]
		err := k.withSession(func(ctx *p11.Ctx, s *session) error {
			_, err := attributes(ctx, s.h, s.obj, secret)
			return err
		})
		if !errors.Is(err, p11.Error(p11.CKR_ATTRIBUTE_SENSITIVE)) {
			t.Errorf("%s: reading the private value: %v, want CKR_ATTRIBUTE_SENSITIVE", typ, err)
		}
	}
}

func TestGenerateKeyRefusesALabelOrIDInUse(t *testing.T) {
	module, _ := newToken(t)
	first, err := GenerateKey(module, testToken, userPIN, KeySpec{Type: ECDSAP256, Label: "tsa", ID: []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.ID, []byte{1, 2}) {
		t.Errorf("id %x, want the one asked for", first.ID)
	}
	for name, spec := range map[string]KeySpec{
		"label":        {Type: ECDSAP256, Label: "tsa"},
		"id":           {Type: Ed25519, Label: "other", ID: []byte{1, 2}},
		"unknown type": {Type: "dsa-1024", Label: "x"},
		"no label":     {Type: ECDSAP256},
	} {
		if _, err := GenerateKey(module, testToken, userPIN, spec); err == nil {
			t.Errorf("%s: GenerateKey(%+v) succeeded", name, spec)
		}
	}
	if keys, _ := ListKeys(module, testToken, userPIN); len(keys) != 1 {
		t.Errorf("%d keys after the refusals, want 1", len(keys))
	}
}

func TestInitTokenRefusesALabelInUse(t *testing.T) {
	module, _ := newToken(t)
	err := InitToken(module, testToken, soPIN, userPIN)
	if err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("second InitToken %q: %v", testToken, err)
	}
	if err := InitToken(module, "second", soPIN, userPIN); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsNameWhatIsWrongButNeverThePIN(t *testing.T) {
	module, _ := newToken(t)
	info := generate(t, module, testToken, ECDSAP256, "tsa")
	const wrongPIN = "wrong-pin-4711"
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"wrong PIN":     {Config{Token: testToken, KeyLabel: "tsa", PIN: wrongPIN}, "refused the user PIN"},
		"unknown token": {Config{Token: "nope", KeyLabel: "tsa", PIN: userPIN}, `no token labelled "nope"`},
		"unknown label": {Config{Token: testToken, KeyLabel: "nope", PIN: userPIN}, `holds no private key labelled "nope"`},
		"unknown id":    {Config{Token: testToken, KeyID: []byte{0xde, 0xad}, PIN: userPIN}, "holds no private key with id dead"},
		"no key":        {Config{Token: testToken, PIN: userPIN}, "neither a key label nor a key id"},
		"label and id":  {Config{Token: testToken, KeyLabel: "tsa", KeyID: info.ID, PIN: userPIN}, "give one"},
		"no PIN":        {Config{Token: testToken, KeyLabel: "tsa"}, "no PIN"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.cfg.Module = module
			k, err := Open(tc.cfg)
			if err == nil {
				k.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			for _, pin := range []string{wrongPIN, userPIN, soPIN} {
				if strings.Contains(err.Error(), pin) {
					t.Errorf("error %q shows a PIN", err)
				}
			}
		})
	}
	if _, err := ListKeys(module, testToken, wrongPIN); err == nil || !strings.Contains(err.Error(), "refused the user PIN") || strings.Contains(err.Error(), wrongPIN) {
		t.Errorf("ListKeys with a wrong PIN: %v", err)
	}
	if _, err := Open(Config{Module: "/nonexistent/libpkcs11.so", Token: testToken, KeyLabel: "tsa", PIN: userPIN}); err == nil || !strings.Contains(err.Error(), "/nonexistent/libpkcs11.so") {
		t.Errorf("Open of a missing module: %v", err)
	}
}

func TestImportCertificate(t *testing.T) {
	module, _ := newToken(t)
	info := generate(t, module, testToken, ECDSAP256, "tsa")
	other := generate(t, module, testToken, ECDSAP256, "other")
	k := open(t, Config{Module: module, KeyLabel: "tsa"})
	if _, err := k.Certificate(); err == nil || !strings.Contains(err.Error(), "stores no certificate") {
		t.Fatalf("Certificate before an import: %v", err)
	}

	// The HSM key signs its own certificate: x509 checks the signature.
	first := selfSigned(t, k, "first", time.Now().Add(-time.Hour))
	if err := ImportCertificate(module, testToken, userPIN, "tsa", nil, first); err != nil {
		t.Fatal(err)
	}
	got, err := k.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(first) {
		t.Errorf("Certificate is %q, want the imported %q", got.Subject, first.Subject)
	}

	soft, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	foreign := selfSigned(t, soft, "foreign", time.Now())
	for name, keyLabel := range map[string]string{"another key's certificate": "tsa", "a key's certificate on another key": "other"} {
		cert := foreign
		if keyLabel == "other" {
			cert = first
		}
		if err := ImportCertificate(module, testToken, userPIN, keyLabel, nil, cert); err == nil || !strings.Contains(err.Error(), "for another key") {
			t.Errorf("%s: %v", name, err)
		}
	}

	second := selfSigned(t, k, "second", time.Now())
	if err := ImportCertificate(module, testToken, userPIN, "tsa", other.ID, second); err == nil || !strings.Contains(err.Error(), "holds no private key labelled \"tsa\" with id") {
		t.Errorf("a label and an id of two keys: %v", err)
	}
	if err := ImportCertificate(module, testToken, userPIN, "tsa", info.ID, second); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Certificate(); err != nil || !got.Equal(second) {
		t.Errorf("Certificate after a renewal: %v, %v; want the second", got.Subject, err)
	}
	err = k.withSession(func(ctx *p11.Ctx, s *session) error {
		certs, err := findObjects(ctx, s.h, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE)})
		if len(certs) != 1 {
			t.Errorf("%d certificates on the token, want the second only", len(certs))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ListKeys(module, testToken, userPIN)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		if has := key.Label == "tsa"; key.HasCertificate != has || (has && !key.Certificate.Equal(second)) {
			t.Errorf("ListKeys: %q has certificate %v", key.Label, key.HasCertificate)
		}
	}
}

// selfSigned is a certificate key signs itself (a root's), valid from
// notBefore for a year.
func selfSigned(t *testing.T, key crypto.Signer, cn string, notBefore time.Time) *x509.Certificate {
	t.Helper()
	return testpki.New(t, testpki.Key(key), testpki.Subject(cn), testpki.Valid(notBefore, notBefore.AddDate(1, 0, 0))).Cert
}
