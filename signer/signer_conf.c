/* signer_conf.c — ewtp-signer's configuration file (see signer_conf.h). */
#include "signer_conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIN_MAX 256

struct ld {
    const char *path;
    char *dir; /* the file's folder, for relative paths */
    struct signer_conf *c;
    int errors;
};

__attribute__((format(printf, 4, 5))) static void err(struct ld *l, const config_setting_t *s,
                                                      const char *setting, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    unsigned line = s != NULL ? config_setting_source_line(s) : 0;
    if (line > 0)
        fprintf(stderr, "ewtp-signer: %s:%u: %s: %s\n", l->path, line, setting, msg);
    else
        fprintf(stderr, "ewtp-signer: %s: %s: %s\n", l->path, setting, msg);
    l->errors++;
}

static void *oom(struct ld *l, void *p)
{
    if (p == NULL) {
        fprintf(stderr, "ewtp-signer: out of memory\n");
        l->errors++;
    }
    return p;
}

/* A path from the file, absolute or relative to its folder. */
static char *resolve(struct ld *l, const char *p)
{
    char *out = NULL;
    if (p[0] == '/')
        return oom(l, strdup(p));
    if (asprintf(&out, "%s/%s", l->dir, p) < 0)
        out = NULL;
    return oom(l, out);
}

bool signer_secret_mode_ok(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) == 0;
}

int signer_read_secret(const char *path, char **out, const char **why)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        *why = "cannot open the file";
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *why = "not a regular file";
        return -1;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        *why = "readable by group or others (chmod 0600 or 0400)";
        return -1;
    }
    char buf[PIN_MAX + 1];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0 || n > PIN_MAX) {
        *why = n < 0 ? "cannot read the file" : "longer than 256 bytes";
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *out = strdup(buf);
    explicit_bzero(buf, sizeof(buf));
    if (*out == NULL) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

static const char *get_str(struct ld *l, const config_setting_t *g, const char *prefix,
                           const char *name, bool required)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (s == NULL) {
        if (required)
            err(l, g, prefix, "%s is required", name);
        return NULL;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING || config_setting_get_string(s)[0] == '\0') {
        err(l, s, prefix, "%s must be a non-empty string", name);
        return NULL;
    }
    return config_setting_get_string(s);
}

/* A file setting: resolved, and it must be readable; a secret must also be private. */
static char *get_file(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                      bool required, bool secret)
{
    const char *v = get_str(l, g, prefix, name, required);
    if (v == NULL)
        return NULL;
    char *p = resolve(l, v);
    if (p == NULL)
        return NULL;
    const config_setting_t *s = config_setting_get_member(g, name);
    if (access(p, R_OK) != 0)
        err(l, s, prefix, "%s: cannot read %s: %s", name, p, strerror(errno));
    else if (secret && !signer_secret_mode_ok(p))
        err(l, s, prefix, "%s: %s is readable by group or others (chmod 0600 or 0400)", name, p);
    return p;
}

static bool get_int(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                    long long min, long long max, long long *v)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (s == NULL)
        return false;
    if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64) {
        err(l, s, prefix, "%s must be an integer", name);
        return false;
    }
    long long x = config_setting_get_int64(s);
    if (x < min || x > max) {
        err(l, s, prefix, "%s must be between %lld and %lld", name, min, max);
        return false;
    }
    *v = x;
    return true;
}

static void check_known(struct ld *l, const config_setting_t *g, const char *prefix,
                        const char *const *known)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const char *n = config_setting_name(config_setting_get_elem(g, (unsigned)i));
        bool ok = false;
        for (const char *const *k = known; *k != NULL && !ok; k++)
            ok = n != NULL && strcmp(n, *k) == 0;
        if (!ok)
            err(l, config_setting_get_elem(g, (unsigned)i), prefix, "unknown setting %s",
                n != NULL ? n : "?");
    }
}

/* "host:port" or "[v6]:port". */
static void load_listen(struct ld *l, const config_setting_t *root)
{
    const char *v = get_str(l, root, "listen", "listen", true);
    if (v == NULL)
        return;
    const char *colon = strrchr(v, ':');
    const char *host = v, *host_end = colon;
    if (v[0] == '[') {
        host = v + 1;
        host_end = strchr(v, ']');
        if (host_end == NULL || host_end + 1 != colon)
            host_end = NULL;
    }
    char *end = NULL;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
    if (host_end == NULL || host_end == host || colon[1] == '\0' || *end != '\0' || port < 0 ||
        port > 65535) {
        err(l, config_setting_get_member(root, "listen"), "listen",
            "must be \"address:port\" (\"[::1]:port\" for IPv6)");
        return;
    }
    l->c->listen_host = oom(l, strndup(host, (size_t)(host_end - host)));
    l->c->listen_port = (unsigned)port;
}

