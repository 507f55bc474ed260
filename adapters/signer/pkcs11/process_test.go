package pkcs11

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/signer/pkcs11/softhsmtest"
)

// signerProcessEnv makes the test binary a signing process (see
// TestMain) that opens the key CHRONOLOG_TEST_KEY of testToken in the
// module the variable names, and answers each line "sign" on its standard
// input with "ok", "unavailable <error>" or "error <error>".
const signerProcessEnv = "CHRONOLOG_TEST_PKCS11_SIGNER"

func signerProcess(module string) int {
	k, err := Open(Config{Module: module, Token: testToken, KeyLabel: os.Getenv("CHRONOLOG_TEST_KEY"), PIN: userPIN})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer k.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		err := signECDSA(k, in.Text())
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.Is(err, ErrUnavailable):
			fmt.Println("unavailable", err)
		default:
			fmt.Println("error", err)
		}
	}
	return 0
}

// The outage tsad's end-to-end test causes: the token's directory taken
// away from under another process, and put back.
func TestTokenRemovedFromAnotherProcess(t *testing.T) {
	module, tokendir := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), signerProcessEnv+"="+module, "CHRONOLOG_TEST_KEY=tsa")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewScanner(stdout)
	answer := func() string {
		t.Helper()
		if !out.Scan() {
			t.Fatalf("the signing process stopped: %v", out.Err())
		}
		return out.Text()
	}
	sign := func() string {
		t.Helper()
		if _, err := io.WriteString(stdin, "request\n"); err != nil {
			t.Fatal(err)
		}
		return answer()
	}
	if a := answer(); a != "ready" {
		t.Fatalf("the signing process: %s", a)
	}
	if a := sign(); a != "ok" {
		t.Fatalf("before the outage: %s", a)
	}

	restore := softhsmtest.RemoveToken(t, softhsmtest.TokenDir(t, tokendir, testToken))
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if a := sign(); !strings.HasPrefix(a, "unavailable ") {
			t.Fatalf("with the token away: %s, want unavailable", a)
		}
	}
	restore()
	var a string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if a = sign(); a == "ok" {
			break
		}
		if !strings.HasPrefix(a, "unavailable ") {
			t.Fatalf("with the token back: %s", a)
		}
	}
	if a != "ok" {
		t.Fatalf("10s after the token came back: %s", a)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the signing process: %v", err)
	}
}

// A token made by another process (tsactl hsm init while tsad runs) is
// unknown to a module initialised before it: the module is initialised
// anew for it, and the keys already open sign on.
func TestTokenMadeByAnotherProcessWhileTheModuleIsOpen(t *testing.T) {
	module, _ := newToken(t)
	generate(t, module, testToken, ECDSAP256, "tsa")
	k := open(t, Config{Module: module, KeyLabel: "tsa",
		Observe: func(c Change) { t.Errorf("the open key: Observe(%+v)", c) }})
	before := moduleGeneration(k.mod)
	softhsmtest.InitToken(t, module, "made-later", soPIN, userPIN)
	generate(t, module, "made-later", Ed25519, "log")
	log := open(t, Config{Module: module, Token: "made-later", KeyLabel: "log"})
	if err := signEd25519(log, "checkpoint"); err != nil {
		t.Error(err)
	}
	if err := signECDSA(k, "request"); err != nil {
		t.Errorf("the key open before: %v", err)
	}
	if moduleGeneration(k.mod) == before {
		t.Error("the module was not initialised anew, yet found the new token")
	}
}
