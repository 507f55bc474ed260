package pkcs11

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	p11 "github.com/miekg/pkcs11"
)

// tokenMissingError says a token is not among those the module offers.
type tokenMissingError struct {
	label   string
	present []string
}

func (e *tokenMissingError) Error() string {
	if len(e.present) == 0 {
		return fmt.Sprintf("no token labelled %q: the module offers no initialised token", e.label)
	}
	return fmt.Sprintf("no token labelled %q (the module offers %s)", e.label, strings.Join(e.present, ", "))
}

// findToken is the slot holding the initialised token labelled label.
func findToken(ctx *p11.Ctx, label string) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("C_GetSlotList: %w", err)
	}
	var (
		present []string
		found   []uint
		infoErr error
	)
	for _, slot := range slots {
		ti, err := ctx.GetTokenInfo(slot)
		if err != nil {
			infoErr = fmt.Errorf("C_GetTokenInfo of slot %d: %w", slot, err)
			continue
		}
		if ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		l := strings.TrimRight(ti.Label, " \x00")
		present = append(present, fmt.Sprintf("%q", l))
		if l == label {
			found = append(found, slot)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return 0, fmt.Errorf("%d tokens are labelled %q (slots %v): labels must be unique", len(found), label, found)
	case infoErr != nil:
		// A token that cannot describe itself may be the one wanted: say
		// why rather than that it is missing.
		return 0, fmt.Errorf("no token labelled %q found: %w", label, infoErr)
	}
	return 0, &tokenMissingError{label: label, present: present}
}

// login logs the user in. Login state is per token and per application,
// so a token another key of this process logged in to answers
// CKR_USER_ALREADY_LOGGED_IN, which is success here (and means the token
// did not check this PIN).
func login(ctx *p11.Ctx, sh p11.SessionHandle, token, pin string) error {
	err := ctx.Login(sh, p11.CKU_USER, pin)
	var code p11.Error
	errors.As(err, &code)
	switch {
	case err == nil, code == p11.CKR_USER_ALREADY_LOGGED_IN:
		return nil
	case code == p11.CKR_PIN_INCORRECT:
		return fmt.Errorf("token %q refused the user PIN (CKR_PIN_INCORRECT)", token)
	case code == p11.CKR_PIN_LOCKED:
		return fmt.Errorf("token %q has locked its user PIN (CKR_PIN_LOCKED): its security officer must reset it", token)
	case code == p11.CKR_USER_PIN_NOT_INITIALIZED:
		return fmt.Errorf("token %q has no user PIN yet (CKR_USER_PIN_NOT_INITIALIZED)", token)
	}
	return fmt.Errorf("log in to token %q: %w", token, err)
}

// findObjects returns every object matching template.
func findObjects(ctx *p11.Ctx, sh p11.SessionHandle, template []*p11.Attribute) ([]p11.ObjectHandle, error) {
	if err := ctx.FindObjectsInit(sh, template); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	var all []p11.ObjectHandle
	for {
		objs, _, err := ctx.FindObjects(sh, 64)
		if err != nil {
			_ = ctx.FindObjectsFinal(sh)
			return nil, fmt.Errorf("C_FindObjects: %w", err)
		}
		all = append(all, objs...)
		if len(objs) < 64 {
			break
		}
	}
	if err := ctx.FindObjectsFinal(sh); err != nil {
		return nil, fmt.Errorf("C_FindObjectsFinal: %w", err)
	}
	return all, nil
}

// findPrivateKey finds the one private key with the label, the id, or
// both.
func findPrivateKey(ctx *p11.Ctx, sh p11.SessionHandle, token, label string, id []byte) (p11.ObjectHandle, error) {
	template := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}
	var what []string
	if label != "" {
		template = append(template, p11.NewAttribute(p11.CKA_LABEL, label))
		what = append(what, fmt.Sprintf("labelled %q", label))
	}
	if len(id) > 0 {
		template = append(template, p11.NewAttribute(p11.CKA_ID, id))
		what = append(what, fmt.Sprintf("with id %x", id))
	}
	if len(what) == 0 {
		return 0, errors.New("no key label or id to look for")
	}
	objs, err := findObjects(ctx, sh, template)
	if err != nil {
		return 0, fmt.Errorf("look for the private key %s: %w", strings.Join(what, " "), err)
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("token %q holds no private key %s", token, strings.Join(what, " "))
	case 1:
		return objs[0], nil
	}
	return 0, fmt.Errorf("token %q holds %d private keys %s: select the key by its id", token, len(objs), strings.Join(what, " "))
}

// attributes reads the attributes types of obj, all or none: PKCS#11
// fails the whole read when one is missing or sensitive.
func attributes(ctx *p11.Ctx, sh p11.SessionHandle, obj p11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	template := make([]*p11.Attribute, len(types))
	for i, t := range types {
		template[i] = p11.NewAttribute(t, nil)
	}
	attrs, err := ctx.GetAttributeValue(sh, obj, template)
	if err != nil {
		return nil, fmt.Errorf("C_GetAttributeValue: %w", err)
	}
	values := make(map[uint][]byte, len(attrs))
	for _, a := range attrs {
		values[a.Type] = a.Value
	}
	return values, nil
}

// ulong decodes a CK_ULONG attribute, which the library writes in the
// host's byte order and size.
func ulong(b []byte) (uint64, error) {
	switch len(b) {
	case 8:
		return binary.NativeEndian.Uint64(b), nil
	case 4:
		return uint64(binary.NativeEndian.Uint32(b)), nil
	}
	return 0, fmt.Errorf("a CK_ULONG of %d bytes", len(b))
}

func boolean(b []byte) bool { return len(b) == 1 && b[0] != 0 }
