/* gen.h — a generation: one configuration with its loaded plugins and created instances.
 *
 * ewtp_gen_build() does everything a reload needs *off the event loop*: load and check the
 * configuration, load the keys, dlopen every plugin (content-named copies under
 * <state_dir>/plugins, loader.h) and create every instance with its settings. Any failure
 * drops the whole new generation and says why (file, line, reason). The result is immutable
 * and reference counted: each request and each delivery takes a reference at its start and
 * drops it at its end; the last unref destroys instances, then unloads plugins.
 * Thread-safe.
 */
#ifndef EWTP_GEN_H
#define EWTP_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include <ewtp/plugin.h>

#include "config.h"
#include "loader.h"

struct ewtp_gen;

/* One created instance of the generation. */
struct ewtp_gen_instance {
    const struct ewtp_instance_conf *conf;
    struct ewtp_instance *inst;       /* ewtp_instance_plugin() / _state() for callbacks */
    const struct ewtp_plugin *plugin; /* shortcut */
};

/* Builds generation number id from the file. 0 and *out (one reference), or a negative code
 * with every reason in why. */
int ewtp_gen_build(const char *config_path, uint64_t id, struct ewtp_gen **out,
                   struct ewtp_errors *why);
/* The same with the clock fixed at now_ms (0: the real clock): signing keys with a successor
 * (keys[].next) use it when now_ms >= its from. Tests. */
int ewtp_gen_build_at(const char *config_path, uint64_t id, int64_t now_ms, struct ewtp_gen **out,
                      struct ewtp_errors *why);
void ewtp_gen_ref(struct ewtp_gen *g);
void ewtp_gen_unref(struct ewtp_gen *g);

uint64_t ewtp_gen_id(const struct ewtp_gen *g);
/* References held right now (for drain reporting; changes concurrently). */
size_t ewtp_gen_users(const struct ewtp_gen *g);
const struct ewtp_config *ewtp_gen_config(const struct ewtp_gen *g);
/* Every certificate the configuration names, with its expiry and successor (certs.h). */
struct ewtp_certs;
const struct ewtp_certs *ewtp_gen_certs(const struct ewtp_gen *g);
/* The host table plugins of this generation got (keys of this configuration). */
const struct ewtp_host *ewtp_gen_host(const struct ewtp_gen *g);
/* Destination codes the loaded plugins serve (for ewtp_parse_opts), NULL-terminated. */
const char *const *ewtp_gen_destinations(const struct ewtp_gen *g);

size_t ewtp_gen_instance_count(const struct ewtp_gen *g);
const struct ewtp_gen_instance *ewtp_gen_instance_at(const struct ewtp_gen *g, size_t i);
const struct ewtp_gen_instance *ewtp_gen_instance(const struct ewtp_gen *g, const char *name);

/* The instance the routes give (tenant, destination, kind): first matching route wins.
 * NULL when no route matches or the tenant may not use that destination/kind. */
const struct ewtp_gen_instance *ewtp_gen_route(const struct ewtp_gen *g, const char *tenant,
                                               const char *destination, enum ewtp_kind kind);
/* The tenant owning a bearer token (compared as SHA-256, in constant time), or NULL. */
const struct ewtp_tenant_conf *ewtp_gen_tenant_by_token(const struct ewtp_gen *g,
                                                        const char *token);
/* The tenant whose cert_subject equals the client certificate's subject, or NULL. */
const struct ewtp_tenant_conf *ewtp_gen_tenant_by_subject(const struct ewtp_gen *g,
                                                          const char *subject);
/* Whether the client certificate cert (with the chain the client sent, may be NULL) verifies
 * to tenant t's own cert_ca_file (issue 19): a certificate with t's subject issued by any other
 * CA, even one a listener trusts, does not authenticate t. */
bool ewtp_gen_tenant_cert_trusted(const struct ewtp_gen *g, const struct ewtp_tenant_conf *t,
                                  X509 *cert, STACK_OF(X509) * chain);

#endif
