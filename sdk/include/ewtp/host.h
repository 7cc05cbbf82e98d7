/* ewtp/host.h — what the host (ewtpd, ewtpctl, the vector runner) offers a plugin.
 *
 * create() receives a const struct ewtp_host *. The table is size-versioned and
 * append-only: its first member is its size, functions are only ever added at the end, and
 * a plugin checks EWTP_HOST_HAS(h, member) before using anything added after minor 0 (the
 * growth rule is in ewtp/abi.h). abi_major/abi_minor are the host's ABI version: a plugin
 * never runs on a host whose minor is older than its own, and may use h->abi_minor to learn
 * which newer members and functions it may rely on (EWTP_HAS still decides per member).
 * Every function may be called from any thread, concurrently. The plugin never sees key
 * material: it names a key (a setting of its instance) and the host signs.
 *
 * History (append a line with every change):
 *   1.0  size, abi_major, abi_minor, ctx, log, read_secret, sign, cert, random
 *   1.3  sign: EWTP_SIGN_RSA_SHA512 (a plugin checks h->abi_minor >= 3 before asking for it)
 *   1.7  instance_mac: HMAC-SHA256 under the gateway's own secret (ids no other party can guess)
 */
#ifndef EWTP_HOST_H
#define EWTP_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <ewtp/abi.h>
#include <ewtp/arena.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ewtp_log_level {
    EWTP_LOG_ERR = 3,
    EWTP_LOG_WARNING = 4,
    EWTP_LOG_INFO = 6,
    EWTP_LOG_DEBUG = 7
};

/* Signature algorithms the host's signer knows. The input is the data to sign; the host
 * hashes it (digest-then-sign), so the plugin passes canonical SignedInfo bytes. */
enum ewtp_sign_alg {
    EWTP_SIGN_RSA_SHA1 = 1,     /* RSASSA-PKCS1-v1_5 with SHA-1 (older GACC profile) */
    EWTP_SIGN_RSA_SHA256 = 2,   /* RSASSA-PKCS1-v1_5 with SHA-256 */
    EWTP_SIGN_SM2_SM3 = 3,      /* SM2 with SM3, default distinguishing id "1234567812345678",
                                   DER-encoded (r,s) as OpenSSL produces */
    EWTP_SIGN_ECDSA_SHA256 = 4, /* ECDSA P-256 with SHA-256, DER-encoded (r,s) */
    EWTP_SIGN_RSA_SHA512 = 5,   /* 1.3: RSASSA-PKCS1-v1_5 with SHA-512 (Ethiopia EIMS) */
};

struct ewtp_host {
    size_t size;        /* sizeof the table the host built; see EWTP_HOST_HAS */
    uint32_t abi_major; /* the host's EWTP_ABI_MAJOR */
    uint32_t abi_minor; /* the host's EWTP_ABI_MINOR (never older than the plugin's) */
    void *ctx;          /* the host's own pointer, passed back to every function */

    /* A log line for the hub admin. The host redacts personal data it recognises (ID
     * numbers, phone numbers); plugins still never log names or ids on purpose. */
    void (*log)(void *ctx, enum ewtp_log_level level, const char *plugin, const char *msg);
    /* Reads a secret (a file path from the instance's settings, or a systemd credential
     * name) into the arena: 0 and *data, *len (NUL-terminated), or -EWTP_ENOTFOUND/-EWTP_EIO. */
    int (*read_secret)(void *ctx, const char *name, struct ewtp_arena *a, const char **data,
                       size_t *len);
    /* Signs data with the named key: 0 and the signature in the arena, or -EWTP_ENOTFOUND
     * (no such key), -EWTP_EUNSUPP (key does not do alg), -EWTP_ECRYPTO. */
    int (*sign)(void *ctx, const char *key_name, enum ewtp_sign_alg alg, const void *data,
                size_t len, struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len);
    /* The named key's certificate (DER) in the arena, or -EWTP_ENOTFOUND. */
    int (*cert)(void *ctx, const char *key_name, struct ewtp_arena *a, const unsigned char **der,
                size_t *der_len);
    /* Cryptographically random bytes (UUID v4, nonces). 0 or -EWTP_ECRYPTO. */
    int (*random)(void *ctx, void *buf, size_t len);
    /* 1.7 (EWTP_HOST_HAS(h, instance_mac)): HMAC-SHA256 of data under a key only this gateway
     * holds (from its instance secret: generated once, kept in the store, the same on every
     * node and after every restart), for ids that must be stable per message yet unguessable
     * by anyone else, other tenants included (China's default copNo). The plugin puts its own
     * name, the tenant and the message id into data. 0 and out; -EWTP_ENOTFOUND when the host
     * has no instance secret (ewtpctl translate offline): the plugin then uses its public
     * derivation, fit for golden vectors only. */
    int (*instance_mac)(void *ctx, const void *data, size_t len, unsigned char out[32]);
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi): a function a later minor appends */
    int (*abi_test_grown)(void *ctx);
#endif
};
/* Hosts: EWTP_HOST_INIT(.ctx = ..., .log = ...) sets size and the version. */
#define EWTP_HOST_INIT(...)                                                                        \
    {                                                                                              \
        .size = sizeof(struct ewtp_host), .abi_major = EWTP_ABI_MAJOR,                             \
        .abi_minor = EWTP_ABI_MINOR, __VA_ARGS__                                                   \
    }

#define EWTP_HOST_HAS(h, member) (EWTP_HAS(h, struct ewtp_host, member) && (h)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif
