package softhsmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestTokensAndTheirRemoval(t *testing.T) {
	module, tokendir, conf := Setup(t)
	if os.Getenv("SOFTHSM2_CONF") != conf || !filepath.IsAbs(conf) || !filepath.IsAbs(tokendir) {
		t.Fatalf("SOFTHSM2_CONF=%q, Setup returned %q and %q: want absolute paths, and the variable set", os.Getenv("SOFTHSM2_CONF"), conf, tokendir)
	}
	b, err := os.ReadFile(conf)
	if err != nil || !strings.Contains(string(b), "directories.tokendir = "+tokendir+"\n") {
		t.Fatalf("%s: %q, %v", conf, b, err)
	}
	dirs := map[string]string{}
	for _, label := range []string{"first", "second-token-with-a-32-byte-name"} {
		dirs[label] = InitToken(t, module, label, "so-1234", "user-1234")
		if filepath.Dir(dirs[label]) != tokendir {
			t.Errorf("token %q made in %s, not in %s", label, dirs[label], tokendir)
		}
	}
	for label, dir := range dirs {
		if got := TokenDir(t, tokendir, label); got != dir {
			t.Errorf("TokenDir(%q) = %s, want %s", label, got, dir)
		}
	}

	restore := RemoveToken(t, dirs["first"])
	if _, err := os.Stat(dirs["first"]); !os.IsNotExist(err) {
		t.Errorf("the token's directory is still there: %v", err)
	}
	if entries, _ := os.ReadDir(tokendir); len(entries) != 1 {
		t.Errorf("%d entries in the token directory, want the other token only", len(entries))
	}
	restore()
	restore()
	if got := TokenDir(t, tokendir, "first"); got != dirs["first"] {
		t.Errorf("after restore, TokenDir = %s, want %s", got, dirs["first"])
	}
}

// recorder stands in for a test, to see whether a helper skips or fails.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWithoutSoftHSMSkipsButFailsUnderCI(t *testing.T) {
	t.Setenv("SOFTHSM2_MODULE", "/nonexistent/libsofthsm2.so")
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Setup(r)
		}()
		<-done
		switch {
		case ci == "true" && (r.failed == "" || r.skipped != ""):
			t.Errorf("CI=true: failed %q, skipped %q; want a failure", r.failed, r.skipped)
		case ci == "" && (r.skipped == "" || r.failed != ""):
			t.Errorf("CI unset: failed %q, skipped %q; want a skip", r.failed, r.skipped)
		}
		if msg := r.failed + r.skipped; !strings.Contains(msg, "/nonexistent/libsofthsm2.so") {
			t.Errorf("CI=%q: %q does not say what is missing", ci, msg)
		}
	}
}