static void load_tls(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"cert", "key", "client_ca", NULL};
    const config_setting_t *g = config_setting_get_member(root, "tls");
    if (g == NULL || config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err(l, g != NULL ? g : root, "tls",
            "required: a group { cert = ...; key = ...; client_ca = ...; } (clients are always "
            "authenticated by certificate)");
        return;
    }
    check_known(l, g, "tls", known);
    l->c->cert_file = get_file(l, g, "tls", "cert", true, false);
    l->c->key_file = get_file(l, g, "tls", "key", true, true);
    l->c->client_ca_file = get_file(l, g, "tls", "client_ca", true, false);
}

static void load_limits(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"max_request_bytes", "workers", "timeout_ms", NULL};
    struct signer_conf *c = l->c;
    c->max_request_bytes = 1024 * 1024;
    c->workers = 8;
    c->timeout_ms = 10000;
    const config_setting_t *g = config_setting_get_member(root, "limits");
    if (g == NULL)
        return;
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err(l, g, "limits", "must be a group");
        return;
    }
    check_known(l, g, "limits", known);
    long long v;
    if (get_int(l, g, "limits", "max_request_bytes", 1024, 64LL * 1024 * 1024, &v))
        c->max_request_bytes = (size_t)v;
    if (get_int(l, g, "limits", "workers", 1, 256, &v))
        c->workers = (unsigned)v;
    if (get_int(l, g, "limits", "timeout_ms", 100, 600000, &v))
        c->timeout_ms = v;
}

static bool is_hex(const char *s, size_t want)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!isxdigit((unsigned char)s[n]))
            return false;
    return want == 0 ? n > 0 && n % 2 == 0 : n == want;
}

static void load_clients(struct ld *l, const config_setting_t *g, const char *prefix,
                         struct signer_key_conf *k)
{
    const config_setting_t *a = config_setting_get_member(g, "clients");
    if (a == NULL || config_setting_type(a) != CONFIG_TYPE_ARRAY || config_setting_length(a) < 1) {
        err(l, a != NULL ? a : g, prefix,
            "clients is required: [ \"CN=...\", \"sha256:...\" ], the client certificates that "
            "may use this key");
        return;
    }
    int n = config_setting_length(a);
    k->clients = oom(l, calloc((size_t)n, sizeof(*k->clients)));
    if (k->clients == NULL)
        return;
    for (int i = 0; i < n; i++) {
        const char *v = config_setting_get_string_elem(a, i);
        if (v == NULL || !((strncmp(v, "CN=", 3) == 0 && v[3] != '\0') ||
                           (strncmp(v, "sha256:", 7) == 0 && is_hex(v + 7, 64)))) {
            err(l, a, prefix,
                "clients[%d] must be \"CN=<subject common name>\" or "
                "\"sha256:<64 hex digits of the certificate's SHA-256>\"",
                i);
            continue;
        }
        char *d = oom(l, strdup(v));
        if (d != NULL && d[0] == 's')
            for (char *p = d + 7; *p != '\0'; p++)
                *p = (char)tolower((unsigned char)*p);
        k->clients[k->n_clients++] = d;
    }
}

static void load_pkcs11(struct ld *l, const config_setting_t *g, const char *prefix,
                        struct signer_key_conf *k)
{
    static const char *const known[] = {"module", "token", "slot", "label", "id", "pin_file", NULL};
    char p[96];
    snprintf(p, sizeof(p), "%s.pkcs11", prefix);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err(l, g, p, "must be a group { module; token or slot; label and/or id; pin_file; }");
        return;
    }
    check_known(l, g, p, known);
    k->module = get_file(l, g, p, "module", true, false);
    const char *v = get_str(l, g, p, "token", false);
    k->token = v != NULL ? oom(l, strdup(v)) : NULL;
    long long slot = -1;
    get_int(l, g, p, "slot", 0, LONG_MAX, &slot);
    k->slot = (long)slot;
    if ((k->token == NULL) == (k->slot < 0))
        err(l, g, p, "set token (its label) or slot (its id), one of them");
    v = get_str(l, g, p, "label", false);
    k->label = v != NULL ? oom(l, strdup(v)) : NULL;
    v = get_str(l, g, p, "id", false);
    if (v != NULL && !is_hex(v, 0))
        err(l, config_setting_get_member(g, "id"), p, "id must be hex digits (e.g. \"01\")");
    else if (v != NULL)
        k->id_hex = oom(l, strdup(v));
    if (k->label == NULL && k->id_hex == NULL)
        err(l, g, p, "set label and/or id of the private key");
    k->pin_file = get_file(l, g, p, "pin_file", true, true);
}

