/* hostctx.h — the host function table (ewtp/host.h) that ewtpd and ewtpctl give plugins.
 *
 * log: to stderr (journald in ewtpd) with personal data redacted (ewtp_redact, util.h);
 * read_secret: a file path, or a systemd credential name under $CREDENTIALS_DIRECTORY;
 * sign / cert: the key store (keys.h): configured PEM keys and external signer commands,
 * and, when test identities are allowed (ewtpctl without --config), a clearly marked
 * ephemeral test identity created on first use for any key name not configured;
 * random: OpenSSL's CSPRNG; instance_mac (1.7): HMAC under the process's copy of the instance
 * secret (instance_key.h; -EWTP_ENOTFOUND in a process that opened no store). Thread-safe. */
#ifndef EWTP_HOSTCTX_H
#define EWTP_HOSTCTX_H

#include <stdbool.h>
#include <stdint.h>

#include <ewtp/host.h>
#include <ewtp/plugin.h>

struct ewtp_hostctx;

/* New context; caller frees. NULL when out of memory. */
struct ewtp_hostctx *ewtp_hostctx_new(bool test_identities);
void ewtp_hostctx_free(struct ewtp_hostctx *h);
/* Adds a signing key: PEM private key + certificate files, or an external signer command
 * (then cert names its certificate file). 0, or a negative code and *why (malloc'd). */
int ewtp_hostctx_add_key(struct ewtp_hostctx *h, const char *name, const char *key_file,
                         const char *cert_file, const char *command, char **why);
/* Relative secret paths a plugin names (a setting such as token_file = "secrets/t") are
 * resolved against dir: the directory of the configuration file they came from. Copied. */
int ewtp_hostctx_set_base_dir(struct ewtp_hostctx *h, const char *dir);
/* path resolved against the base directory (absolute paths unchanged); malloc'd. */
char *ewtp_hostctx_resolve(const struct ewtp_hostctx *h, const char *path);
/* Adds a key held by an ewtp-signer agent (config.h keys[].remote) with the certificate of
 * cert_file, the key's cert. 0, or a negative code and *why (malloc'd). Nothing is sent. */
struct ewtp_key_remote_conf;
int ewtp_hostctx_add_remote_key(struct ewtp_hostctx *h, const char *name,
                                const struct ewtp_key_remote_conf *remote, const char *cert_file,
                                char **why);

/* The table to pass to plugins; borrowed while h lives. */
const struct ewtp_host *ewtp_hostctx_table(struct ewtp_hostctx *h);

/* Every struct ewtp_call of ewtpd and ewtpctl starts here: zeroed and sized, with the host's
 * table, the arena, the clock, tenant, instance (either NULL offline), message and operation.
 * attempt is what plugin.h defines: the delivery attempt the call is for, 1 for the first —
 * so also 1 before any delivery (checks at accept, a login, offline runs). attempts_started
 * is the store's count (a claim counts one; 0 before the first claim). The caller adds what
 * only it knows (related messages, chain, key state, cancel reason, authority reference). */
void ewtp_call_init(struct ewtp_call *c, const struct ewtp_host *host, struct ewtp_arena *arena,
                    int64_t now_ms, const char *tenant, const char *instance,
                    const struct ewtp_message *m, enum ewtp_op op, uint32_t attempts_started);

#endif
