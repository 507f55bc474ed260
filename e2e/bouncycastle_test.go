package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Bouncy Castle as Debian packages it (libbcpkix-java pulls the other two).
var bcJars = []string{"/usr/share/java/bcprov.jar", "/usr/share/java/bcpkix.jar", "/usr/share/java/bcutil.jar"}

const (
	bcDefaultPolicy  = "1.3.6.1.4.1.32473.3161.1"
	bcAcceptedPolicy = "1.3.6.1.4.1.32473.3161.2"
)

var bcClasses onceFile

// compileBCValidate compiles testdata/bc/BCValidate.java once per test binary.
func compileBCValidate(javac string) func() (string, error) {
	return func() (string, error) {
		dir, err := os.MkdirTemp(binDir, "bc-classes")
		if err != nil {
			return "", err
		}
		args := append(jFlags(), "-cp", strings.Join(bcJars, ":"), "-d", dir, filepath.Join("testdata", "bc", "BCValidate.java"))
		if out, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("javac BCValidate.java: %v\n%s", err, out)
		}
		return dir, nil
	}
}

// bcCase is one exchange handed to BCValidate.
type bcCase struct {
	name, ca, tsa, req, resp string
	// For granted exchanges: what BC must read back.
	policy string
	nonce  *big.Int
	serial string
	// For negative controls: what BC's refusal must say.
	wantErr string
}

func (c bcCase) line() string {
	return strings.Join([]string{c.name, c.ca, c.tsa, c.req, c.resp}, "\t") + "\n"
}

// TestBouncyCastleValidatesTokens has Bouncy Castle's TSP classes check
// tokens from servers with each key type, for requests made with every
// combination of SHA-2 hash, nonce, certReq and requested policy; then
// checks that the same program refuses a token whose signature was flipped,
// a response to another nonce, a response of another policy, and a token
// checked against another TSA's certificate.
func TestBouncyCastleValidatesTokens(t *testing.T) {
	java := requireTool(t, "java")
	javac := requireTool(t, "javac")
	requireFiles(t, "libbcpkix-java", bcJars...)
	// javac takes a few seconds: overlap it with the servers' work.
	go bcClasses.build(compileBCValidate(javac))

	keyTypes := []string{"ecdsa-p256", "ecdsa-p384", "rsa-2048"}
	var (
		mu        sync.Mutex
		positives []bcCase
		negatives []bcCase
		pkis      = map[string]bcPKI{}
	)
	// The subtests' files must outlive them: BCValidate reads them after.
	root := t.TempDir()
	t.Run("issue", func(t *testing.T) {
		for _, kt := range keyTypes {
			t.Run(kt, func(t *testing.T) {
				t.Parallel()
				p, pos, neg := bcIssue(t, filepath.Join(root, kt), kt)
				mu.Lock()
				defer mu.Unlock()
				positives = append(positives, pos...)
				negatives = append(negatives, neg...)
				pkis[kt] = p
			})
		}
	})
	if t.Failed() {
		return
	}
	// A token checked against another server's TSA certificate (which its
	// CA did sign): the signing-certificate attribute names another one.
	for i, kt := range keyTypes {
		for _, c := range positives {
			if c.name == kt+"/sha256/nonce=true/certReq=false/policy=" {
				o := pkis[keyTypes[(i+1)%len(keyTypes)]]
				negatives = append(negatives, bcCase{name: kt + "/other-tsa-certificate", ca: o.ca, tsa: o.tsa, req: c.req, resp: c.resp,
					wantErr: "certificate hash does not match certID hash"})
			}
		}
	}
	if len(positives) != 24*len(keyTypes) || len(negatives) != 4*len(keyTypes) {
		t.Fatalf("%d exchanges and %d negative controls, want %d and %d", len(positives), len(negatives), 24*len(keyTypes), 4*len(keyTypes))
	}

	classes := bcClasses.get(t, compileBCValidate(javac))
	work := t.TempDir()
	bcRun := func(cases []bcCase) (map[string]string, string, error) {
		var list strings.Builder
		for _, c := range cases {
			list.WriteString(c.line())
		}
		file := writeFile(t, work, fmt.Sprintf("cases-%d.txt", len(cases)), []byte(list.String()))
		args := append(append([]string{}, jvmFlags...), "-cp", strings.Join(append([]string{classes}, bcJars...), ":"), "BCValidate", file)
		outb, err := exec.Command(java, args...).CombinedOutput()
		out := string(outb)
		results := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, "OK "); ok {
				name, _, _ := strings.Cut(rest, " ")
				results[name] = l
			} else if rest, ok := strings.CutPrefix(l, "FAIL "); ok {
				name, _, _ := strings.Cut(rest, ": ")
				results[name] = l
			}
		}
		return results, out, err
	}

	t.Run("granted tokens validate", func(t *testing.T) {
		results, out, err := bcRun(positives)
		if err != nil {
			t.Errorf("BCValidate: %v", err)
		}
		for _, c := range positives {
			l := results[c.name]
			if !strings.HasPrefix(l, "OK ") {
				t.Errorf("%s: %q", c.name, l)
				continue
			}
			f := map[string]string{}
			for _, kv := range strings.Fields(l)[2:] {
				k, v, _ := strings.Cut(kv, "=")
				f[k] = v
			}
			serial, ok1 := new(big.Int).SetString(f["serial"], 16)
			recorded, ok2 := new(big.Int).SetString(c.serial, 16)
			if !ok1 || !ok2 || serial.Cmp(recorded) != 0 {
				t.Errorf("%s: BC reads serial %s, the store recorded %s", c.name, f["serial"], c.serial)
			}
			if f["policy"] != c.policy {
				t.Errorf("%s: BC reads policy %s, want %s", c.name, f["policy"], c.policy)
			}
			wantNonce := "-"
			if c.nonce != nil {
				wantNonce = c.nonce.Text(16)
			}
			if f["nonce"] != wantNonce {
				t.Errorf("%s: BC reads nonce %s, want %s", c.name, f["nonce"], wantNonce)
			}
		}
		if t.Failed() {
			t.Logf("BCValidate output:\n%s", out)
		} else {
			t.Logf("BCValidate validated %d exchanges, e.g.\n%s", len(positives), results[positives[0].name])
		}
	})
	t.Run("negative controls fail", func(t *testing.T) {
		results, out, err := bcRun(negatives)
		if err == nil {
			t.Errorf("BCValidate exited 0 for tampered exchanges:\n%s", out)
		}
		for _, c := range negatives {
			l := results[c.name]
			if !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, c.wantErr) {
				t.Errorf("%s: %q, want a FAIL saying %q", c.name, l, c.wantErr)
			}
		}
		lines := make([]string, 0, len(results))
		for _, l := range results {
			lines = append(lines, l)
		}
		sort.Strings(lines)
		t.Logf("BCValidate refused:\n%s", strings.Join(lines, "\n"))
	})
}

