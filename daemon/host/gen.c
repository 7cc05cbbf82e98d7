/* Generations: a configuration with its keys, loaded plugins and created instances.
 *
 * Built whole off the event loop and then only read; the refcount is the one thing that
 * changes, so any thread may use a generation it holds a reference on. */
#include "gen.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "hostctx.h"
#include "util.h"

struct ewtp_gen {
    atomic_size_t refs;
    uint64_t id;
    struct ewtp_config *conf;
    struct ewtp_hostctx *host;
    /* Every configured certificate (certs.h), and the clock signing keys were chosen by. */
    struct ewtp_certs *certs;
    int64_t built_ms;
    struct ewtp_plugin_handle **handles; /* one per distinct plugin file */
    size_t n_handles;
    struct ewtp_gen_instance *instances; /* parallel to conf->instances */
    size_t n_instances;
    const char **destinations; /* NULL-terminated; strings borrowed from the descriptors */
    /* Per tenant (parallel to conf->tenants): the store of its cert_ca_file, NULL without. */
    X509_STORE **tenant_ca;
};

/* "FILE:LINE: " (or "FILE: " when the setting is not in the file) into buf. */
static const char *where(const struct ewtp_config *c, const char *setting, char *buf, size_t size)
{
    unsigned line = ewtp_config_line(c, setting);
    if (line > 0)
        snprintf(buf, size, "%s:%u: ", c->path, line);
    else
        snprintf(buf, size, "%s: ", c->path);
    return buf;
}

/* mkdir -p with mode 0750 (the plugin cache holds code the daemon runs). */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0750) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static void destroy(struct ewtp_gen *g)
{
    /* Instances before the handles they came from, handles (dlclose) before the host table
     * the plugins may still point at, the configuration last. */
    for (size_t i = 0; i < g->n_instances; i++)
        ewtp_instance_unref(g->instances[i].inst);
    free(g->instances);
    for (size_t i = 0; i < g->n_handles; i++)
        ewtp_plugin_unref(g->handles[i]);
    free(g->handles);
    ewtp_hostctx_free(g->host);
    ewtp_certs_free(g->certs);
    for (size_t i = 0; g->tenant_ca && i < g->conf->n_tenants; i++)
        X509_STORE_free(g->tenant_ca[i]);
    free(g->tenant_ca);
    ewtp_config_free(g->conf);
    free(g->destinations);
    free(g);
}

/* Each certificate tenant's own CA (issue 19), loaded once per generation. */
static int load_tenant_cas(struct ewtp_gen *g, struct ewtp_errors *why)
{
    const struct ewtp_config *c = g->conf;
    g->tenant_ca = calloc(c->n_tenants ? c->n_tenants : 1, sizeof(*g->tenant_ca));
    if (g->tenant_ca == NULL)
        return -EWTP_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < c->n_tenants; i++) {
        const struct ewtp_tenant_conf *t = &c->tenants[i];
        if (t->cert_ca_file == NULL)
            continue;
        X509_STORE *st = X509_STORE_new();
        if (st == NULL || X509_STORE_load_file(st, t->cert_ca_file) != 1) {
            X509_STORE_free(st);
            char buf[512], setting[64];
            snprintf(setting, sizeof(setting), "tenants[%zu]", i);
            ewtp_errors_add(why, "", "config", "%s%s.cert_ca_file: %s holds no PEM certificate",
                            where(c, setting, buf, sizeof(buf)), setting, t->cert_ca_file);
            rc = -EWTP_EINVAL;
            continue;
        }
        g->tenant_ca[i] = st;
    }
    return rc;
}

bool ewtp_gen_tenant_cert_trusted(const struct ewtp_gen *g, const struct ewtp_tenant_conf *t,
                                  X509 *cert, STACK_OF(X509) * chain)
{
    size_t i = (size_t)(t - g->conf->tenants);
    if (cert == NULL || i >= g->conf->n_tenants || g->tenant_ca == NULL || !g->tenant_ca[i])
        return false;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok = ctx && X509_STORE_CTX_init(ctx, g->tenant_ca[i], cert, chain) == 1 &&
              X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1 &&
              X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    return ok;
}

