/* The host function table given to plugins: log, secrets, keys, randomness. */
#include "hostctx.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instance_key.h"
#include "config.h"
#include "keys.h"
#include "util.h"
#include "runner.h"

/* Secrets larger than this are not secrets but mistakes (a key file named as a token). */
#define SECRET_MAX (64u * 1024u)

struct ewtp_hostctx {
    struct ewtp_host table;
    struct ewtp_keys *keys;
    char *base_dir; /* NULL: the working directory */
};

int ewtp_hostctx_set_base_dir(struct ewtp_hostctx *h, const char *dir)
{
    char *copy = dir ? strdup(dir) : NULL;
    if (dir && copy == NULL)
        return -EWTP_ENOMEM;
    free(h->base_dir);
    h->base_dir = copy;
    return 0;
}

char *ewtp_hostctx_resolve(const struct ewtp_hostctx *h, const char *path)
{
    char *out = NULL;
    if (path[0] == '/' || h->base_dir == NULL)
        return strdup(path);
    if (asprintf(&out, "%s/%s", h->base_dir, path) < 0)
        return NULL;
    return out;
}

static void host_log(void *ctx, enum ewtp_log_level level, const char *plugin, const char *msg)
{
    (void)ctx;
    static const char *const names[] = {[EWTP_LOG_ERR] = "error",
                                        [EWTP_LOG_WARNING] = "warning",
                                        [EWTP_LOG_INFO] = "info",
                                        [EWTP_LOG_DEBUG] = "debug"};
    const char *name =
        (unsigned)level < sizeof(names) / sizeof(names[0]) && names[level] ? names[level] : "log";
    char *safe = ewtp_redact(msg);
    fprintf(stderr, "<%d>plugin %s: %s: %s\n", (int)level, plugin ? plugin : "?", name,
            safe ? safe : "(out of memory)");
    free(safe);
}

/* A path, or a systemd credential name (no slash) under $CREDENTIALS_DIRECTORY. */
static int host_read_secret(void *ctx, const char *name, struct ewtp_arena *a, const char **data,
                            size_t *len)
{
    struct ewtp_hostctx *h = ctx;
    if (name == NULL || name[0] == '\0')
        return -EWTP_EINVAL;
    char path[4096];
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    if (strchr(name, '/') == NULL && creds != NULL) {
        snprintf(path, sizeof(path), "%s/%s", creds, name);
    } else {
        char *resolved = ewtp_hostctx_resolve(h, name);
        if (resolved == NULL)
            return -EWTP_ENOMEM;
        snprintf(path, sizeof(path), "%s", resolved);
        free(resolved);
    }
    char *buf = NULL;
    size_t n = 0;
    int rc = ewtp_read_file(path, SECRET_MAX, &buf, &n);
    if (rc != 0)
        return errno == ENOENT ? -EWTP_ENOTFOUND : -EWTP_EIO;
    if (n > SECRET_MAX) {
        free(buf);
        return -EWTP_ERANGE;
    }
    *data = ewtp_arena_memdup(a, buf, n);
    *len = n;
    /* The heap copy held a secret: clear it before it goes back to the allocator. */
    memset(buf, 0, n);
    free(buf);
    return *data ? 0 : -EWTP_ENOMEM;
}

static int host_sign(void *ctx, const char *key_name, enum ewtp_sign_alg alg, const void *data,
                     size_t len, struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len)
{
    struct ewtp_hostctx *h = ctx;
    return ewtp_keys_sign(h->keys, key_name, alg, data, len, a, sig, sig_len);
}

static int host_cert(void *ctx, const char *key_name, struct ewtp_arena *a,
                     const unsigned char **der, size_t *der_len)
{
    struct ewtp_hostctx *h = ctx;
    return ewtp_keys_cert(h->keys, key_name, a, der, der_len);
}

static int host_random(void *ctx, void *buf, size_t len)
{
    struct ewtp_hostctx *h = ctx;
    return ewtp_keys_random(h->keys, buf, len);
}

/* ABI 1.7: keyed by the process's copy of the instance secret (instance_key.h), under a
 * purpose of the plugins' own. */
static int host_instance_mac(void *ctx, const void *data, size_t len, unsigned char out[32])
{
    (void)ctx;
    return ewtp_instance_mac("plugin-id", data, len, out);
}

