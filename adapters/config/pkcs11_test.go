package config

import (
	"strings"
	"testing"
)

const hsmService = `
services:
  - name: a
    paths: [/tsa]
    policy: 1.2.3.4
    signer:
      pkcs11:
        module: /usr/lib/softhsm/libsofthsm2.so
        token: chronolog
        key: tsa-2026
        pin: {env: CHRONOLOG_HSM_PIN}
        sessions: 8
        wait: 500ms
      chain: chain.pem
`

func TestPKCS11Signer(t *testing.T) {
	f, err := Parse([]byte(hsmService))
	if err != nil {
		t.Fatal(err)
	}
	k := f.Services[0].Signer.PKCS11
	if k == nil || k.Token != "chronolog" || k.Key != "tsa-2026" || k.PIN.Env != "CHRONOLOG_HSM_PIN" || k.Sessions != 8 || k.Wait.D().String() != "500ms" {
		t.Fatalf("decoded %+v", k)
	}
	if k.PIN.String() != "env:CHRONOLOG_HSM_PIN" {
		t.Fatalf("PIN source described as %q", k.PIN)
	}
}

func TestPKCS11SignerProblems(t *testing.T) {
	for name, tc := range map[string]struct {
		signer string
		want   []string
	}{
		"PIN in the file": {`{pkcs11: {module: m, token: t, key: k, pin: "1234"}}`, []string{"never written in the configuration"}},
		"no PIN source":   {`{pkcs11: {module: m, token: t, key: k, pin: {}}}`, []string{"pin needs exactly one source"}},
		"two PIN sources": {`{pkcs11: {module: m, token: t, key: k, pin: {env: A, prompt: true}}}`, []string{"pin needs exactly one source"}},
		"nothing named":   {`{pkcs11: {pin: {env: A}}}`, []string{"module", "token", "key (a label) or keyId"}},
		"label and id":    {`{pkcs11: {module: m, token: t, key: k, keyId: "01", pin: {env: A}}}`, []string{"alternatives: give one"}},
		"id not hex":      {`{pkcs11: {module: m, token: t, keyId: "zz", pin: {env: A}}}`, []string{"is not hex"}},
		"file and HSM":    {`{key: k.pem, cert: c.pem, pkcs11: {module: m, token: t, key: k, pin: {env: A}}}`, []string{"are alternatives"}},
		"negative pool":   {`{pkcs11: {module: m, token: t, key: k, pin: {env: A}, sessions: -1}}`, []string{"sessions must not be negative"}},
	} {
		t.Run(name, func(t *testing.T) {
			in := strings.Replace(good, "{key: k.pem, cert: c.pem}", tc.signer, 1)
			_, err := Parse([]byte(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "1234") {
				t.Fatalf("the error repeats the PIN: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParsePKCS11URI(t *testing.T) {
	k, err := ParsePKCS11URI("pkcs11:token=chronolog%20log;object=log-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin&sessions=2")
	if err != nil {
		t.Fatal(err)
	}
	if k.Token != "chronolog log" || k.Key != "log-key" || k.Module != "/usr/lib/softhsm/libsofthsm2.so" || k.PIN.File != "/run/pin" || k.Sessions != 2 {
		t.Fatalf("parsed %+v", k)
	}
	k, err = ParsePKCS11URI("pkcs11:token=t;id=%01%a2?module-path=m&pin-source=env:PIN")
	if err != nil {
		t.Fatal(err)
	}
	if k.KeyID != "01a2" || k.PIN.Env != "PIN" {
		t.Fatalf("parsed %+v", k)
	}
	for name, in := range map[string]string{
		"not a PKCS#11 URI": "file:/etc/key",
		"PIN in the URI":    "pkcs11:token=t;object=k?module-path=m&pin-value=1234",
		"unknown attribute": "pkcs11:token=t;objekt=k?module-path=m&pin-source=env:P",
		"public key":        "pkcs11:token=t;object=k;type=public?module-path=m&pin-source=env:P",
		"no module":         "pkcs11:token=t;object=k?pin-source=env:P",
		"no PIN source":     "pkcs11:token=t;object=k?module-path=m",
		"odd PIN source":    "pkcs11:token=t;object=k?module-path=m&pin-source=https://pin",
		"no key":            "pkcs11:token=t?module-path=m&pin-source=env:P",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePKCS11URI(in)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "1234") {
				t.Fatalf("the error repeats the PIN: %v", err)
			}
		})
	}
}

func FuzzParsePKCS11URI(f *testing.F) {
	f.Add("pkcs11:token=chronolog;object=log-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PIN")
	f.Add("pkcs11:token=t;id=%01%a2?module-path=m&pin-source=file:/run/pin&sessions=2&wait=1s")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePKCS11URI(s)
		if err != nil {
			return
		}
		if k.Module == "" || k.Token == "" || (k.Key == "") == (k.KeyID == "") || k.PIN.String() == "none" {
			t.Fatalf("accepted an incomplete key: %+v", k)
		}
	})
}