static int load_keys(struct ewtp_gen *g, struct ewtp_errors *why)
{
    const struct ewtp_config *c = g->conf;
    int rc = 0;
    for (size_t i = 0; i < c->n_keys; i++) {
        const struct ewtp_key_conf *k = &c->keys[i];
        char *sentence = NULL;
        /* A successor configured beside the key signs from its from on. The choice is made
         * once per generation, so that a signature and the certificate sent with it always
         * come from one key; certwatch.h rebuilds the generation when from comes. */
        bool next = k->next && g->built_ms >= k->next->from_ms;
        int r;
        if (k->remote != NULL) /* held by an ewtp-signer agent */
            r = ewtp_hostctx_add_remote_key(g->host, k->name, k->remote, k->cert_file, &sentence);
        else
            r = ewtp_hostctx_add_key(g->host, k->name, next ? k->next->key_file : k->key_file,
                                     next ? k->next->cert_file : k->cert_file, k->command,
                                     &sentence);
        if (r != 0) {
            char setting[64], w[4200];
            snprintf(setting, sizeof(setting), "keys[%zu]", i);
            ewtp_errors_add(why, "/keys", "config", "%s%s (%s): %s",
                            where(c, setting, w, sizeof(w)), setting, k->name,
                            sentence ? sentence : ewtp_strerror(r));
            free(sentence);
            rc = r;
        }
    }
    return rc;
}

/* The handle of file, loading it on first use. NULL with the reason in why. */
static struct ewtp_plugin_handle *handle_for(struct ewtp_gen *g, size_t i, const char *cache,
                                             struct ewtp_errors *why)
{
    const struct ewtp_config *c = g->conf;
    const struct ewtp_instance_conf *in = &c->instances[i];
    for (size_t j = 0; j < g->n_handles; j++)
        if (strcmp(ewtp_plugin_path(g->handles[j]), in->file) == 0)
            return g->handles[j];
    char setting[64], w[4200];
    snprintf(setting, sizeof(setting), "plugins[%zu]", i);
    where(c, setting, w, sizeof(w));
    char *sentence = NULL;
    struct ewtp_plugin_handle *h = NULL;
    int rc = ewtp_plugin_load(in->file, cache, &h, &sentence);
    if (rc != 0) {
        ewtp_errors_add(why, "/plugins", "config", "%s%s (%s): %s", w, setting, in->name,
                        sentence ? sentence : ewtp_strerror(rc));
        free(sentence);
        return NULL;
    }
    g->handles[g->n_handles++] = h;
    return h;
}

static int create_instances(struct ewtp_gen *g, struct ewtp_errors *why)
{
    const struct ewtp_config *c = g->conf;
    char cache[4096];
    if (snprintf(cache, sizeof(cache), "%s/plugins", c->state_dir) >= (int)sizeof(cache) ||
        make_dirs(cache) != 0) {
        char w[4200];
        ewtp_errors_add(why, "/state_dir", "config", "%sstate_dir: cannot create %s: %s",
                        where(c, "state_dir", w, sizeof(w)), cache, strerror(errno));
        return -EWTP_EIO;
    }
    if (c->n_instances == 0)
        return 0;
    g->handles = calloc(c->n_instances, sizeof(*g->handles));
    g->instances = calloc(c->n_instances, sizeof(*g->instances));
    g->destinations = calloc(c->n_instances + 1, sizeof(*g->destinations));
    if (g->handles == NULL || g->instances == NULL || g->destinations == NULL)
        return -EWTP_ENOMEM;
    const struct ewtp_host *host = ewtp_hostctx_table(g->host);
    int rc = 0;
    size_t n_dest = 0;
    for (size_t i = 0; i < c->n_instances; i++) {
        const struct ewtp_instance_conf *in = &c->instances[i];
        char setting[64], w[4200];
        snprintf(setting, sizeof(setting), "plugins[%zu]", i);
        where(c, setting, w, sizeof(w));
        struct ewtp_plugin_handle *h = handle_for(g, i, cache, why);
        if (h == NULL) {
            rc = -EWTP_EINVAL;
            continue;
        }
        const struct ewtp_plugin *d = ewtp_plugin_descriptor(h);
        if (in->plugin && strcmp(in->plugin, d->name) != 0) {
            ewtp_errors_add(why, "/plugins", "config",
                            "%s%s (%s): %s holds plugin \"%s\", not \"%s\"", w, setting, in->name,
                            in->file, d->name, in->plugin);
            rc = -EWTP_EINVAL;
            continue;
        }
        struct ewtp_errors *cw = ewtp_errors_new();
        if (cw == NULL)
            return -EWTP_ENOMEM;
        struct ewtp_instance *inst = NULL;
        int r = ewtp_instance_create(h, in->name, host, in->settings, &inst, cw);
        size_t n_reasons = ewtp_errors_count(cw);
        for (size_t e = 0; e < ewtp_errors_count(cw); e++) {
            const struct ewtp_error *x = ewtp_errors_at(cw, e);
            /* "/sender_id" -> "settings.sender_id" */
            char path[EWTP_POINTER_MAX + 16] = "settings";
            size_t o = strlen(path);
            for (const char *p = x->pointer; *p && o + 1 < sizeof(path); p++)
                path[o++] = *p == '/' ? '.' : *p;
            path[o] = '\0';
            char ptr[EWTP_POINTER_MAX + 32];
            snprintf(ptr, sizeof(ptr), "/plugins/%zu/settings%s", i, x->pointer);
            ewtp_errors_add_sev(why, x->severity, ptr, "config", "%s%s (%s): %s: %s", w, setting,
                                in->name, path, x->message);
        }
        ewtp_errors_free(cw);
        if (r != 0) {
            if (n_reasons == 0)
                ewtp_errors_add(why, "/plugins", "config", "%s%s (%s): create failed: %s", w,
                                setting, in->name, ewtp_strerror(r));
            rc = r;
            continue;
        }
        g->instances[i].conf = in;
        g->instances[i].inst = inst;
        g->instances[i].plugin = d;
        g->n_instances = i + 1;
        bool seen = false;
        for (size_t j = 0; j < n_dest; j++)
            if (strcmp(g->destinations[j], d->country) == 0)
                seen = true;
        if (!seen)
            g->destinations[n_dest++] = d->country;
    }
    return rc;
}

