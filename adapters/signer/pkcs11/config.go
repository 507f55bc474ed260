package pkcs11

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Config selects a key on a token. The PIN is handed in by the caller
// (never read from a config file, never logged or put in an error).
type Config struct {
	// Module is the path of the PKCS#11 library.
	Module string
	// Token is the token's label: slot ids change between boots.
	Token string
	// KeyLabel is the CKA_LABEL of the private key; KeyID its CKA_ID. One
	// of the two.
	KeyLabel string
	KeyID    []byte
	// PIN is the user PIN. The key keeps it to log in again after an
	// outage.
	PIN string
	// Sessions is the size of the session pool; 0 is 2*GOMAXPROCS, and
	// never fewer than 2.
	Sessions int
	// Wait bounds the wait for a free session; 0 is 2s. Past it Sign
	// returns ErrBusy.
	Wait time.Duration
	// Observe, if set, is called (from a goroutine of the adapter, never
	// while a lock is held) once when the key becomes unusable (a lost
	// session, a removed token, a device error) and once when it is usable
	// again. It must not call Close on the key.
	Observe func(Change)
}

// Change is a change of a key's availability.
type Change struct {
	Available bool
	// Cause says why the key was lost (the PKCS#11 error); "" on return.
	Cause string
}

// ErrUnavailable is returned (wrapped) by Sign while the key's token is
// unusable: it fails at once, without waiting for the reconnection.
var ErrUnavailable = errors.New("key unavailable")

// ErrBusy is returned (wrapped) by Sign when no session came free within
// Config.Wait.
var ErrBusy = errors.New("all sessions busy")

const defaultWait = 2 * time.Second

func (c Config) validate() error {
	var errs []error
	if c.Module == "" {
		errs = append(errs, errors.New("no module (the PKCS#11 library's path)"))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("no token label"))
	}
	switch {
	case c.KeyLabel == "" && len(c.KeyID) == 0:
		errs = append(errs, errors.New("neither a key label nor a key id"))
	case c.KeyLabel != "" && len(c.KeyID) != 0:
		errs = append(errs, errors.New("a key label and a key id: give one"))
	}
	if c.PIN == "" {
		errs = append(errs, errors.New("no PIN"))
	}
	if c.Sessions < 0 {
		errs = append(errs, fmt.Errorf("sessions %d is negative", c.Sessions))
	}
	if c.Wait < 0 {
		errs = append(errs, fmt.Errorf("wait %v is negative", c.Wait))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pkcs11: configuration: %w", err)
	}
	return nil
}

func (c Config) poolSize() int {
	if c.Sessions > 0 {
		return c.Sessions
	}
	return max(2, 2*runtime.GOMAXPROCS(0))
}

func (c Config) wait() time.Duration {
	if c.Wait > 0 {
		return c.Wait
	}
	return defaultWait
}

// selector names the key as the configuration selects it, for messages.
func (c Config) selector() string {
	switch {
	case c.KeyLabel != "" && len(c.KeyID) > 0:
		return fmt.Sprintf("%q (id %x)", c.KeyLabel, c.KeyID)
	case c.KeyLabel != "":
		return fmt.Sprintf("%q", c.KeyLabel)
	}
	return fmt.Sprintf("id %x", c.KeyID)
}
