package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `
services:
  - name: a
    paths: [/tsa]
    policy: 1.2.3.4
    signer: {key: k.pem, cert: c.pem}
`

func TestExampleFileIsValid(t *testing.T) {
	f, err := Read(filepath.Join("..", "..", "examples", "tsad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	if len(f.Services) != 3 || f.Services[1].PolicyMap[0].Chain != "by-certificate" {
		t.Fatalf("unexpected decoding: %+v", f.Services)
	}
	if !filepath.IsAbs(f.Services[0].Signer.Key) || !filepath.IsAbs(f.Services[1].Chains["by-certificate"][0].CAFile) {
		t.Fatal("relative file names must be resolved against the file's directory")
	}
}

// TestExampleFilesAreValid: every example in the repository validates.
func TestExampleFilesAreValid(t *testing.T) {
	for _, name := range []string{"dev.yaml", "bench-five-filters.yaml"} {
		f, err := Read(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Services {
			// tsad dev fills in the development key.
			if f.Services[i].Signer.Key == "" && f.Services[i].Signer.PKCS11 == nil {
				f.Services[i].Signer = Signer{Key: "dev.key", Cert: "dev.pem"}
			}
		}
		if err := f.Check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	f, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Services[0]
	if f.Server.Listen != "127.0.0.1:3180" || !*s.IncludeChain || s.Accuracy.D().String() != "1s" || len(s.Hashes) != 6 {
		t.Fatalf("defaults not applied: %+v %+v", f.Server, s)
	}
	if len(f.SHA256) != 64 {
		t.Fatal("the file's digest is kept for the record")
	}
}

// TestEveryProblemAtOnce: a file with many mistakes reports each of them,
// with its place, in one error.
func TestEveryProblemAtOnce(t *testing.T) {
	bad := `
server:
  listen: nowhere
  tls: {cert: c.pem, key: k.pem, clientAuth: require}
services:
  - name: Bad Name
    paths: [tsa, /log/v1/x]
    policy: 1.x
    acceptedPolicies: [1.2, 1.2]
    signer: {key: k.pem}
    hashes: [md5]
    precision: 2s
    chains:
      default:
        - type: authorize-by-name
          names: [{subject: '('}]
        - type: client-ip
          allow: [10.0.0.1/8, nonsense]
        - type: api-key
          keys: [{name: x, sha256: abc}, {name: x, sha256: abc}]
        - type: rate-limit
          rate: 0
        - type: forward
          url: ftp://x
        - type: nonce-required
          max: 3
        - type: teleport
    policyMap:
      - chain: missing
        path: '[z-a]'
  - name: b
    paths: [/tsa]
    tcp: 127.0.0.1:318
    policy: 1.2.3
    signer: {key: k, cert: c}
  - name: b
    paths: [/tsa]
    tcp: 127.0.0.1:318
    policy: 1.2.3
    signer: {key: k, cert: c}
`
	_, err := Parse([]byte(bad))
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	want := []string{
		`server: listen "nowhere" is not host:port`,
		"server: tls clientAuth require needs clientCAs",
		`services[0] Bad Name: name "Bad Name" must be`,
		`path "tsa" must start with /`,
		`path "/log/v1/x" is reserved`,
		`policy: "1.x" is not a dotted OID`,
		"acceptedPolicies: 1.2 is listed twice",
		"signer needs key and cert",
		`hashes: unknown hash "md5"`,
		"precision must be between",
		"chains.default[0] authorize-by-name: needs an authentication filter",
		"chains.default[0] authorize-by-name: names[0]: subject: pattern",
		`"10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)`,
		`"nonsense" is neither a CIDR prefix nor an address`,
		`keys[1]: name "x" is listed twice`,
		"keys[0] x: sha256:",
		"rate (requests per second) must be positive",
		"burst must be at least 1",
		`url "ftp://x" is not an http(s) URL`,
		"forward answers the request, so it must be the last filter",
		`nonce-required takes no option "max"`,
		"chains.default[6] teleport: unknown filter type",
		`policyMap[0]: chain "missing" is not defined`,
		"policyMap[0]: path: pattern",
		`services[2] b: name "b" is also the name of services[1]`,
		`path "/tsa" is already served by b`,
		"tcp 127.0.0.1:318 is already the socket of b",
	}
	all := strings.Join(ve.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("missing problem %q in:\n%s", w, all)
		}
	}
}

func TestDecodeRefusals(t *testing.T) {
	for name, in := range map[string]string{
		"empty":           "",
		"unknown key":     good + "    colour: blue\n",
		"two documents":   good + "---\n" + good,
		"bad duration":    good + "    accuracy: soon\n",
		"not a mapping":   "- 1\n- 2\n",
		"filter a scalar": good + "    chains: {default: [nonce-required]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestNoPolicyMapNeedsDefaultChain(t *testing.T) {
	_, err := Parse([]byte(good + "    chains: {other: []}\n"))
	if err == nil || !strings.Contains(err.Error(), `chain "default", which is not defined`) {
		t.Fatalf("got %v", err)
	}
}

func TestPatternsAreAnchored(t *testing.T) {
	re, err := CompilePattern("partner")
	if err != nil {
		t.Fatal(err)
	}
	if re.MatchString("not-a-partner") || !re.MatchString("partner") {
		t.Fatal("patterns must match whole values")
	}
	if re, _ := CompilePattern(""); re != nil {
		t.Fatal("the empty pattern matches anything (nil)")
	}
}

func TestLoadReportsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte(good+"    hashes: [md4]\n"), 0o600)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "md4") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "tsad.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse(b)
		if err == nil && (cfg == nil || len(cfg.Services) == 0) {
			t.Fatal("a valid configuration has services")
		}
	})
}
