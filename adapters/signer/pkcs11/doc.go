// Package pkcs11 signs with keys that never leave a hardware security
// module, through the PKCS#11 interface (github.com/miekg/pkcs11), and
// administers them for tsactl hsm.
//
// # Keys
//
// Open selects a token by its label (slot ids change between boots) and a
// private key by its CKA_LABEL or CKA_ID, logs in a pool of sessions with
// the PIN its caller read, and reads the public key back from the token.
// The Key is a crypto.Signer: ECDSA (CKM_ECDSA, answered in DER), RSA
// PKCS#1 v1.5 (CKM_RSA_PKCS over a DigestInfo) and PSS (CKM_RSA_PKCS_PSS),
// and pure Ed25519 (CKM_EDDSA over the message). Sign takes a session
// from the pool, waiting at most Config.Wait before ErrBusy.
//
//	key, err := pkcs11.Open(pkcs11.Config{Module: "/usr/lib/softhsm/libsofthsm2.so",
//		Token: "chronolog", KeyLabel: "tsa-2026", PIN: pin, Observe: record})
//
// A module is loaded once per process and initialised (C_Initialize)
// while at least one Key or administrative call uses it; the last Close
// finalises it. Login state belongs to the token and the process, not to
// a session: where another Key of the process is logged in to the token,
// the token does not check the PIN of the next one again.
//
// # Outages
//
// An error that means the session, the token or the device is gone
// (CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, CKR_OBJECT_HANDLE_INVALID,
// CKR_GENERAL_ERROR, CKR_CRYPTOKI_NOT_INITIALIZED, ...) makes the key
// unavailable: that Sign and every later one fail at once with
// ErrUnavailable, and Config.Observe hears of it once. A goroutine of the
// key reconnects at once and then backs off from 100ms to 5s: it finds
// the token by its label again, opens and logs in the sessions, finds the
// key, and refuses it if its public key is not the one opened (a key
// swapped under the same label must never sign). When the token cannot
// be found, the module is finalised and initialised anew before trying
// again, for some modules, SoftHSM2 among them, look for tokens only then.
// Other keys on the module lose their sessions with it; each that was
// usable is bound anew before the module is used again, so its Sign calls
// wait for that, and do not fail. Observe then hears that the key is back.
//
// # Outages SoftHSM2 2.6 can be made to have
//
// Two faults work, found by trying them against SoftHSM2 2.6.1:
//
//   - C_CloseAllSessions on the token's slot, in the signing process: the
//     next Sign fails with CKR_SESSION_HANDLE_INVALID (the token is logged
//     out too), and the key is back within milliseconds. SoftHSM2 frees a
//     session another thread is signing in, and crashes: inject it between
//     calls (the tests hold the module exclusively).
//
//   - Taking the token's directory away from under the token directory
//     (directories.tokendir), from any process, and putting it back. This
//     is what works against a separate process such as tsad. SoftHSM2
//     checks an object's file each time the object is used, so the next
//     Sign fails with CKR_OBJECT_HANDLE_INVALID and ErrUnavailable; the
//     token then stays unusable (C_GetTokenInfo answers CKR_GENERAL_ERROR)
//     and SoftHSM2 does not notice its return until it is initialised
//     anew, which the reconnection does on every attempt: the key signs
//     again at most 5s (the longest backoff) after the directory is back.
//     The directory must go outside the token directory (renamed inside
//     it, it is found again).
//
// softhsmtest.TokenDir finds a token's directory by its label, and
// softhsmtest.RemoveToken moves it away and back, as in
//
//	mv $TOKENDIR/<token-uuid> $TOKENDIR/../removed-<token-uuid>   # Sign: ErrUnavailable
//	mv $TOKENDIR/../removed-<token-uuid> $TOKENDIR/<token-uuid>   # Sign works again within 5s
//
// # Administration
//
// InitToken, GenerateKey, ImportCertificate and ListKeys each open the
// module, do one task in a session and close it. Keys are made on the
// token, sensitive, not extractable and for signing only, and what
// ListKeys and GenerateKey report is read back from the token. PINs are
// never written into an error.
package pkcs11
