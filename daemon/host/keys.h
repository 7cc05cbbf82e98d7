/* keys.h — the host's key store: software keys, test identities, external signers.
 *
 * Holds named signing keys for the host's sign/cert functions (ewtp/host.h); plugins name a
 * key, never see it. Three kinds of key:
 *   - a PEM private key file plus its PEM certificate (RSA, SM2 or EC P-256; an EC key on the
 *     SM2 curve is treated as SM2);
 *   - an ephemeral test identity (RSA 2048, SM2 or EC P-256) generated in memory with a
 *     self-signed certificate whose subject is "CN=ewtp TEST identity - not for production";
 *     it disappears with the store and must never sign anything sent to an authority;
 *   - an external signer command, for IC cards and USB tokens: run with /bin/sh -c, it gets
 *     the bytes to sign on stdin and the environment EWTP_KEY_NAME=<name> and
 *     EWTP_SIGN_ALG=rsa-sha1|rsa-sha256|sm2-sm3|ecdsa-sha256, and must print the signature
 *     (raw bytes, or Base64 with EWTP_KEYS_CMD_BASE64) on stdout and exit 0 within the
 *     timeout (it is killed otherwise). Its certificate comes from a PEM file;
 *   - a remote key held by ewtp-signer (remote_sign.h): signed over mutually authenticated
 *     TLS, blocking up to its timeout (so only from worker threads, never an event loop); a
 *     signer that is down or refuses gives -EWTP_ECRYPTO, logged with its reason, and the
 *     delivery is retried. Its certificate comes from a PEM file.
 * Signatures: RSASSA-PKCS1-v1_5; ECDSA and SM2 DER-encoded (r,s); SM2 with SM3 and the
 * distinguishing id "1234567812345678" (GM/T 0009 default).
 *
 * Threads: every function may be called from any thread at any time (a mutex guards the
 * list; keys are immutable once added and live until ewtp_keys_free). Signing runs outside
 * the lock. The store is host code (links OpenSSL); plugins reach it only through the host
 * table: h.ctx = store, h.sign = ewtp_keys_sign, h.cert = ewtp_keys_cert,
 * h.random = ewtp_keys_random.
 */
#ifndef EWTP_KEYS_H
#define EWTP_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/host.h>

#include "remote_sign.h"

struct ewtp_keys;

enum ewtp_key_family {
    EWTP_KEY_RSA = 1, /* RSA 2048 for test identities */
    EWTP_KEY_SM2 = 2, /* SM2 (256-bit, China) */
    EWTP_KEY_EC_P256 = 3,
};

#define EWTP_KEYS_TEST_SUBJECT "ewtp TEST identity - not for production"
/* Flags of ewtp_keys_add_command. */
#define EWTP_KEYS_CMD_BASE64 0x1u /* the command prints Base64 (whitespace ignored) */

/* New empty store; caller frees with ewtp_keys_free. NULL when out of memory. */
struct ewtp_keys *ewtp_keys_new(void);
void ewtp_keys_free(struct ewtp_keys *k); /* NULL is a no-op */

/* Adds a key from PEM files (private key unencrypted; certificate matching it). Returns 0,
 * -EWTP_EINVAL (name taken or empty), -EWTP_EIO (cannot read a file), -EWTP_ECRYPTO (not a
 * key/certificate, or they do not match), -EWTP_EUNSUPP (key type). The reason is appended to
 * errs (may be NULL) with code "key". */
int ewtp_keys_add_pem(struct ewtp_keys *k, const char *name, const char *key_file,
                      const char *cert_file, struct ewtp_errors *errs);
/* Generates a test identity. 0, -EWTP_EINVAL (name taken, unknown family), -EWTP_ECRYPTO. */
int ewtp_keys_add_test(struct ewtp_keys *k, const char *name, enum ewtp_key_family family);
/* Adds an external signer. cert_file may be NULL (then ewtp_keys_cert is -EWTP_ENOTFOUND);
 * timeout_ms <= 0 means 30000. 0, -EWTP_EINVAL, -EWTP_EIO, -EWTP_ECRYPTO (errors as above). */
int ewtp_keys_add_command(struct ewtp_keys *k, const char *name, const char *command,
                          const char *cert_file, int64_t timeout_ms, unsigned flags,
                          struct ewtp_errors *errs);
/* Adds a key held by ewtp-signer: signed remotely as remote says, with the certificate of
 * cert_file (required: it names the family). 0, -EWTP_EINVAL, -EWTP_EIO, -EWTP_ECRYPTO,
 * -EWTP_EUNSUPP (errors as above). Nothing is sent until the first signature. */
int ewtp_keys_add_remote(struct ewtp_keys *k, const char *name,
                         const struct ewtp_remote_conf *remote, const char *cert_file,
                         struct ewtp_errors *errs);
/* When on, signing or asking the certificate of a name that is not in the store creates a
 * test identity under that name on first use: the family follows the algorithm asked
 * (RSA for cert() of an unknown name), so callers sign before they ask the certificate, as
 * ewtp_dsig_sign does. Off by default; only for `ewtpctl` offline runs and tests. */
void ewtp_keys_set_auto_test(struct ewtp_keys *k, bool on);
/* True when the named key exists and is a test identity. */
bool ewtp_keys_is_test(struct ewtp_keys *k, const char *name);

/* host.h's sign: ctx is the store. 0 and the signature in the arena; -EWTP_ENOTFOUND,
 * -EWTP_EUNSUPP (alg does not fit the key), -EWTP_ECRYPTO (OpenSSL or command failure,
 * timeout). */
int ewtp_keys_sign(void *ctx, const char *key_name, enum ewtp_sign_alg alg, const void *data,
                   size_t len, struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len);
/* host.h's cert: the certificate DER in the arena, or -EWTP_ENOTFOUND. */
int ewtp_keys_cert(void *ctx, const char *key_name, struct ewtp_arena *a, const unsigned char **der,
                   size_t *der_len);
/* host.h's random: OpenSSL's CSPRNG (ctx unused). 0 or -EWTP_ECRYPTO. */
int ewtp_keys_random(void *ctx, void *buf, size_t len);
/* Writes the named key's certificate as PEM to path (mode 0644), e.g. to hand a test
 * identity's certificate to a verifier. 0, -EWTP_ENOTFOUND, -EWTP_EIO. */
int ewtp_keys_write_cert_pem(struct ewtp_keys *k, const char *name, const char *path);

/* An EC key on the SM2 curve, as some PEM files and certificates decode, rebuilt as an SM2
 * key so that signing uses SM2 rather than ECDSA; any other key as it is. selection is
 * EVP_PKEY_KEYPAIR or EVP_PKEY_PUBLIC_KEY. A new reference (caller frees), or NULL. Also used
 * by ewtp-signer for its key files. */
EVP_PKEY *ewtp_keys_as_sm2(EVP_PKEY *k, int selection);

#endif
