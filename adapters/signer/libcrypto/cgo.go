package libcrypto

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

// OpenSSL 3's libcrypto is loaded at run time, so that building needs no
// OpenSSL headers: only these few entry points are declared, with the
// types OpenSSL 3 gives them.
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct evp_md_st EVP_MD;

static void *lc;
static EVP_PKEY *(*p_d2i_AutoPrivateKey)(EVP_PKEY **, const unsigned char **, long);
static void (*p_EVP_PKEY_free)(EVP_PKEY *);
static EVP_PKEY_CTX *(*p_EVP_PKEY_CTX_new)(EVP_PKEY *, void *);
static void (*p_EVP_PKEY_CTX_free)(EVP_PKEY_CTX *);
static int (*p_EVP_PKEY_sign_init)(EVP_PKEY_CTX *);
static int (*p_EVP_PKEY_sign)(EVP_PKEY_CTX *, unsigned char *, size_t *, const unsigned char *, size_t);
static int (*p_EVP_PKEY_CTX_set_rsa_padding)(EVP_PKEY_CTX *, int);
static int (*p_EVP_PKEY_CTX_set_signature_md)(EVP_PKEY_CTX *, const EVP_MD *);
static const EVP_MD *(*p_EVP_get_digestbyname)(const char *);
static unsigned long (*p_ERR_get_error)(void);
static void (*p_ERR_error_string_n)(unsigned long, char *, size_t);
static unsigned long (*p_OpenSSL_version_num)(void);

#define LOAD(name) if (!(*(void **)(&p_##name) = dlsym(h, #name))) { dlclose(h); return #name; }

// cl_load opens libcrypto.so.3 and resolves every entry point. It returns
// NULL on success, or what was missing; lc is set only when all is there.
static const char *cl_load(void) {
	if (lc) return NULL;
	void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!h) return "libcrypto.so.3";
	LOAD(d2i_AutoPrivateKey)
	LOAD(EVP_PKEY_free)
	LOAD(EVP_PKEY_CTX_new)
	LOAD(EVP_PKEY_CTX_free)
	LOAD(EVP_PKEY_sign_init)
	LOAD(EVP_PKEY_sign)
	LOAD(EVP_PKEY_CTX_set_rsa_padding)
	LOAD(EVP_PKEY_CTX_set_signature_md)
	LOAD(EVP_get_digestbyname)
	LOAD(ERR_get_error)
	LOAD(ERR_error_string_n)
	LOAD(OpenSSL_version_num)
	lc = h;
	return NULL;
}

static unsigned long cl_version(void) { return p_OpenSSL_version_num(); }

static EVP_PKEY *cl_key(const unsigned char *der, long len) {
	const unsigned char *p = der;
	return p_d2i_AutoPrivateKey(NULL, &p, len);
}

static void cl_key_free(EVP_PKEY *k) { p_EVP_PKEY_free(k); }

// cl_ctx makes a signing context for key: PKCS#1 v1.5 padding for RSA
// (rsaPadding 1; 0 leaves the key type's default), digest md (NULL: none).
static EVP_PKEY_CTX *cl_ctx(EVP_PKEY *key, const char *md, int rsaPadding) {
	EVP_PKEY_CTX *c = p_EVP_PKEY_CTX_new(key, NULL);
	if (!c) return NULL;
	if (p_EVP_PKEY_sign_init(c) <= 0) goto fail;
	if (rsaPadding && p_EVP_PKEY_CTX_set_rsa_padding(c, rsaPadding) <= 0) goto fail;
	if (md) {
		const EVP_MD *m = p_EVP_get_digestbyname(md);
		if (!m || p_EVP_PKEY_CTX_set_signature_md(c, m) <= 0) goto fail;
	}
	return c;
fail:
	p_EVP_PKEY_CTX_free(c);
	return NULL;
}

static void cl_ctx_free(EVP_PKEY_CTX *c) { p_EVP_PKEY_CTX_free(c); }

static int cl_sign(EVP_PKEY_CTX *c, unsigned char *sig, size_t *siglen, const unsigned char *tbs, size_t tbslen) {
	return p_EVP_PKEY_sign(c, sig, siglen, tbs, tbslen);
}