struct ewtp_hostctx *ewtp_hostctx_new(bool test_identities)
{
    struct ewtp_hostctx *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->keys = ewtp_keys_new()) == NULL) {
        free(h);
        return NULL;
    }
    ewtp_keys_set_auto_test(h->keys, test_identities);
    h->table = (struct ewtp_host){
        .size = sizeof(struct ewtp_host),
        .abi_major = EWTP_ABI_MAJOR,
        .abi_minor = EWTP_ABI_MINOR,
        .ctx = h,
        .log = host_log,
        .read_secret = host_read_secret,
        .sign = host_sign,
        .cert = host_cert,
        .random = host_random,
        .instance_mac = host_instance_mac,
    };
    return h;
}

void ewtp_hostctx_free(struct ewtp_hostctx *h)
{
    if (h == NULL)
        return;
    ewtp_keys_free(h->keys);
    free(h->base_dir);
    free(h);
}

int ewtp_hostctx_add_key(struct ewtp_hostctx *h, const char *name, const char *key_file,
                         const char *cert_file, const char *command, char **why)
{
    *why = NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    if (errs == NULL)
        return -EWTP_ENOMEM;
    char *key_path = key_file ? ewtp_hostctx_resolve(h, key_file) : NULL;
    char *cert_path = cert_file ? ewtp_hostctx_resolve(h, cert_file) : NULL;
    key_file = key_path;
    cert_file = cert_path;
    int rc;
    if (name == NULL)
        rc = -EWTP_EINVAL, ewtp_errors_add(errs, "", "key", "a key needs a name");
    else if (command != NULL)
        rc = ewtp_keys_add_command(h->keys, name, command, cert_file, 0, 0, errs);
    else if (key_file != NULL && cert_file != NULL)
        rc = ewtp_keys_add_pem(h->keys, name, key_file, cert_file, errs);
    else
        rc = -EWTP_EINVAL,
        ewtp_errors_add(errs, "", "key", "a key needs key and cert files, or a command");
    if (rc != 0 && ewtp_errors_count(errs) > 0)
        *why = strdup(ewtp_errors_at(errs, 0)->message);
    ewtp_errors_free(errs);
    free(key_path);
    free(cert_path);
    return rc;
}

int ewtp_hostctx_add_remote_key(struct ewtp_hostctx *h, const char *name,
                                const struct ewtp_key_remote_conf *remote, const char *cert_file,
                                char **why)
{
    *why = NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    /* Paths follow the base directory, as a local key's do (absolute ones stay). */
    const char *in[4] = {cert_file, remote->client_cert, remote->client_key, remote->ca_file};
    char *p[4] = {NULL};
    bool oom = errs == NULL;
    for (int i = 0; i < 4; i++)
        if (in[i] != NULL && (p[i] = ewtp_hostctx_resolve(h, in[i])) == NULL)
            oom = true;
    const struct ewtp_remote_conf rc_conf = {.url = remote->url,
                                             .key = remote->key,
                                             .client_cert = p[1],
                                             .client_key = p[2],
                                             .ca_file = p[3],
                                             .timeout_ms = remote->timeout_ms};
    int rc = oom ? -EWTP_ENOMEM
             : name == NULL || p[0] == NULL
                 ? -EWTP_EINVAL
                 : ewtp_keys_add_remote(h->keys, name, &rc_conf, p[0], errs);
    if (rc != 0 && errs != NULL && ewtp_errors_count(errs) > 0)
        *why = strdup(ewtp_errors_at(errs, 0)->message);
    else if (rc == -EWTP_EINVAL)
        *why =
            strdup("a remote key needs a name and cert (the PEM certificate of the agent's key)");
    ewtp_errors_free(errs);
    for (int i = 0; i < 4; i++)
        free(p[i]);
    return rc;
}

const struct ewtp_host *ewtp_hostctx_table(struct ewtp_hostctx *h)
{
    return &h->table;
}

void ewtp_call_init(struct ewtp_call *c, const struct ewtp_host *host, struct ewtp_arena *arena,
                    int64_t now_ms, const char *tenant, const char *instance,
                    const struct ewtp_message *m, enum ewtp_op op, uint32_t attempts_started)
{
    memset(c, 0, sizeof(*c));
    c->size = sizeof(*c);
    c->host = host;
    c->arena = arena;
    c->now_ms = now_ms;
    c->tenant = tenant;
    c->instance = instance;
    c->msg = m;
    c->op = op;
    c->attempt = attempts_started > 0 ? attempts_started : 1;
}
