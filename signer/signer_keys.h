/* signer_keys.h — the keys ewtp-signer holds and signs with.
 *
 * Three sources of a key, each named in the configuration (signer_conf.h):
 *   - PKCS#11 (an HSM, a USB token, SoftHSM2) through libp11: module path, the token by label
 *     or slot id, the private key by label and/or id, the user PIN read from a file; RSA and
 *     EC P-256 keys (SM2 is not offered by libp11's key methods: use a key file or a command);
 *   - a PEM private key file (RSA, EC P-256 or SM2; an EC key on the SM2 curve is SM2);
 *   - an external command (IC cards, vendor tools) run through the host's key store
 *     (daemon/host/keys.h, ewtp_keys_add_command): the bytes on stdin, EWTP_KEY_NAME and
 *     EWTP_SIGN_ALG in the environment, the signature on stdout.
 * Private keys never leave this module: callers get signatures only.
 *
 * Algorithms are the host's (ewtp/host.h) by their wire names: rsa-sha1, rsa-sha256,
 * rsa-sha512 (RSASSA-PKCS1-v1_5), ecdsa-sha256 (DER r,s), sm2-sm3 (DER r,s, distinguishing id
 * "1234567812345678"). The agent hashes: callers send the bytes to sign, not a digest, since
 * SM2's digest covers the key's Z value and only the key holder can compute it in one place.
 *
 * Threads: signer_keys_sign may be called from any thread at once; a PKCS#11 key is used by
 * one thread at a time (tokens are slow and libp11's sessions are per slot), the others wait
 * on its mutex. Keys are immutable after signer_keys_load.
 */
#ifndef EWTP_SIGNER_KEYS_H
#define EWTP_SIGNER_KEYS_H

#include <stddef.h>

#include "signer_conf.h"

struct signer_keys;

/* Outcome of a signing request, each mapped to one HTTP status by the server. */
enum signer_sign_rc {
    SIGNER_SIGNED = 0,
    SIGNER_NO_KEY = 1,      /* no such key */
    SIGNER_BAD_ALG = 2,     /* unknown algorithm, or one that does not fit the key */
    SIGNER_SIGN_FAILED = 3, /* the token, the library or the command failed */
    SIGNER_OUT_OF_MEMORY = 4,
};

/* Opens every configured key (loads PKCS#11 modules, logs in, finds the keys; reads key
 * files; registers commands). 0 and *out, or -1 with one sentence per problem written to
 * stderr (every key is tried, so one run names every problem). */
int signer_keys_load(const struct signer_conf *conf, struct signer_keys **out);
void signer_keys_free(struct signer_keys *k); /* NULL is a no-op; logs out and unloads */

/* Signs len bytes of data with key name under alg (wire name). On SIGNER_SIGNED, *sig is
 * malloc'd (caller frees) and *sig_len its length. *why (may be NULL) gets a short static
 * reason on failure, for the log; it never holds key material or data. */
enum signer_sign_rc signer_keys_sign(struct signer_keys *k, const char *name, const char *alg,
                                     const void *data, size_t len, unsigned char **sig,
                                     size_t *sig_len, const char **why);

#endif
