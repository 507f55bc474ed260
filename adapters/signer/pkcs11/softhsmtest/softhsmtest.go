// Package softhsmtest prepares SoftHSM2 for tests of code that signs in a
// PKCS#11 token: a private token directory per test, made known through
// SOFTHSM2_CONF so that a child process (tsad in the end-to-end tests)
// reads the same one, tokens made by softhsm2-util, and the one outage a
// test can cause from outside the signing process: taking a token's
// directory away and putting it back.
//
// SoftHSM2 reads SOFTHSM2_CONF and scans its token directory in
// C_Initialize, and does nothing of the kind again until the library is
// finalised and initialised anew. A test therefore calls Setup before the
// module is initialised in its process, and makes tokens (InitToken) while
// no key of the process holds the module open; the pkcs11 adapter
// finalises the module when its last key closes, so tests that close what
// they open each see their own directory.
//
// Without SoftHSM2 the helpers skip the test and say why, except under
// CI=true, where a missing SoftHSM2 is a failure: a CI run that silently
// tested nothing would pass.
package softhsmtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Where distributions install the library; SOFTHSM2_MODULE overrides.
var candidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib64/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// Module is the path of the SoftHSM2 library: $SOFTHSM2_MODULE when set,
// else the first of the usual install paths that exists.
func Module() (string, error) {
	if m := os.Getenv("SOFTHSM2_MODULE"); m != "" {
		if _, err := os.Stat(m); err != nil {
			return "", fmt.Errorf("SOFTHSM2_MODULE: %w", err)
		}
		return m, nil
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("libsofthsm2.so is in none of %s (or set SOFTHSM2_MODULE)", strings.Join(candidates, ", "))
}

// Setup finds SoftHSM2, writes a configuration whose token directory is
// private to the test, and points SOFTHSM2_CONF at it (t.Setenv, so the
// test may not be parallel). The paths are absolute: a child process
// given SOFTHSM2_CONF=confPath sees the same tokens.
func Setup(t testing.TB) (module, tokendir, confPath string) {
	t.Helper()
	module, err := Module()
	if err != nil {
		missing(t, err.Error())
	}
	dir := t.TempDir()
	tokendir = filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokendir, 0o700); err != nil {
		t.Fatal(err)
	}
	confPath = filepath.Join(dir, "softhsm2.conf")
	conf := "directories.tokendir = " + tokendir + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", confPath)
	return module, tokendir, confPath
}

// InitToken creates a token labelled label with softhsm2-util, in a child
// process that reads SOFTHSM2_CONF as Setup set it, and returns the
// token's directory. The module of this process must not be initialised
// at the time, or it will not see the token until it is initialised anew.
func InitToken(t testing.TB, module, label, soPIN, userPIN string) (dir string) {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		missing(t, "softhsm2-util: "+err.Error())
	}
	tokendir := tokenDirOfConf(t)
	before := listDirs(t, tokendir)
	out, err := exec.Command(util, "--module", module, "--init-token", "--free", "--label", label,
		"--so-pin", soPIN, "--pin", userPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token --label %s: %v\n%s", label, err, out)
	}
	for d := range listDirs(t, tokendir) {
		if !before[d] {
			return filepath.Join(tokendir, d)
		}
	}
	t.Fatalf("softhsm2-util made token %q, but no new directory appeared in %s", label, tokendir)
	return ""
}

// TokenDir is the directory under tokendir that holds the token labelled
// label, however it was made. It reads SoftHSM2's file store: the token's
// label is the attribute CKA_VENDOR_DEFINED+0x5349 of token.object, stored
// as big-endian type, kind (3: bytes), length and the label padded with
// spaces to 32 bytes.
func TokenDir(t testing.TB, tokendir, label string) string {
	t.Helper()
	if len(label) > 32 {
		t.Fatalf("token label %q is longer than 32 bytes", label)
	}
	want := binary.BigEndian.AppendUint64(nil, 0x80005349)
	want = binary.BigEndian.AppendUint64(want, 3)
	want = binary.BigEndian.AppendUint64(want, 32)
	want = append(want, label+strings.Repeat(" ", 32-len(label))...)
	var found []string
	for d := range listDirs(t, tokendir) {
		b, err := os.ReadFile(filepath.Join(tokendir, d, "token.object"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, want) {
			found = append(found, filepath.Join(tokendir, d))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d directories in %s hold a token labelled %q: %v", len(found), tokendir, label, found)
	}
	return found[0]
}

// RemoveToken takes a token away the way a pulled device or a lost
// volume would: its directory is moved out of the token directory, so
// that SoftHSM2, in this process or any other, finds neither its objects
// nor, when it scans again, the token. restore moves it back; it is
// idempotent and also runs at the end of the test.
//
// A process using the token notices on its next use of a key
// (CKR_OBJECT_HANDLE_INVALID: SoftHSM2 checks an object's file on every
// use) and, once the directory is back, only after finalising and
// initialising the library again: it does not scan for tokens otherwise.
func RemoveToken(t testing.TB, dir string) (restore func()) {
	t.Helper()
	dir = filepath.Clean(dir)
	// Beside the token directory rather than in it, where SoftHSM2 would
	// find the token again, and on the same file system, so that the
	// moves are renames.
	away := filepath.Join(filepath.Dir(filepath.Dir(dir)), "removed-"+filepath.Base(dir))
	if err := os.Rename(dir, away); err != nil {
		t.Fatalf("remove token: %v", err)
	}
	done := false
	restore = func() {
		t.Helper()
		if done {
			return
		}
		done = true
		if err := os.Rename(away, dir); err != nil {
			t.Errorf("restore token: %v", err)
		}
	}
	t.Cleanup(restore)
	return restore
}

func missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("SoftHSM2 is required under CI=true: %s", reason)
	}
	t.Skipf("SoftHSM2 is not installed (%s); install softhsm2 to run this test (under CI=true it fails instead)", reason)
}

// tokenDirOfConf reads directories.tokendir from the configuration
// SOFTHSM2_CONF names.
func tokenDirOfConf(t testing.TB) string {
	t.Helper()
	conf := os.Getenv("SOFTHSM2_CONF")
	if conf == "" {
		t.Fatal("SOFTHSM2_CONF is not set: call softhsmtest.Setup first")
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == "directories.tokendir" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s sets no directories.tokendir", conf)
	return ""
}

func listDirs(t testing.TB, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			dirs[e.Name()] = true
		}
	}
	return dirs
}
