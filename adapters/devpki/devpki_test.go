package devpki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIncompleteSetIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	f, err := Ensure(Options{Dir: dir, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(f.TSAKey); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	os.Remove(f.TSAKey)
	if _, err := Ensure(Options{Dir: dir, Now: time.Now()}); err == nil || !strings.Contains(err.Error(), "tsa.key") {
		t.Fatalf("err = %v, want it to name tsa.key", err)
	}
}

func TestUnknownKeyType(t *testing.T) {
	if _, err := Ensure(Options{Dir: t.TempDir() + "/x", KeyType: "dsa-1024", Now: time.Now()}); err == nil {
		t.Fatal("unknown key type accepted")
	}
}