type bcPKI struct{ ca, tsa string }

// bcIssue runs a server with a key type in dir and has it grant a request
// for each combination of SHA-2 hash, nonce, certReq and requested policy.
// It returns the exchanges, checked against the store, and three negative
// controls made from one of them: the signature flipped, a request with
// another nonce, a request for another policy.
func bcIssue(t *testing.T, dir, kt string) (p bcPKI, pos, neg []bcCase) {
	data, work := filepath.Join(dir, "data"), filepath.Join(dir, "work")
	for _, d := range []string{data, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, data, "--log", "off", "--key-type", kt, "--accept-policies", bcAcceptedPolicy)
	p = bcPKI{ca: srv.caFile(), tsa: filepath.Join(srv.pkiDir, "tsa.pem")}
	type combo struct {
		alg       rfc3161.HashAlgorithm
		withNonce bool
		certReq   bool
		policy    string
	}
	var combos []combo
	for _, alg := range []rfc3161.HashAlgorithm{rfc3161.SHA256, rfc3161.SHA384, rfc3161.SHA512} {
		for _, withNonce := range []bool{true, false} {
			for _, certReq := range []bool{true, false} {
				for _, policy := range []string{"", bcAcceptedPolicy} {
					combos = append(combos, combo{alg, withNonce, certReq, policy})
				}
			}
		}
	}
	bodies := map[string]int{}
	for i, k := range combos {
		name := fmt.Sprintf("%s/%s/nonce=%t/certReq=%t/policy=%s", kt, k.alg.Name, k.withNonce, k.certReq, k.policy)
		var nonce *big.Int
		if k.withNonce {
			n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
			if err != nil {
				t.Fatal(err)
			}
			nonce = n.Add(n, big.NewInt(1))
		}
		h := k.alg.Hash.New()
		h.Write([]byte(name))
		digest := h.Sum(nil)
		var oid asn1.ObjectIdentifier
		wantPolicy := bcDefaultPolicy
		if k.policy != "" {
			oid = mustOID(t, k.policy)
			wantPolicy = k.policy
		}
		req := bcRequest(t, k.alg, digest, nonce, oid, k.certReq)
		status, _, body := post(t, srv.url, "application/timestamp-query", req)
		if r := parseResp(t, body); status != 200 || r.Status.Status != 0 {
			t.Fatalf("%s: HTTP %d status %d, want granted", name, status, r.Status.Status)
		}
		c := bcCase{name: name, ca: p.ca, tsa: p.tsa, policy: wantPolicy, nonce: nonce}
		c.req = writeFile(t, work, fmt.Sprintf("%d.tsq", i), req)
		c.resp = writeFile(t, work, fmt.Sprintf("%d.tsr", i), body)
		bodies[hashHex(req)] = i
		pos = append(pos, c)

		if i != 0 { // the first: SHA-256, a nonce, certReq, no policy
			continue
		}
		neg = append(neg,
			bcCase{name: kt + "/flipped-signature", ca: p.ca, tsa: p.tsa, req: c.req,
				resp: writeFile(t, work, "flipped.tsr", flipSignature(t, body)), wantErr: "signature not created by certificate"},
			bcCase{name: kt + "/other-nonce", ca: p.ca, tsa: p.tsa, resp: c.resp, wantErr: "wrong nonce",
				req: writeFile(t, work, "other-nonce.tsq", bcRequest(t, k.alg, digest, new(big.Int).Add(nonce, big.NewInt(1)), nil, true))},
			bcCase{name: kt + "/other-policy", ca: p.ca, tsa: p.tsa, resp: c.resp, wantErr: "TSA policy wrong",
				req: writeFile(t, work, "other-policy.tsq", bcRequest(t, k.alg, digest, nonce, mustOID(t, bcAcceptedPolicy), true))},
		)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad did not stop cleanly: %v\n%s", err, srv.output())
	}

	// Every request was recorded as sent and granted as asked.
	xs := exchanges(t, data)
	if len(xs) != len(pos) {
		t.Fatalf("%d requests recorded, %d sent", len(xs), len(pos))
	}
	for _, x := range xs {
		i, ok := bodies[x.req.BodySHA256]
		if !ok {
			t.Fatalf("recorded a request that was not sent, or twice: %+v", *x.req)
		}
		delete(bodies, x.req.BodySHA256)
		c, k := &pos[i], combos[i]
		if x.issued == nil {
			t.Fatalf("%s: not granted: %#v", c.name, x.all)
		}
		wantNonce := ""
		if c.nonce != nil {
			b := c.nonce.Bytes()
			if b[0]&0x80 != 0 {
				b = append([]byte{0}, b...)
			}
			wantNonce = hex.EncodeToString(b)
		}
		if x.req.HashAlgorithm != k.alg.Name || x.req.Nonce != wantNonce || x.req.ReqPolicy != k.policy || x.req.CertReq != k.certReq {
			t.Errorf("%s: recorded as %+v", c.name, *x.req)
		}
		if x.issued.Policy != c.policy {
			t.Errorf("%s: issued under policy %s, want %s", c.name, x.issued.Policy, c.policy)
		}
		c.serial = x.issued.Serial
	}
	return p, pos, neg
}

