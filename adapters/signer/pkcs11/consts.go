package pkcs11

// PKCS#11 v3.0 (OASIS, 2020) added Edwards-curve keys, after
// miekg/pkcs11 v1.1.2 was cut; the values are those of its pkcs11t.h.
const (
	ckkECEdwards           = 0x00000040 // CKK_EC_EDWARDS, §2.3.5
	ckmECEdwardsKeyPairGen = 0x00001055 // CKM_EC_EDWARDS_KEY_PAIR_GEN, §2.3.6
	ckmEdDSA               = 0x00001057 // CKM_EDDSA, §2.3.14
)
