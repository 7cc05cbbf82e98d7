/* remote_sign.h — the client side of ewtp-signer (signer/README.md): signs through the agent
 * over mutually authenticated TLS, for keys configured `remote` (keys.h, ewtp_keys_add_remote).
 *
 * One request per connection: POST /v1/sign {"key", "alg", "data"} -> {"signature"}. The whole
 * exchange (resolve, connect, handshake, request, answer) has timeout_ms; the agent's
 * certificate must chain to ca_file and name the URL's host (DNS name or IP address), and ours
 * is client_cert / client_key. Every failure (unreachable, refused, timed out, an answer other
 * than 200) is one return code, -EWTP_ECRYPTO, with a sentence for the log: the delivery that
 * asked is retried later, like any other transient failure.
 *
 * Threads: ewtp_remote_sign blocks (up to timeout_ms) and may run on any number of threads at
 * once; never call it on an event loop. The signer is immutable after ewtp_remote_signer_new.
 */
#ifndef EWTP_REMOTE_SIGN_H
#define EWTP_REMOTE_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>

struct ewtp_remote_conf {
    const char *url;         /* https://HOST:PORT (a path prefix may follow) */
    const char *key;         /* the key's name at the agent */
    const char *client_cert; /* PEM certificate (chain) we present */
    const char *client_key;  /* its PEM private key */
    const char *ca_file;     /* PEM CA(s) the agent's certificate must chain to */
    int64_t timeout_ms;      /* <= 0: 10000 */
};

struct ewtp_remote_signer;

/* Reads the certificates and key now, so that a wrong file fails the configuration, not the
 * first delivery. 0 and *out; -EWTP_EINVAL (bad URL), -EWTP_EIO / -EWTP_ECRYPTO (files) with
 * the reason in errs (code "key"). Nothing is sent. */
int ewtp_remote_signer_new(const struct ewtp_remote_conf *conf, struct ewtp_remote_signer **out,
                           struct ewtp_errors *errs);
void ewtp_remote_signer_free(struct ewtp_remote_signer *r); /* NULL is a no-op */

/* Signs len bytes under alg (the wire name: rsa-sha256, sm2-sm3, ...). 0 with the signature in
 * the arena, or -EWTP_ECRYPTO (-EWTP_ENOMEM) with a short reason in why[why_size]. */
int ewtp_remote_sign(struct ewtp_remote_signer *r, const char *alg, const void *data, size_t len,
                     struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len, char *why,
                     size_t why_size);

#endif