static long long cl_now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

// cl_sign_for signs tbs in a tight loop for ns nanoseconds, counting the
// signatures into *count: OpenSSL's own speed, with nothing around it.
static int cl_sign_for(EVP_PKEY_CTX *c, unsigned char *sig, size_t sigmax, const unsigned char *tbs, size_t tbslen,
		long long ns, long long *count) {
	long long end = cl_now() + ns;
	do {
		size_t n = sigmax;
		if (p_EVP_PKEY_sign(c, sig, &n, tbs, tbslen) <= 0) return 0;
		(*count)++;
	} while (cl_now() < end);
	return 1;
}

// cl_error drains OpenSSL's error queue into buf, keeping the first.
static void cl_error(char *buf, size_t len) {
	unsigned long e, first = 0;
	while ((e = p_ERR_get_error()) != 0) if (!first) first = e;
	if (first) p_ERR_error_string_n(first, buf, len); else buf[0] = 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

var (
	loadOnce sync.Once
	loadErr  error
)

// load makes libcrypto usable once per process.
func load() error {
	loadOnce.Do(func() {
		if missing := C.cl_load(); missing != nil {
			loadErr = fmt.Errorf("libcrypto: OpenSSL 3 not available: cannot load %s", C.GoString(missing))
			return
		}
		if v := uint64(C.cl_version()); v>>28 < 3 {
			loadErr = fmt.Errorf("libcrypto: OpenSSL %x is older than 3", v)
		}
	})
	return loadErr
}

// lastError describes and clears OpenSSL's error queue.
func lastError(op string) error {
	var buf [256]C.char
	C.cl_error(&buf[0], C.size_t(len(buf)))
	if msg := C.GoString(&buf[0]); msg != "" {
		return fmt.Errorf("libcrypto: %s: %s", op, msg)
	}
	return errors.New("libcrypto: " + op + " failed")
}

// pkey is an OpenSSL private key.
type pkey struct{ p *C.EVP_PKEY }

func newPKey(der []byte) (*pkey, error) {
	if len(der) == 0 {
		return nil, errors.New("libcrypto: empty key")
	}
	p := C.cl_key((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)))
	if p == nil {
		return nil, lastError("parse private key")
	}
	return &pkey{p: p}, nil
}

func (k *pkey) free() { C.cl_key_free(k.p) }

// signCtx is a signing context; OpenSSL's are not safe for concurrent use,
// so each is used by one goroutine at a time (see Signer's pools).
type signCtx struct{ c *C.EVP_PKEY_CTX }

func newSignCtx(k *pkey, md string, rsaPKCS1 bool) (*signCtx, error) {
	var cmd *C.char
	if md != "" {
		cmd = C.CString(md)
		defer C.free(unsafe.Pointer(cmd))
	}
	pad := C.int(0)
	if rsaPKCS1 {
		pad = 1 // RSA_PKCS1_PADDING
	}
	c := C.cl_ctx(k.p, cmd, pad)
	if c == nil {
		return nil, lastError("signing context")
	}
	return &signCtx{c: c}, nil
}

func (s *signCtx) free() { C.cl_ctx_free(s.c) }

// sign signs tbs (a digest) into sig, which must be large enough, and
// returns the signature's length.
func (s *signCtx) sign(sig, tbs []byte) (int, error) {
	n := C.size_t(len(sig))
	if C.cl_sign(s.c, (*C.uchar)(unsafe.Pointer(&sig[0])), &n, (*C.uchar)(unsafe.Pointer(&tbs[0])), C.size_t(len(tbs))) <= 0 {
		return 0, lastError("sign")
	}
	return int(n), nil
}

// signFor signs tbs into sig in a loop in C for d, and counts the
// signatures.
func (s *signCtx) signFor(sig, tbs []byte, d time.Duration) (int64, error) {
	var n C.longlong
	if C.cl_sign_for(s.c, (*C.uchar)(unsafe.Pointer(&sig[0])), C.size_t(len(sig)), (*C.uchar)(unsafe.Pointer(&tbs[0])), C.size_t(len(tbs)),
		C.longlong(d.Nanoseconds()), &n) == 0 {
		return int64(n), lastError("sign")
	}
	return int64(n), nil
}