/* Routes name destinations and kinds their instance's plugin must serve. */
static int check_routes(struct ewtp_gen *g, struct ewtp_errors *why)
{
    const struct ewtp_config *c = g->conf;
    int rc = 0;
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct ewtp_route_conf *r = &c->routes[i];
        const struct ewtp_gen_instance *gi = ewtp_gen_instance(g, r->instance);
        if (gi == NULL || gi->plugin == NULL)
            continue;
        char setting[64], w[4200];
        snprintf(setting, sizeof(setting), "routes[%zu]", i);
        where(c, setting, w, sizeof(w));
        if (strcmp(r->destination, "*") != 0 && strcmp(r->destination, gi->plugin->country) != 0) {
            ewtp_errors_add(why, "/routes", "config",
                            "%s%s: instance %s (plugin %s) serves destination %s, not %s", w,
                            setting, r->instance, gi->plugin->name, gi->plugin->country,
                            r->destination);
            rc = -EWTP_EINVAL;
        } else if ((r->kinds & gi->plugin->kinds) == 0) {
            ewtp_errors_add(why, "/routes", "config",
                            "%s%s: instance %s (plugin %s) serves none of the kinds of this route",
                            w, setting, r->instance, gi->plugin->name);
            rc = -EWTP_EINVAL;
        }
    }
    return rc;
}

int ewtp_gen_build(const char *config_path, uint64_t id, struct ewtp_gen **out,
                   struct ewtp_errors *why)
{
    return ewtp_gen_build_at(config_path, id, 0, out, why);
}

int ewtp_gen_build_at(const char *config_path, uint64_t id, int64_t now_ms, struct ewtp_gen **out,
                      struct ewtp_errors *why)
{
    *out = NULL;
    struct ewtp_gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -EWTP_ENOMEM;
    atomic_init(&g->refs, 1);
    g->id = id;
    g->built_ms = ewtp_clock_ms(now_ms);
    int rc = ewtp_config_load(config_path, &g->conf, why);
    if (rc != 0) {
        free(g);
        return rc;
    }
    /* Certificates first: a successor that does not match its key is refused here, so a
     * reload never swaps in a pair that would fail its first handshake or signature. */
    rc = ewtp_certs_load(g->conf, g->built_ms, &g->certs, why);
    if (rc != 0) {
        destroy(g);
        return rc;
    }
    rc = load_tenant_cas(g, why);
    if (rc != 0) {
        destroy(g);
        return rc;
    }
    /* The daemon never signs with test identities: a missing key is an error. */
    g->host = ewtp_hostctx_new(false);
    if (g->host == NULL) {
        destroy(g);
        return -EWTP_ENOMEM;
    }
    /* Secrets plugins name in their settings are relative to the configuration file. */
    char *dir = strdup(g->conf->path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    rc = dir ? ewtp_hostctx_set_base_dir(g->host, slash ? dir : ".") : -EWTP_ENOMEM;
    free(dir);
    if (rc != 0) {
        destroy(g);
        return rc;
    }
    /* Every key and every instance is tried, so one run reports every problem. */
    int rk = load_keys(g, why);
    int ri = create_instances(g, why);
    if (rk == 0 && ri == 0)
        ri = check_routes(g, why);
    if (rk == 0 && ri == 0 && g->destinations == NULL) {
        g->destinations = calloc(1, sizeof(*g->destinations));
        if (g->destinations == NULL)
            ri = -EWTP_ENOMEM;
    }
    rc = rk ? rk : ri;
    if (rc != 0) {
        destroy(g);
        return rc < 0 ? rc : -EWTP_EINVAL;
    }
    *out = g;
    return 0;
}

void ewtp_gen_ref(struct ewtp_gen *g)
{
    if (g)
        atomic_fetch_add(&g->refs, 1);
}

void ewtp_gen_unref(struct ewtp_gen *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1)
        destroy(g);
}

