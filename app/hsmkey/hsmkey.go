// Package hsmkey opens the HSM keys a configuration names, for tsad and
// tsactl alike: it reads the PIN from where the configuration says (never
// from the configuration itself) and hands it to the PKCS#11 adapter.
package hsmkey

import (
	"bufio"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/signer/pkcs11"
)

// ReadPIN reads a token's user PIN from src. A PIN file must not be
// readable by others, as ssh treats private keys: a PIN anyone on the host
// can read activates the key for anyone. A prompt reads from the terminal
// without echo and fails where there is none, rather than wait forever.
func ReadPIN(src config.PINSource, token string) (string, error) {
	switch {
	case src.Env != "":
		pin, ok := os.LookupEnv(src.Env)
		if !ok || pin == "" {
			return "", fmt.Errorf("the PIN of token %q: environment variable %s is not set", token, src.Env)
		}
		return pin, nil
	case src.File != "":
		return readPINFile(src.File, token)
	case src.Prompt:
		return promptPIN(token)
	}
	return "", fmt.Errorf("the PIN of token %q: no source (env, file or prompt)", token)
}

func readPINFile(path, token string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("the PIN of token %q: %w", token, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("the PIN of token %q: %w", token, err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("the PIN of token %q: %s is accessible to every user (mode %04o); make it 0600 or 0400", token, path, st.Mode().Perm())
	}
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("the PIN of token %q: read %s: %w", token, path, err)
	}
	pin := strings.TrimRight(line, "\r\n")
	if pin == "" {
		return "", fmt.Errorf("the PIN of token %q: %s is empty", token, path)
	}
	return pin, nil
}

func promptPIN(token string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("the PIN of token %q: prompt needs a terminal: %w", token, err)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "PIN of token %q: ", token)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("the PIN of token %q: %w", token, err)
	}
	if len(b) == 0 {
		return "", fmt.Errorf("the PIN of token %q: none was typed", token)
	}
	return string(b), nil
}

// Open reads the PIN and opens the key k names; observe hears of outages.
func Open(k *config.PKCS11, observe func(pkcs11.Change)) (*pkcs11.Key, error) {
	pin, err := ReadPIN(k.PIN, k.Token)
	if err != nil {
		return nil, err
	}
	key, err := pkcs11.Open(pkcs11.Config{
		Module: k.Module, Token: k.Token, KeyLabel: k.Key, KeyID: k.KeyIDBytes(),
		PIN: pin, Sessions: k.Sessions, Wait: k.Wait.D(), Observe: observe,
	})
	if err != nil {
		return nil, fmt.Errorf("token %q key %s: %w", k.Token, Describe(k), err)
	}
	return key, nil
}

// Describe names the key of k for messages: its label, or its id.
func Describe(k *config.PKCS11) string {
	if k.Key != "" {
		return fmt.Sprintf("%q", k.Key)
	}
	return "id " + k.KeyID
}

// PublicKeySHA256 is the hex SHA-256 of pub's SubjectPublicKeyInfo: the
// fingerprint the key lifecycle events name a key by.
func PublicKeySHA256(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