static void load_keys(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"name",    "clients", "pkcs11",     "key_file",
                                        "command", "base64",  "timeout_ms", NULL};
    struct signer_conf *c = l->c;
    const config_setting_t *list = config_setting_get_member(root, "keys");
    if (list == NULL ||
        (config_setting_type(list) != CONFIG_TYPE_LIST &&
         config_setting_type(list) != CONFIG_TYPE_ARRAY) ||
        config_setting_length(list) < 1) {
        err(l, list != NULL ? list : root, "keys", "required: a list ( { name = ...; ... } )");
        return;
    }
    int n = config_setting_length(list);
    c->keys = oom(l, calloc((size_t)n, sizeof(*c->keys)));
    if (c->keys == NULL)
        return;
    c->n_keys = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct signer_key_conf *k = &c->keys[i];
        char prefix[48];
        snprintf(prefix, sizeof(prefix), "keys[%d]", i);
        k->slot = -1;
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            err(l, g, prefix, "must be a group { name = ...; clients = [...]; ... }");
            continue;
        }
        check_known(l, g, prefix, known);
        const char *v = get_str(l, g, prefix, "name", true);
        if (v != NULL) {
            k->name = oom(l, strdup(v));
            for (int j = 0; j < i; j++)
                if (c->keys[j].name != NULL && strcmp(c->keys[j].name, v) == 0)
                    err(l, g, prefix, "name \"%s\" is also keys[%d]'s", v, j);
        }
        load_clients(l, g, prefix, k);
        const config_setting_t *p11 = config_setting_get_member(g, "pkcs11");
        bool has_file = config_setting_get_member(g, "key_file") != NULL;
        bool has_cmd = config_setting_get_member(g, "command") != NULL;
        if ((p11 != NULL) + has_file + has_cmd != 1) {
            err(l, g, prefix, "set exactly one of pkcs11 = { ... }, key_file or command");
            continue;
        }
        if (p11 != NULL) {
            k->source = SIGNER_KEY_PKCS11;
            load_pkcs11(l, p11, prefix, k);
        } else if (has_file) {
            k->source = SIGNER_KEY_FILE;
            k->key_file = get_file(l, g, prefix, "key_file", true, true);
        } else {
            k->source = SIGNER_KEY_COMMAND;
            v = get_str(l, g, prefix, "command", true);
            k->command = v != NULL ? oom(l, strdup(v)) : NULL;
            int b = 0;
            if (config_setting_lookup_bool(g, "base64", &b) == CONFIG_TRUE)
                k->base64 = b != 0;
            long long t = 30000;
            get_int(l, g, prefix, "timeout_ms", 100, 600000, &t);
            k->timeout_ms = t;
        }
    }
}

int signer_conf_load(const char *path, struct signer_conf **out)
{
    *out = NULL;
    struct ld l = {.path = path};
    l.c = calloc(1, sizeof(*l.c));
    char *real = realpath(path, NULL);
    if (l.c == NULL || real == NULL) {
        fprintf(stderr, "ewtp-signer: %s: %s\n", path,
                real == NULL ? strerror(errno) : "no memory");
        free(real);
        free(l.c);
        return -1;
    }
    char *slash = strrchr(real, '/');
    l.dir = strndup(real, slash > real ? (size_t)(slash - real) : 1);
    free(real);
    l.c->path = strdup(path);
    config_t cf;
    config_init(&cf);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        fprintf(stderr, "ewtp-signer: %s:%d: %s\n",
                config_error_file(&cf) ? config_error_file(&cf) : path, config_error_line(&cf),
                config_error_text(&cf));
        l.errors++;
    } else {
        static const char *const known[] = {"listen", "tls", "limits", "keys", NULL};
        const config_setting_t *root = config_root_setting(&cf);
        check_known(&l, root, "(top)", known);
        load_listen(&l, root);
        load_tls(&l, root);
        load_limits(&l, root);
        load_keys(&l, root);
    }
    config_destroy(&cf);
    free(l.dir);
    if (l.errors > 0 || l.c->path == NULL) {
        signer_conf_free(l.c);
        return -1;
    }
    *out = l.c;
    return 0;
}

void signer_conf_free(struct signer_conf *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_keys; i++) {
        struct signer_key_conf *k = &c->keys[i];
        for (size_t j = 0; j < k->n_clients; j++)
            free(k->clients[j]);
        free(k->clients);
        free(k->name);
        free(k->module);
        free(k->token);
        free(k->label);
        free(k->id_hex);
        free(k->pin_file);
        free(k->key_file);
        free(k->command);
    }
    free(c->keys);
    free(c->path);
    free(c->listen_host);
    free(c->cert_file);
    free(c->key_file);
    free(c->client_ca_file);
    free(c);
}
