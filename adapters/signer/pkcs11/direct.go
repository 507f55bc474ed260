package pkcs11

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

// Signing calls the module's C_SignInit and C_Sign straight from its
// CK_FUNCTION_LIST, in one cgo call, into buffers the caller owns:
// miekg/pkcs11 makes two cgo calls, mallocs the mechanism, asks C_Sign for
// the length first and copies the signature out of a calloc'ed buffer.
// Only the head of the list up to C_Sign is declared; its layout is fixed
// by PKCS#11 (v2.40 and v3.0 alike): a CK_VERSION, then one function
// pointer per function in the standard's order, C_SignInit the 43rd.
typedef unsigned long ck_ulong;
typedef struct { ck_ulong mechanism; void *parameter; ck_ulong parameter_len; } ck_mechanism;

struct ck_functions {
	struct { unsigned char major, minor; } version;
	void *before_sign_init[42]; // C_Initialize ... C_DigestFinal
	ck_ulong (*sign_init)(ck_ulong session, ck_mechanism *m, ck_ulong key);
	ck_ulong (*sign)(ck_ulong session, unsigned char *data, ck_ulong len, unsigned char *sig, ck_ulong *siglen);
};

// p11_functions finds the function list of the library at path, which
// must already be loaded (by miekg/pkcs11): RTLD_NOLOAD makes sure this
// is the same instance, whose sessions the adapter holds.
static const char *p11_functions(const char *path, struct ck_functions **out) {
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (!h) return "the library is not loaded";
	ck_ulong (*get)(struct ck_functions **) = (ck_ulong (*)(struct ck_functions **))dlsym(h, "C_GetFunctionList");
	if (!get) return "no C_GetFunctionList";
	if (get(out) != 0 || !*out) return "C_GetFunctionList failed";
	if (!(*out)->sign_init || !(*out)->sign) return "no C_SignInit or C_Sign";
	return NULL;
}

// p11_result is a call's return value, which call failed (1: C_SignInit,
// 2: C_Sign) and the signature's length.
typedef struct { ck_ulong rv; int stage; ck_ulong len; } p11_result;

static p11_result p11_sign(struct ck_functions *f, ck_ulong session, ck_ulong key,
		ck_ulong mech, void *param, ck_ulong plen,
		unsigned char *in, ck_ulong inlen, unsigned char *sig, ck_ulong siglen) {
	p11_result r = {0, 1, siglen};
	ck_mechanism m = {mech, param, plen};
	r.rv = f->sign_init(session, &m, key);
	if (r.rv) return r;
	r.stage = 2;
	r.rv = f->sign(session, in, inlen, sig, &r.len);
	return r;
}

// p11_sign_rest finishes a C_Sign that answered CKR_BUFFER_TOO_SMALL,
// which leaves the operation active.
static p11_result p11_sign_rest(struct ck_functions *f, ck_ulong session,
		unsigned char *in, ck_ulong inlen, unsigned char *sig, ck_ulong siglen) {
	p11_result r = {0, 2, siglen};
	r.rv = f->sign(session, in, inlen, sig, &r.len);
	return r;
}

static long long p11_now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

// p11_sign_for signs in a tight loop for ns nanoseconds, counting the
// signatures into *count: the token's own speed, with nothing around it.
static p11_result p11_sign_for(struct ck_functions *f, ck_ulong session, ck_ulong key,
		ck_ulong mech, void *param, ck_ulong plen,
		unsigned char *in, ck_ulong inlen, unsigned char *sig, ck_ulong siglen,
		long long ns, long long *count) {
	long long end = p11_now() + ns;
	p11_result r;
	do {
		r = p11_sign(f, session, key, mech, param, plen, in, inlen, sig, siglen);
		if (r.rv) return r;
		(*count)++;
	} while (p11_now() < end);
	return r;
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"

	p11 "github.com/miekg/pkcs11"
)

// functions is a module's CK_FUNCTION_LIST.
type functions struct{ f *C.struct_ck_functions }

// loadFunctions finds the function list of the library miekg/pkcs11 has
// loaded from path.
func loadFunctions(path string) (functions, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var f *C.struct_ck_functions
	if msg := C.p11_functions(cpath, &f); msg != nil {
		return functions{}, fmt.Errorf("pkcs11: module %s: %s", path, C.GoString(msg))
	}
	return functions{f: f}, nil
}

// mech is a mechanism with its parameters, as C_SignInit takes it.
type mech struct {
	typ   uint
	param []byte // no Go pointers: cgo may be handed it
}

// signError names the call that failed, as miekg/pkcs11 would.
func signError(r C.p11_result) error {
	call := "C_SignInit"
	if r.stage == 2 {
		call = "C_Sign"
	}
	return fmt.Errorf("%s: %w", call, p11.Error(uint(r.rv)))
}

// sign runs C_SignInit and C_Sign on session h with key obj, writing the
// signature into sig; it returns the signature, grown if the token asked
// for more room than sig has.
func (fs functions) sign(h p11.SessionHandle, obj p11.ObjectHandle, m mech, in, sig []byte) ([]byte, error) {
	var param unsafe.Pointer
	if len(m.param) > 0 {
		param = unsafe.Pointer(&m.param[0])
	}
	r := C.p11_sign(fs.f, C.ck_ulong(h), C.ck_ulong(obj), C.ck_ulong(m.typ), param, C.ck_ulong(len(m.param)),
		bytesPtr(in), C.ck_ulong(len(in)), bytesPtr(sig), C.ck_ulong(len(sig)))
	if r.rv == p11.CKR_BUFFER_TOO_SMALL && r.stage == 2 && int(r.len) > len(sig) {
		sig = make([]byte, int(r.len))
		r = C.p11_sign_rest(fs.f, C.ck_ulong(h), bytesPtr(in), C.ck_ulong(len(in)), bytesPtr(sig), C.ck_ulong(len(sig)))
	}
	if r.rv != 0 {
		return nil, signError(r)
	}
	return sig[:int(r.len)], nil
}

// signFor signs in a loop in C for d, and counts the signatures.
func (fs functions) signFor(h p11.SessionHandle, obj p11.ObjectHandle, m mech, in, sig []byte, d time.Duration) (int64, error) {
	var param unsafe.Pointer
	if len(m.param) > 0 {
		param = unsafe.Pointer(&m.param[0])
	}
	var n C.longlong
	r := C.p11_sign_for(fs.f, C.ck_ulong(h), C.ck_ulong(obj), C.ck_ulong(m.typ), param, C.ck_ulong(len(m.param)),
		bytesPtr(in), C.ck_ulong(len(in)), bytesPtr(sig), C.ck_ulong(len(sig)), C.longlong(d.Nanoseconds()), &n)
	if r.rv != 0 {
		return int64(n), signError(r)
	}
	return int64(n), nil
}

func bytesPtr(b []byte) *C.uchar {
	if len(b) == 0 {
		return nil
	}
	return (*C.uchar)(unsafe.Pointer(&b[0]))
}
