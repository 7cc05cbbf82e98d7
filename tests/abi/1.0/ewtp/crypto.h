/* ewtp/crypto.h — digests, hex, Base64 and UUIDs for plugins.
 *
 * Everything here is pure: no global state, no I/O, thread-safe. Randomness comes from the
 * host (struct ewtp_host.random) or from the caller; the SDK never seeds or keeps a
 * generator of its own. Results that have a variable size are allocated in the caller's
 * arena (see ewtp/arena.h) and live until it is freed.
 */
#ifndef EWTP_CRYPTO_H
#define EWTP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/host.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Digests ---------------------------------------------------------------------------- */

enum ewtp_digest_alg {
    EWTP_DIGEST_SHA1 = 1,   /* 20 bytes; only where an authority still demands it */
    EWTP_DIGEST_SHA256 = 2, /* 32 bytes */
    EWTP_DIGEST_SM3 = 3,    /* 32 bytes, GB/T 32905 (China) */
};

/* Size of a buffer that holds any digest this header knows. */
#define EWTP_DIGEST_MAX 64

/* Digest size in bytes, or 0 for an unknown algorithm. */
size_t ewtp_digest_size(enum ewtp_digest_alg alg);
/* Hashes len bytes of data into out (at least EWTP_DIGEST_MAX bytes) and sets *out_len.
 * Returns 0, -EWTP_EINVAL (unknown alg, NULL out) or -EWTP_EUNSUPP (the OpenSSL build lacks
 * the algorithm, e.g. SM3 disabled). data may be NULL when len is 0. */
int ewtp_digest(enum ewtp_digest_alg alg, const void *data, size_t len, unsigned char *out,
                size_t *out_len);

/* ---- Hex -------------------------------------------------------------------------------- */

/* Lowercase hex of len bytes, NUL-terminated, in the arena; NULL when out of memory. */
char *ewtp_hex_encode(struct ewtp_arena *a, const void *data, size_t len);
/* Decodes exactly len characters of hex (either case, even count, nothing else) into the
 * arena. Returns 0, -EWTP_EFORMAT or -EWTP_ENOMEM. */
int ewtp_hex_decode(struct ewtp_arena *a, const char *text, size_t len, unsigned char **out,
                    size_t *out_len);

/* ---- Base64 (RFC 4648) ------------------------------------------------------------------ */

/* Flags for ewtp_base64_encode_ex and ewtp_base64_decode. */
#define EWTP_BASE64_URL                                                                            \
    0x1u /* "-_" alphabet (RFC 4648 §5); encode writes no padding,                                \
            decode accepts it with or without */
#define EWTP_BASE64_ALLOW_WS                                                                       \
    0x2u /* decode: skip CR, LF, space and tab anywhere (XML-DSig and                              \
            MIME text wraps lines) */

/* Standard alphabet with padding, no line breaks, NUL-terminated, in the arena. NULL when out
 * of memory. */
char *ewtp_base64_encode(struct ewtp_arena *a, const void *data, size_t len);
/* Same, with flags (EWTP_BASE64_URL) and a line break ("\n") after every line_len output
 * characters when line_len > 0 (76 is the MIME and XML-DSig habit); no break at the end. */
char *ewtp_base64_encode_ex(struct ewtp_arena *a, const void *data, size_t len, unsigned flags,
                            size_t line_len);
/* Strict decode of len characters: only the alphabet, correct padding ('=' only at the end,
 * total length a multiple of 4 unless EWTP_BASE64_URL), unused bits of the last character
 * zero. Whitespace only with EWTP_BASE64_ALLOW_WS. The result is NUL-terminated (not counted
 * in *out_len) in the arena. Returns 0, -EWTP_EFORMAT or -EWTP_ENOMEM. */
int ewtp_base64_decode(struct ewtp_arena *a, const char *text, size_t len, unsigned flags,
                       unsigned char **out, size_t *out_len);