func bcRequest(t *testing.T, alg rfc3161.HashAlgorithm, digest []byte, nonce *big.Int, policy asn1.ObjectIdentifier, certReq bool) []byte {
	t.Helper()
	q, err := rfc3161.NewTimeStampReq(alg, digest, nonce, policy, certReq)
	if err != nil {
		t.Fatal(err)
	}
	der, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func mustOID(t *testing.T, s string) asn1.ObjectIdentifier {
	t.Helper()
	var oid asn1.ObjectIdentifier
	for _, part := range strings.Split(s, ".") {
		var n int
		if _, err := fmt.Sscan(part, &n); err != nil {
			t.Fatalf("OID %s: %v", s, err)
		}
		oid = append(oid, n)
	}
	return oid
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// signedDataWhole is CMS SignedData (RFC 5652 §5.1) down to signerInfos.
type signedDataWhole struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      asn1.RawValue
}

// signerInfo is CMS SignerInfo (RFC 5652 §5.3).
type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    asn1.RawValue
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm asn1.RawValue
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

// flipSignature returns a copy of a granted TimeStampResp whose SignerInfo
// signature has its last octet changed: still DER (for ECDSA the last octet
// of s, for RSA of the signature block), no longer a valid signature.
func flipSignature(t *testing.T, resp []byte) []byte {
	t.Helper()
	sig := signerSignature(t, parseResp(t, resp).Token.FullBytes)
	at := bytes.LastIndex(resp, sig)
	if len(sig) < 32 || at < 0 || bytes.Index(resp, sig) != at {
		t.Fatalf("cannot locate the %d-octet signature in the response", len(sig))
	}
	out := append([]byte{}, resp...)
	out[at+len(sig)-1] ^= 0x01
	return out
}

// signerSignature returns the signature of the only SignerInfo of a CMS
// ContentInfo holding SignedData.
func signerSignature(t *testing.T, contentInfoDER []byte) []byte {
	t.Helper()
	var ci contentInfo
	if _, err := asn1.Unmarshal(contentInfoDER, &ci); err != nil {
		t.Fatalf("ContentInfo: %v", err)
	}
	var sd signedDataWhole
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) != 0 || sd.SignerInfos.Tag != asn1.TagSet {
		t.Fatalf("SignedData: %v", err)
	}
	var si signerInfo
	if rest, err := asn1.Unmarshal(sd.SignerInfos.Bytes, &si); err != nil || len(rest) != 0 {
		t.Fatalf("want one SignerInfo: %v (%d octets more)", err, len(rest))
	}
	return si.Signature
}
