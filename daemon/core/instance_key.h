/* instance_key.h — this process's copy of the gateway's instance secret, for keyed derivations
 * of layers that cannot reach the store (the host functions plugins call: ABI 1.7
 * ewtp_host.instance_mac).
 *
 * The secret itself is generated once and kept durably by the store (store.h
 * ewtp_store_instance_key); the delivery layer copies it here when it starts, before any plugin
 * translates. A process that never opened a store (ewtpctl translate, the vector runner) has
 * none: derivations then answer -EWTP_ENOTFOUND and plugins fall back to their public,
 * offline derivation, which is for golden vectors only.
 *
 * Each use keys HMAC-SHA256 with a key of its own, HMAC(secret, purpose), so that one
 * purpose's outputs say nothing about another's. Thread-safe. */
#ifndef EWTP_INSTANCE_KEY_H
#define EWTP_INSTANCE_KEY_H

#include <stdbool.h>
#include <stddef.h>

/* Keeps a copy of the 32-byte secret (replacing any earlier one). */
void ewtp_instance_key_set(const unsigned char key[32]);
/* Forgets it (wiped). */
void ewtp_instance_key_clear(void);
/* Whether a secret is set. */
bool ewtp_instance_key_known(void);
/* HMAC-SHA256(HMAC-SHA256(secret, purpose), data) into out: 0, -EWTP_ENOTFOUND (no secret in
 * this process), -EWTP_EINVAL, -EWTP_ECRYPTO. */
int ewtp_instance_mac(const char *purpose, const void *data, size_t len, unsigned char out[32]);
/* The same under a secret given by the caller (the API's cursors hold the store's). */
int ewtp_instance_mac_with(const unsigned char key[32], const char *purpose, const void *data,
                           size_t len, unsigned char out[32]);

#endif