/* ---- UUIDs (RFC 4122) ------------------------------------------------------------------- */

/* Buffer size for the text form: 36 characters and a NUL. */
#define EWTP_UUID_STRLEN 37

/* Standard namespaces (RFC 4122 appendix C) and ours, as 16 bytes in network order. */
extern const unsigned char ewtp_uuid_ns_dns[16];  /* 6ba7b810-9dad-11d1-80b4-00c04fd430c8 */
extern const unsigned char ewtp_uuid_ns_url[16];  /* 6ba7b811-9dad-11d1-80b4-00c04fd430c8 */
extern const unsigned char ewtp_uuid_ns_oid[16];  /* 6ba7b812-9dad-11d1-80b4-00c04fd430c8 */
extern const unsigned char ewtp_uuid_ns_x500[16]; /* 6ba7b814-9dad-11d1-80b4-00c04fd430c8 */
/* ewtp's namespace for deterministic ids (e.g. one authority document id per message id and
 * document kind): uuid5(URL, "urn:ewtp:uuid-namespace") =
 * beb6c14b-2764-5ecf-8d12-e63427f8c96a. Never changes (ids derived from it are stored). */
extern const unsigned char ewtp_uuid_ns_ewtp[16];
#define EWTP_UUID_NS_DNS ewtp_uuid_ns_dns
#define EWTP_UUID_NS_URL ewtp_uuid_ns_url
#define EWTP_UUID_NS_OID ewtp_uuid_ns_oid
#define EWTP_UUID_NS_X500 ewtp_uuid_ns_x500
#define EWTP_UUID_NS_EWTP ewtp_uuid_ns_ewtp

/* Writes the canonical lowercase text form of 16 bytes ("xxxxxxxx-xxxx-..."). */
void ewtp_uuid_format(const unsigned char uuid[16], char out[EWTP_UUID_STRLEN]);
/* Parses the 36-character text form (either case; no braces, no "urn:uuid:").
 * Returns 0 or -EWTP_EFORMAT. */
int ewtp_uuid_parse(const char *text, unsigned char out[16]);
/* Version 4 from 16 caller-supplied random bytes (the version and variant bits are set). */
void ewtp_uuid_v4_from(const unsigned char random[16], char out[EWTP_UUID_STRLEN]);
/* Version 4 with 16 bytes from host->random. Returns 0, -EWTP_EUNSUPP (the host has no
 * random function) or the host's error. */
int ewtp_uuid_v4(const struct ewtp_host *host, char out[EWTP_UUID_STRLEN]);
/* Version 5: SHA-1 over the namespace bytes followed by len bytes of name. Deterministic.
 * Returns 0, or -EWTP_EINVAL for NULL arguments. */
int ewtp_uuid_v5(const unsigned char ns[16], const void *name, size_t len,
                 char out[EWTP_UUID_STRLEN]);

/* ---- Signature verification ------------------------------------------------------------ */

/* Verifies sig over data with the public key of a DER X.509 certificate, the way the host's
 * sign() made it (enum ewtp_sign_alg in ewtp/host.h: the data is hashed here, RSA is
 * PKCS#1 v1.5, SM2 uses the default id, SM2/ECDSA signatures are DER (r,s)). For authority
 * simulators and tests, which must check what a plugin signed. Returns 0 when the signature
 * verifies, -EWTP_ECRYPTO when it does not, -EWTP_EFORMAT when cert_der is not a
 * certificate, -EWTP_EUNSUPP when its key does not fit alg (an RSA algorithm with an EC key)
 * or the build lacks the algorithm, -EWTP_EINVAL for NULL arguments. */
int ewtp_sig_verify(const unsigned char *cert_der, size_t cert_len, enum ewtp_sign_alg alg,
                    const void *data, size_t len, const unsigned char *sig, size_t sig_len);

#ifdef __cplusplus
}
#endif
#endif
