package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// PKCS11 selects a key in a hardware security module. The PIN that
// activates it is never part of the configuration: PIN names where it comes
// from at start.
type PKCS11 struct {
	// Module is the path of the PKCS#11 library.
	Module string `yaml:"module" json:"module"`
	// Token is the token's label: slot ids change between boots.
	Token string `yaml:"token" json:"token"`
	// Key is the private key's label (CKA_LABEL); KeyID its CKA_ID in hex.
	// One of the two.
	Key   string    `yaml:"key,omitempty" json:"key,omitempty"`
	KeyID string    `yaml:"keyId,omitempty" json:"keyId,omitempty"`
	PIN   PINSource `yaml:"pin" json:"pin"`
	// Sessions is the size of the session pool (0: twice the CPUs).
	Sessions int `yaml:"sessions,omitempty" json:"sessions,omitempty"`
	// Wait bounds the wait for a free session (0: 2s).
	Wait Duration `yaml:"wait,omitempty" json:"wait,omitempty"`
}

// PINSource says where a token's user PIN is read at start: an
// environment variable, a file (its first line), or a prompt on the
// terminal. Exactly one.
type PINSource struct {
	Env    string `yaml:"env,omitempty" json:"env,omitempty"`
	File   string `yaml:"file,omitempty" json:"file,omitempty"`
	Prompt bool   `yaml:"prompt,omitempty" json:"prompt,omitempty"`
}

// UnmarshalYAML refuses a PIN written into the file itself with a message
// that says why, instead of yaml's type error.
func (p *PINSource) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return fmt.Errorf("line %d: pin: the PIN is never written in the configuration; say where it is read: {env: VAR}, {file: PATH} or {prompt: true}", n.Line)
	}
	type plain PINSource
	var v plain
	if err := n.Decode(&v); err != nil {
		return err
	}
	*p = PINSource(v)
	return nil
}

// String describes the source without the PIN, for reports and records.
func (p PINSource) String() string {
	switch {
	case p.Env != "":
		return "env:" + p.Env
	case p.File != "":
		return "file:" + p.File
	case p.Prompt:
		return "prompt"
	}
	return "none"
}

// KeyIDBytes is KeyID decoded; validation has made sure it decodes.
func (k *PKCS11) KeyIDBytes() []byte {
	b, _ := hex.DecodeString(k.KeyID)
	return b
}

func (k *PKCS11) validate(p *problems, at string) {
	if k.Module == "" {
		p.add("%s: module (the PKCS#11 library's path) is needed", at)
	}
	if k.Token == "" {
		p.add("%s: token (the token's label) is needed", at)
	}
	switch {
	case k.Key == "" && k.KeyID == "":
		p.add("%s: key (a label) or keyId (hex) is needed", at)
	case k.Key != "" && k.KeyID != "":
		p.add("%s: key and keyId are alternatives: give one", at)
	case k.KeyID != "":
		if b, err := hex.DecodeString(k.KeyID); err != nil || len(b) == 0 {
			p.add("%s: keyId %q is not hex", at, k.KeyID)
		}
	}
	n := 0
	for _, set := range []bool{k.PIN.Env != "", k.PIN.File != "", k.PIN.Prompt} {
		if set {
			n++
		}
	}
	if n != 1 {
		p.add("%s: pin needs exactly one source: env, file or prompt", at)
	}
	if k.Sessions < 0 {
		p.add("%s: sessions must not be negative", at)
	}
	if k.Wait < 0 {
		p.add("%s: wait must not be negative", at)
	}
}

// ParsePKCS11URI reads an RFC 7512 PKCS#11 URI naming a key, as the
// command-line flags take one:
//
//	pkcs11:token=chronolog;object=log-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:CHRONOLOG_HSM_PIN
//
// Path attributes: token, object (the key's label) or id (percent-encoded
// CKA_ID). Query attributes: module-path, and pin-source, which RFC 7512
// defines as a URI (file:PATH); env:VAR and prompt are Chronolog's. A
// pin-value is refused: a PIN is never written where others can read it.
func ParsePKCS11URI(s string) (*PKCS11, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, errors.New(`a PKCS#11 URI starts with "pkcs11:"`)
	}
	path, query, _ := strings.Cut(rest, "?")
	k := &PKCS11{}
	for _, attr := range strings.Split(path, ";") {
		if attr == "" {
			continue
		}
		name, raw, ok := strings.Cut(attr, "=")
		if !ok {
			return nil, fmt.Errorf("PKCS#11 URI attribute %q has no value", attr)
		}
		v, err := url.PathUnescape(raw)
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 URI attribute %s: %w", name, err)
		}
		switch name {
		case "token":
			k.Token = v
		case "object":
			k.Key = v
		case "id":
			k.KeyID = hex.EncodeToString([]byte(v))
		case "type":
			if v != "private" {
				return nil, fmt.Errorf("PKCS#11 URI type=%s: the signer needs the private key", v)
			}
		default:
			// RFC 7512 lets a consumer ignore what it does not use, but a
			// misspelt token or object would select the wrong key silently.
			return nil, fmt.Errorf("PKCS#11 URI attribute %q is not one Chronolog uses (token, object, id, type)", name)
		}
	}
	for _, attr := range strings.Split(query, "&") {
		if attr == "" {
			continue
		}
		name, raw, _ := strings.Cut(attr, "=")
		v, err := url.QueryUnescape(raw)
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 URI attribute %s: %w", name, err)
		}
		switch name {
		case "module-path":
			k.Module = v
		case "pin-source":
			switch {
			case strings.HasPrefix(v, "file:"):
				k.PIN.File = strings.TrimPrefix(strings.TrimPrefix(v, "file:"), "//")
			case strings.HasPrefix(v, "env:"):
				k.PIN.Env = strings.TrimPrefix(v, "env:")
			case v == "prompt":
				k.PIN.Prompt = true
			default:
				return nil, fmt.Errorf("PKCS#11 URI pin-source %q is none of file:PATH, env:VAR, prompt", v)
			}
		case "pin-value":
			return nil, errors.New("PKCS#11 URI pin-value: the PIN is never written in a URI; use pin-source")
		case "sessions":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("PKCS#11 URI sessions=%q: %w", v, err)
			}
			k.Sessions = n
		case "wait":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("PKCS#11 URI wait=%q: %w", v, err)
			}
			k.Wait = Duration(d)
		default:
			return nil, fmt.Errorf("PKCS#11 URI query attribute %q is not one Chronolog uses (module-path, pin-source, sessions, wait)", name)
		}
	}
	var p problems
	k.validate(&p, "PKCS#11 URI")
	if len(p.list) > 0 {
		return nil, &ValidationError{Problems: p.list}
	}
	return k, nil
}
