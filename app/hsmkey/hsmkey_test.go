package hsmkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronolog/chronolog/adapters/config"
)

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("HSMKEY_TEST_PIN", "4711")
	t.Setenv("HSMKEY_TEST_EMPTY", "")
	for name, tc := range map[string]struct {
		src     config.PINSource
		want    string
		wantErr string
	}{
		"env":              {src: config.PINSource{Env: "HSMKEY_TEST_PIN"}, want: "4711"},
		"env unset":        {src: config.PINSource{Env: "HSMKEY_TEST_UNSET"}, wantErr: "is not set"},
		"env empty":        {src: config.PINSource{Env: "HSMKEY_TEST_EMPTY"}, wantErr: "is not set"},
		"file, first line": {src: config.PINSource{File: write("pin", "0815\r\nsecond line\n", 0o600)}, want: "0815"},
		"file without EOL": {src: config.PINSource{File: write("pin2", "0815", 0o400)}, want: "0815"},
		"file others read": {src: config.PINSource{File: write("pin3", "0815\n", 0o644)}, wantErr: "accessible to every user"},
		"file empty":       {src: config.PINSource{File: write("pin4", "\n", 0o600)}, wantErr: "is empty"},
		"file missing":     {src: config.PINSource{File: filepath.Join(dir, "none")}, wantErr: "no such file"},
		"no source":        {src: config.PINSource{}, wantErr: "no source"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadPIN(tc.src, "tok")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want an error saying %q", got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "0815") {
					t.Fatalf("the error repeats the PIN: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestPublicKeySHA256(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if fp := PublicKeySHA256(&k.PublicKey); len(fp) != 64 || fp != PublicKeySHA256(&k.PublicKey) {
		t.Errorf("fingerprint %q", fp)
	}
	if PublicKeySHA256(struct{}{}) != "" {
		t.Error("a value that is no key has a fingerprint")
	}
}