size_t ewtp_gen_users(const struct ewtp_gen *g)
{
    return atomic_load(&((struct ewtp_gen *)g)->refs);
}

uint64_t ewtp_gen_id(const struct ewtp_gen *g)
{
    return g->id;
}

const struct ewtp_config *ewtp_gen_config(const struct ewtp_gen *g)
{
    return g->conf;
}

const struct ewtp_certs *ewtp_gen_certs(const struct ewtp_gen *g)
{
    return g->certs;
}

const struct ewtp_host *ewtp_gen_host(const struct ewtp_gen *g)
{
    return ewtp_hostctx_table(g->host);
}

const char *const *ewtp_gen_destinations(const struct ewtp_gen *g)
{
    return g->destinations;
}

size_t ewtp_gen_instance_count(const struct ewtp_gen *g)
{
    return g->n_instances;
}

const struct ewtp_gen_instance *ewtp_gen_instance_at(const struct ewtp_gen *g, size_t i)
{
    return i < g->n_instances ? &g->instances[i] : NULL;
}

const struct ewtp_gen_instance *ewtp_gen_instance(const struct ewtp_gen *g, const char *name)
{
    for (size_t i = 0; name && i < g->n_instances; i++)
        if (g->instances[i].conf && strcmp(g->instances[i].conf->name, name) == 0)
            return &g->instances[i];
    return NULL;
}

static bool tenant_allows(const struct ewtp_tenant_conf *t, const char *destination,
                          enum ewtp_kind kind)
{
    if ((t->kinds & EWTP_KIND_BIT(kind)) == 0)
        return false;
    for (size_t i = 0; i < t->n_destinations; i++)
        if (strcmp(t->destinations[i], "*") == 0 || strcmp(t->destinations[i], destination) == 0)
            return true;
    return false;
}

const struct ewtp_gen_instance *ewtp_gen_route(const struct ewtp_gen *g, const char *tenant,
                                               const char *destination, enum ewtp_kind kind)
{
    if (tenant == NULL || destination == NULL || (int)kind < 0 || kind >= EWTP_KIND_COUNT)
        return NULL;
    const struct ewtp_tenant_conf *t = ewtp_config_tenant(g->conf, tenant);
    if (t == NULL || !tenant_allows(t, destination, kind))
        return NULL;
    for (size_t i = 0; i < g->conf->n_routes; i++) {
        const struct ewtp_route_conf *r = &g->conf->routes[i];
        if (strcmp(r->tenant, "*") != 0 && strcmp(r->tenant, tenant) != 0)
            continue;
        if (strcmp(r->destination, "*") != 0 && strcmp(r->destination, destination) != 0)
            continue;
        if ((r->kinds & EWTP_KIND_BIT(kind)) == 0)
            continue;
        const struct ewtp_gen_instance *gi = ewtp_gen_instance(g, r->instance);
        /* A "*" route reaches only what its plugin serves. */
        if (gi == NULL || strcmp(gi->plugin->country, destination) != 0 ||
            (gi->plugin->kinds & EWTP_KIND_BIT(kind)) == 0)
            continue;
        return gi;
    }
    return NULL;
}

const struct ewtp_tenant_conf *ewtp_gen_tenant_by_token(const struct ewtp_gen *g, const char *token)
{
    if (token == NULL || token[0] == '\0')
        return NULL;
    char hex[65];
    const size_t mdlen = 32;
    if (ewtp_sha256_hex(token, strlen(token), hex) != 0)
        return NULL;
    /* Every tenant is compared, in constant time each, so timing says nothing about which
     * (if any) matched. */
    const struct ewtp_tenant_conf *found = NULL;
    for (size_t i = 0; i < g->conf->n_tenants; i++) {
        const struct ewtp_tenant_conf *t = &g->conf->tenants[i];
        if (t->token_sha256 && strlen(t->token_sha256) == 2 * mdlen &&
            CRYPTO_memcmp(t->token_sha256, hex, 2 * mdlen) == 0 && found == NULL)
            found = t;
    }
    return found;
}

const struct ewtp_tenant_conf *ewtp_gen_tenant_by_subject(const struct ewtp_gen *g,
                                                          const char *subject)
{
    for (size_t i = 0; subject && i < g->conf->n_tenants; i++) {
        const struct ewtp_tenant_conf *t = &g->conf->tenants[i];
        if (t->cert_subject && strcmp(t->cert_subject, subject) == 0)
            return t;
    }
    return NULL;
}
