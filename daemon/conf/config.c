/* ewtpd's configuration: libconfig file -> one immutable struct ewtp_config.
 *
 * Every problem is collected (the admin fixes a file in one pass, not one error per
 * `ewtpd -t`), each as "FILE:LINE: setting.path: reason". Secrets are file paths; bearer
 * tokens are read here and only their SHA-256 is kept, so the token never sits in memory
 * for the life of the daemon. */
#include "config.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <ewtp/message.h>

#include "conf_settings.h"
#include "amqp_url.h"

#define TOKEN_MAX (64 * 1024)
#define TOKEN_MIN 32 /* bytes of a bearer token outside dev_mode */
#define DEFAULT_STATE_DIR "/run/ewtpd"
#define DEFAULT_SQLITE_PATH "/var/lib/ewtpd/ewtpd.sqlite"

/* Lines of list entries and top-level settings, for messages about them found later
 * (gen.c loads keys and plugins after the file was read). */
struct line_entry {
    char *setting;
    unsigned line;
};

/* The public struct first, so ewtp_config_free() finds the rest. */
struct config_full {
    struct ewtp_config pub;
    struct line_entry *lines;
    size_t n_lines;
};

/* One load in progress. */
struct ld {
    const char *path; /* as given, for messages */
    char *dir;        /* absolute directory of the file, for relative paths */
    struct ewtp_errors *why;
    struct config_full *full;
    bool oom;
    bool dev_mode; /* dev_mode = true: short tokens and readable secret files allowed */
};

/* ---- messages --------------------------------------------------------------------------- */

static const char *file_of(const struct ld *l, const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    return f ? f : l->path;
}

/* "tenants[0].token_file" -> "/tenants/0/token_file" */
static void to_pointer(const char *setting, char *out, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return;
    if (setting[0] != '\0' && o + 1 < size)
        out[o++] = '/';
    for (const char *p = setting; *p && o + 1 < size; p++) {
        if (*p == '[' || *p == '.')
            out[o++] = '/';
        else if (*p != ']')
            out[o++] = *p;
    }
    out[o] = '\0';
}

/* An error about setting (dotted path) found at s (or its nearest enclosing group). */
__attribute__((format(printf, 5, 6))) static void err_at(struct ld *l, enum ewtp_severity sev,
                                                         const config_setting_t *s,
                                                         const char *setting, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char ptr[EWTP_POINTER_MAX];
    to_pointer(setting, ptr, sizeof(ptr));
    unsigned line = s ? config_setting_source_line(s) : 0;
    char where[PATH_MAX + 32];
    if (line > 0)
        snprintf(where, sizeof(where), "%s:%u", file_of(l, s), line);
    else
        snprintf(where, sizeof(where), "%s", file_of(l, s));
    if (setting[0] != '\0')
        ewtp_errors_add_sev(l->why, sev, ptr, "config", "%s: %s: %s", where, setting, msg);
    else
        ewtp_errors_add_sev(l->why, sev, ptr, "config", "%s: %s", where, msg);
}

#define ERR(l, s, setting, ...) err_at(l, EWTP_SEV_ERROR, s, setting, __VA_ARGS__)
#define WARN(l, s, setting, ...) err_at(l, EWTP_SEV_WARNING, s, setting, __VA_ARGS__)

static char *dup_or_oom(struct ld *l, const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        l->oom = true;
    return d;
}

static char *fmt_or_oom(struct ld *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *fmt_or_oom(struct ld *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ewtp_vasprintf(fmt, ap);
    va_end(ap);
    if (s == NULL)
        l->oom = true;
    return s;
}

static void record_line(struct ld *l, const char *setting, const config_setting_t *s)
{
    struct config_full *f = l->full;
    struct line_entry *n = realloc(f->lines, (f->n_lines + 1) * sizeof(*n));
    if (n == NULL) {
        l->oom = true;
        return;
    }
    f->lines = n;
    n[f->n_lines].setting = strdup(setting);
    if (n[f->n_lines].setting == NULL) {
        l->oom = true;
        return;
    }
    n[f->n_lines].line = s ? config_setting_source_line(s) : 0;
    f->n_lines++;
}

/* ---- typed getters ------------------------------------------------------------------------ */

/* Every member of group g must be in known. */
static void check_known(struct ld *l, const config_setting_t *g, const char *prefix,
                        const char *const *known)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        bool ok = false;
        for (size_t k = 0; known[k] && name; k++)
            if (strcmp(known[k], name) == 0)
                ok = true;
        if (!ok) {
            char setting[512];
            snprintf(setting, sizeof(setting), "%s%s%s", prefix, prefix[0] ? "." : "",
                     name ? name : "?");
            char ptr[EWTP_POINTER_MAX];
            to_pointer(setting, ptr, sizeof(ptr));
            ewtp_errors_add(l->why, ptr, "config", "%s:%u: unknown setting %s", file_of(l, m),
                            config_setting_source_line(m), setting);
        }
    }
}

static void join(char *out, size_t size, const char *prefix, const char *name)
{
    snprintf(out, size, "%s%s%s", prefix, prefix[0] ? "." : "", name);
}

/* A string member: 1 and *out (borrowed from the config) when present, 0 when absent,
 * -1 when present with another type (reported). An absent required member is reported. */
static int get_str(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                   bool required, const char **out)
{
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    *out = NULL;
    const config_setting_t *m = g ? config_setting_get_member(g, name) : NULL;
    if (m == NULL) {
        if (required)
            ERR(l, g, setting, "required setting missing");
        return 0;
    }
    if (config_setting_type(m) != CONFIG_TYPE_STRING) {
        ERR(l, m, setting, "must be a string (in double quotes)");
        return -1;
    }
    *out = config_setting_get_string(m);
    if ((*out)[0] == '\0') {
        if (required) {
            ERR(l, m, setting, "must not be empty");
            return -1;
        }
        *out = NULL;
        return 0;
    }
    return 1;
}

static int get_int(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                   long long def, long long min, long long max, long long *out)
{
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    *out = def;
    const config_setting_t *m = g ? config_setting_get_member(g, name) : NULL;
    if (m == NULL)
        return 0;
    long long v;
    if (config_setting_type(m) == CONFIG_TYPE_INT)
        v = config_setting_get_int(m);
    else if (config_setting_type(m) == CONFIG_TYPE_INT64)
        v = config_setting_get_int64(m);
    else {
        ERR(l, m, setting, "must be an integer");
        return -1;
    }
    if (v < min || v > max) {
        ERR(l, m, setting, "%lld is out of range (%lld to %lld)", v, min, max);
        return -1;
    }
    *out = v;
    return 1;
}

static int get_bool(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                    bool def, bool *out)
{
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    *out = def;
    const config_setting_t *m = g ? config_setting_get_member(g, name) : NULL;
    if (m == NULL)
        return 0;
    if (config_setting_type(m) != CONFIG_TYPE_BOOL) {
        ERR(l, m, setting, "must be true or false");
        return -1;
    }
    *out = config_setting_get_bool(m) != 0;
    return 1;
}

/* A group member (NULL when absent or not a group, the latter reported). */
static const config_setting_t *get_group(struct ld *l, const config_setting_t *g,
                                         const char *prefix, const char *name)
{
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    const config_setting_t *m = config_setting_get_member(g, name);
    if (m == NULL)
        return NULL;
    if (config_setting_type(m) != CONFIG_TYPE_GROUP) {
        ERR(l, m, setting, "must be a group { ... }");
        return NULL;
    }
    return m;
}

/* A list ( ... ) of groups; NULL when absent or of another type (reported). */
static const config_setting_t *get_list(struct ld *l, const config_setting_t *g, const char *name)
{
    const config_setting_t *m = config_setting_get_member(g, name);
    if (m == NULL)
        return NULL;
    if (config_setting_type(m) != CONFIG_TYPE_LIST) {
        ERR(l, m, name, "must be a list ( { ... }, { ... } )");
        return NULL;
    }
    return m;
}

/* ---- paths and secrets -------------------------------------------------------------------- */

static char *resolve(struct ld *l, const char *p)
{
    if (p == NULL)
        return NULL;
    if (p[0] == '/')
        return dup_or_oom(l, p);
    return fmt_or_oom(l, "%s/%s", l->dir, p);
}

/* A path setting resolved against the file's directory; *out NULL when absent. */
static int get_path(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                    bool required, char **out)
{
    const char *v;
    int rc = get_str(l, g, prefix, name, required, &v);
    *out = rc > 0 ? resolve(l, v) : NULL;
    return rc;
}

/* A path that must name a readable file. */
static int get_file(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                    bool required, char **out)
{
    int rc = get_path(l, g, prefix, name, required, out);
    if (rc <= 0 || *out == NULL)
        return rc;
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    const config_setting_t *m = config_setting_get_member(g, name);
    struct stat st;
    if (access(*out, R_OK) != 0 || stat(*out, &st) != 0) {
        ERR(l, m, setting, "cannot read %s: %s", *out, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        ERR(l, m, setting, "%s is not a file", *out);
        return -1;
    }
    return 1;
}

/* A secret file: a path, or the name (no slash) of a systemd credential when
 * $CREDENTIALS_DIRECTORY holds one of that name (LoadCredential= in the unit). */
static int get_secret(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                      bool required, char **out)
{
    const char *v;
    *out = NULL;
    int rc = get_str(l, g, prefix, name, required, &v);
    if (rc <= 0)
        return rc;
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    if (strchr(v, '/') == NULL && creds != NULL && creds[0] != '\0') {
        char *c = fmt_or_oom(l, "%s/%s", creds, v);
        if (c != NULL && access(c, R_OK) == 0) {
            *out = c;
            return 1;
        }
        free(c);
    }
    rc = get_file(l, g, prefix, name, required, out);
    if (rc <= 0 || *out == NULL)
        return rc;
    /* A secret readable by others is no longer a secret (issue 19). */
    struct stat st;
    if (!l->dev_mode && stat(*out, &st) == 0 && (st.st_mode & 077) != 0) {
        char setting[512];
        join(setting, sizeof(setting), prefix, name);
        ERR(l, config_setting_get_member(g, name), setting,
            "%s is readable by its group or others (mode %04o): a secret file must be mode 0600 "
            "or 0400 (chmod 600 %s), or set dev_mode = true; for a loopback-only development "
            "setup",
            *out, (unsigned)(st.st_mode & 07777), *out);
        return -1;
    }
    return 1;
}

/* SHA-256 hex of the token in file (trailing whitespace and newlines dropped). */
static int token_sha256(struct ld *l, const config_setting_t *m, const char *setting,
                        const char *file, char **hex)
{
    *hex = NULL;
    char *buf = NULL;
    size_t n = 0;
    if (ewtp_read_file(file, TOKEN_MAX, &buf, &n) != 0) {
        ERR(l, m, setting, "cannot read %s: %s", file, strerror(errno));
        return -1;
    }
    size_t start = 0, len = n;
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    while (start < len && isspace((unsigned char)buf[start]))
        start++;
    len -= start;
    int rc = 0;
    if (n > TOKEN_MAX) {
        ERR(l, m, setting, "%s is larger than %d bytes: not a token", file, TOKEN_MAX);
        rc = -1;
    } else if (len == 0) {
        ERR(l, m, setting, "%s is empty: write the token into it", file);
        rc = -1;
    } else if (memchr(buf + start, '\n', len) != NULL) {
        ERR(l, m, setting, "%s holds several lines: a token file holds one token", file);
        rc = -1;
    } else if (len < TOKEN_MIN && !l->dev_mode) {
        ERR(l, m, setting,
            "%s holds a token of %zu bytes: a bearer token needs at least %d (for instance "
            "openssl rand -hex 32), or set dev_mode = true; for a loopback-only development setup",
            file, len, TOKEN_MIN);
        rc = -1;
    } else {
        if ((*hex = malloc(65)) == NULL) {
            l->oom = true;
            rc = -1;
        } else if (ewtp_sha256_hex(buf + start, len, *hex) != 0) {
            ERR(l, m, setting, "cannot hash the token of %s", file);
            rc = -1;
        }
    }
    /* The token itself is not kept. */
    OPENSSL_cleanse(buf, n);
    free(buf);
    return rc;
}

/* A token file setting: its resolved path and the SHA-256 of its token. */
static void get_token(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                      bool required, char **file, char **hex)
{
    *hex = NULL;
    if (get_secret(l, g, prefix, name, required, file) <= 0 || *file == NULL)
        return;
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    token_sha256(l, config_setting_get_member(g, name), setting, *file, hex);
}

/* ---- small value checks ------------------------------------------------------------------- */

static bool is_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

static bool is_country(const char *s)
{
    return strcmp(s, "*") == 0 ||
           (strlen(s) == 2 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]));
}

/* A loopback address, parsed (127.0.0.0/8, ::1, ::ffff:127.x.y.z) or "localhost"; never a
 * text prefix ("127.0.0.1.example.com" is a name, not loopback). */
static bool is_loopback_address(const char *a)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (strcasecmp(a, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, a, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, a, &v6) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(v6.s6_addr, one, 16) == 0 ||
               (memcmp(v6.s6_addr, mapped, 12) == 0 && v6.s6_addr[12] == 127);
    }
    return false;
}

/* "http://127.0.0.1:8490/x" -> is the host a loopback address? */
static bool url_host_is_loopback(const char *url)
{
    const char *h = strstr(url, "://");
    if (h == NULL)
        return false;
    h += 3;
    size_t n = strcspn(h, "/?#");
    const char *at = memchr(h, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - h);
        h = at + 1;
    }
    char host[256];
    if (h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (close == NULL)
            return false;
        snprintf(host, sizeof(host), "%.*s", (int)(close - h - 1), h + 1);
    } else {
        size_t hl = strcspn(h, ":/?#");
        if (hl > n)
            hl = n;
        snprintf(host, sizeof(host), "%.*s", (int)hl, h);
    }
    return is_loopback_address(host);
}

/* https:// anywhere; http:// only to loopback (simulators and local proxies). */
static void check_url(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                      const char *url)
{
    if (url == NULL)
        return;
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    const config_setting_t *m = config_setting_get_member(g, name);
    if (strncasecmp(url, "https://", 8) == 0 && url[8] != '\0')
        return;
    if (strncasecmp(url, "http://", 7) == 0 && url[7] != '\0') {
        if (!url_host_is_loopback(url))
            ERR(l, m, setting,
                "%s: plain http:// is only allowed to a loopback address (127.0.0.1, ::1, "
                "localhost); use https://",
                url);
        return;
    }
    ERR(l, m, setting, "%s is not an absolute https:// URL", url);
}

static void kind_names(char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (int k = 0; k < EWTP_KIND_COUNT && o < size; k++) {
        int w = snprintf(out + o, size - o, "%s%s", k ? ", " : "", ewtp_kind_name(k));
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* kinds = [ "order", "payment" ] (or a single string); "*" is every kind. Absent: all. */
static void get_kinds(struct ld *l, const config_setting_t *g, const char *prefix, uint32_t *mask)
{
    char setting[512];
    join(setting, sizeof(setting), prefix, "kinds");
    *mask = EWTP_KINDS_ALL;
    const config_setting_t *m = config_setting_get_member(g, "kinds");
    if (m == NULL)
        return;
    int type = config_setting_type(m);
    int n = type == CONFIG_TYPE_STRING ? 1 : config_setting_length(m);
    if (type != CONFIG_TYPE_STRING && type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        ERR(l, m, setting, "must be a list of kind names, e.g. [ \"order\", \"payment\" ]");
        return;
    }
    if (n == 0) {
        ERR(l, m, setting, "is empty: leave it out to allow every kind");
        return;
    }
    uint32_t out = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e =
            type == CONFIG_TYPE_STRING ? m : config_setting_get_elem(m, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            ERR(l, e, setting, "must be a list of kind names (strings)");
            continue;
        }
        const char *s = config_setting_get_string(e);
        if (strcmp(s, "*") == 0) {
            out |= EWTP_KINDS_ALL;
            continue;
        }
        enum ewtp_kind k = ewtp_kind_from_name(s);
        if (k == EWTP_KIND_NONE) {
            char names[256];
            kind_names(names, sizeof(names));
            ERR(l, e, setting, "unknown kind \"%s\" (one of %s, or \"*\")", s, names);
            continue;
        }
        out |= EWTP_KIND_BIT(k);
    }
    if (out != 0)
        *mask = out;
}

/* ---- certificate rollover ------------------------------------------------------------------ */

/* The group `name` of g (next, client_next) with cert_name, key_name (named as the members they
 * replace) and from (RFC 3339): a certificate and key that take over at from (config.h). The key
 * is a secret file when secret_key. NULL when absent or wrong (reported). The group's line is
 * recorded as "PREFIX.NAME" so that later checks (certs.c: the key matches the certificate)
 * name file and line. */
static struct ewtp_cert_next *load_next(struct ld *l, const config_setting_t *g, const char *prefix,
                                        const char *name, const char *cert_name,
                                        const char *key_name, bool secret_key)
{
    const config_setting_t *n = get_group(l, g, prefix, name);
    if (n == NULL)
        return NULL;
    char np[160], s[200];
    join(np, sizeof(np), prefix, name);
    record_line(l, np, n);
    const char *const known[] = {cert_name, key_name, "from", NULL};
    check_known(l, n, np, known);
    struct ewtp_cert_next *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        l->oom = true;
        return NULL;
    }
    int rc_cert = get_file(l, n, np, cert_name, true, &x->cert_file);
    int rc_key = secret_key ? get_secret(l, n, np, key_name, true, &x->key_file)
                            : get_file(l, n, np, key_name, true, &x->key_file);
    const char *from;
    int rc_from = get_str(l, n, np, "from", true, &from);
    if (rc_from > 0 && !ewtp_time_parse(from, &x->from_ms)) {
        join(s, sizeof(s), np, "from");
        ERR(l, config_setting_get_member(n, "from"), s,
            "\"%s\" is not an RFC 3339 time (2027-01-01T00:00:00Z)", from);
        rc_from = -1;
    }
    if (rc_cert <= 0 || rc_key <= 0 || rc_from <= 0) {
        free(x->cert_file);
        free(x->key_file);
        free(x);
        return NULL;
    }
    return x;
}

static void free_next(struct ewtp_cert_next *x)
{
    if (x == NULL)
        return;
    free(x->cert_file);
    free(x->key_file);
    free(x);
}

void ewtp_instance_client_pair(const struct ewtp_instance_conf *ic, int64_t now_ms,
                               const char **cert_file, const char **key_file)
{
    if (ic->client_next && now_ms >= ic->client_next->from_ms) {
        *cert_file = ic->client_next->cert_file;
        *key_file = ic->client_next->key_file;
    } else {
        *cert_file = ic->client_cert;
        *key_file = ic->client_key;
    }
}

/* ---- sections ---------------------------------------------------------------------------- */

static void load_listeners(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"address",        "port",  "tls",  "cert_file", "key_file",
                                        "client_ca_file", "admin", "next", NULL};
    struct ewtp_config *c = &l->full->pub;
    const config_setting_t *list = get_list(l, root, "listeners");
    int n = list ? config_setting_length(list) : 0;
    if (list == NULL && config_setting_get_member(root, "listeners") == NULL)
        ERR(l, root, "listeners", "required setting missing: at least one listener");
    else if (list && n == 0)
        ERR(l, list, "listeners", "is empty: at least one listener is needed");
    if (n <= 0)
        return;
    c->listeners = calloc((size_t)n, sizeof(*c->listeners));
    if (c->listeners == NULL) {
        l->oom = true;
        return;
    }
    c->n_listeners = (size_t)n;
    bool any_api = false;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct ewtp_listener_conf *ls = &c->listeners[i];
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "listeners[%d]", i);
        record_line(l, prefix, g);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            ERR(l, g, prefix, "must be a group { address = ...; port = ...; }");
            continue;
        }
        check_known(l, g, prefix, known);
        const char *addr;
        if (get_str(l, g, prefix, "address", true, &addr) > 0)
            ls->address = dup_or_oom(l, addr);
        long long port;
        ls->port = -1;
        if (config_setting_get_member(g, "port") == NULL) {
            char s[96];
            join(s, sizeof(s), prefix, "port");
            ERR(l, g, s, "required setting missing (0 picks a free port)");
        } else if (get_int(l, g, prefix, "port", 0, 0, 65535, &port) > 0) {
            ls->port = (int)port;
        }
        get_file(l, g, prefix, "cert_file", false, &ls->cert_file);
        get_file(l, g, prefix, "key_file", false, &ls->key_file);
        get_file(l, g, prefix, "client_ca_file", false, &ls->client_ca_file);
        bool has_cert = config_setting_get_member(g, "cert_file") != NULL;
        get_bool(l, g, prefix, "tls", has_cert, &ls->tls);
        get_bool(l, g, prefix, "admin", false, &ls->admin);
        if (!ls->admin)
            any_api = true;
        char s[96];
        if (ls->tls) {
            if (config_setting_get_member(g, "cert_file") == NULL) {
                join(s, sizeof(s), prefix, "cert_file");
                ERR(l, g, s, "required when tls = true (the PEM certificate chain)");
            }
            if (config_setting_get_member(g, "key_file") == NULL) {
                join(s, sizeof(s), prefix, "key_file");
                ERR(l, g, s, "required when tls = true (the PEM private key)");
            }
            ls->next = load_next(l, g, prefix, "next", "cert_file", "key_file", false);
        } else {
            if (config_setting_get_member(g, "next") != NULL) {
                join(s, sizeof(s), prefix, "next");
                ERR(l, config_setting_get_member(g, "next"), s,
                    "a next certificate needs tls = true");
            }
            if (config_setting_get_member(g, "client_ca_file") != NULL) {
                join(s, sizeof(s), prefix, "client_ca_file");
                ERR(l, config_setting_get_member(g, "client_ca_file"), s,
                    "client certificates need tls = true");
            }
            /* Bearer tokens would cross the network in clear. */
            if (ls->address && !ls->admin && !is_loopback_address(ls->address)) {
                join(s, sizeof(s), prefix, "tls");
                ERR(l, g, s,
                    "a plain HTTP API listener on %s would carry tenants' tokens in clear: "
                    "set cert_file and key_file, or bind 127.0.0.1 behind a TLS proxy",
                    ls->address);
            }
        }
        for (int j = 0; j < i; j++) {
            const struct ewtp_listener_conf *o = &c->listeners[j];
            if (ls->port > 0 && o->port == ls->port && o->address && ls->address &&
                strcmp(o->address, ls->address) == 0)
                ERR(l, g, prefix, "%s:%d is also listeners[%d]", ls->address, ls->port, j);
        }
    }
    if (!any_api)
        ERR(l, list, "listeners", "every listener is admin = true: none serves the /v1 API");
}

static void load_destinations(struct ld *l, const config_setting_t *g, const char *prefix,
                              struct ewtp_tenant_conf *t)
{
    char setting[512];
    join(setting, sizeof(setting), prefix, "destinations");
    const config_setting_t *m = config_setting_get_member(g, "destinations");
    if (m == NULL) {
        /* Absent: any destination the routes reach. */
        t->destinations = calloc(1, sizeof(char *));
        if (t->destinations == NULL || (t->destinations[0] = dup_or_oom(l, "*")) == NULL)
            l->oom = true;
        else
            t->n_destinations = 1;
        return;
    }
    int type = config_setting_type(m);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_STRING) {
        ERR(l, m, setting, "must be a list of country codes, e.g. [ \"CN\", \"BE\" ]");
        return;
    }
    int n = type == CONFIG_TYPE_STRING ? 1 : config_setting_length(m);
    if (n == 0) {
        ERR(l, m, setting, "is empty: the tenant could send nothing (use [ \"*\" ] for any)");
        return;
    }
    t->destinations = calloc((size_t)n, sizeof(char *));
    if (t->destinations == NULL) {
        l->oom = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e =
            type == CONFIG_TYPE_STRING ? m : config_setting_get_elem(m, (unsigned)i);
        const char *s =
            config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
        if (s == NULL || !is_country(s)) {
            ERR(l, e, setting,
                "%s%s%s is not a destination: use ISO 3166 country codes (\"CN\") or \"*\"",
                s ? "\"" : "", s ? s : "a non-string", s ? "\"" : "");
            continue;
        }
        t->destinations[t->n_destinations++] = dup_or_oom(l, s);
    }
}

/* "SCHEME:VALUE": an upper-case scheme token (letters, digits, '-') as in the message model's
 * party ids, and a value of 1 to 64 printable characters. */
static bool is_party_code(const char *s)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || colon - s > 32 || colon[1] == '\0' || strlen(colon + 1) > 64)
        return false;
    for (const char *p = s; p < colon; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    for (const char *p = colon + 1; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* parties = [ "CN-CUSTOMS:3301960ABC", "TIN:C25845632020" ]: the codes tenant i may act as;
 * a code belongs to one tenant (DECISIONS "Tenants and party codes"). */
static void load_parties(struct ld *l, const config_setting_t *g, const char *prefix, int i,
                         struct ewtp_tenant_conf *t)
{
    char setting[512];
    join(setting, sizeof(setting), prefix, "parties");
    const config_setting_t *m = config_setting_get_member(g, "parties");
    if (m == NULL)
        return;
    int type = config_setting_type(m);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        ERR(l, m, setting,
            "must be a list of party codes, e.g. [ \"CN-CUSTOMS:3301960ABC\", \"TIN:C25845632020\" "
            "]");
        return;
    }
    int n = config_setting_length(m);
    if (n == 0) {
        ERR(l, m, setting,
            "is empty: leave it out to send without sender checks, or list the codes the tenant "
            "may act as");
        return;
    }
    t->parties = calloc((size_t)n, sizeof(char *));
    if (t->parties == NULL) {
        l->oom = true;
        return;
    }
    const struct ewtp_config *c = &l->full->pub;
    for (int k = 0; k < n; k++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)k);
        const char *s =
            config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
        if (s == NULL || !is_party_code(s)) {
            ERR(l, e, setting,
                "%s%s%s is not a party code: SCHEME:VALUE with the scheme in upper case, as in "
                "the messages' party ids (\"CN-CUSTOMS:3301960ABC\")",
                s ? "\"" : "", s ? s : "a non-string", s ? "\"" : "");
            continue;
        }
        for (int j = 0; j <= i; j++) {
            const struct ewtp_tenant_conf *o = &c->tenants[j];
            for (size_t x = 0; x < o->n_parties; x++)
                if (strcmp(o->parties[x], s) == 0 && j == i)
                    ERR(l, e, setting, "lists \"%s\" twice", s);
                else if (strcmp(o->parties[x], s) == 0)
                    ERR(l, e, setting,
                        "\"%s\" is also a party code of tenants[%d]: a code belongs to one tenant",
                        s, j);
        }
        t->parties[t->n_parties++] = dup_or_oom(l, s);
    }
}

/* metrics_token_file (issue 19): the bearer token that may read /metrics on an API listener;
 * checked like a tenant's token, and never one of theirs (a tenant must not read the
 * gateway's totals). */
static void load_metrics_token(struct ld *l, const config_setting_t *root)
{
    struct ewtp_config *c = &l->full->pub;
    get_token(l, root, "", "metrics_token_file", false, &c->metrics_token_file,
              &c->metrics_token_sha256);
    for (size_t i = 0; c->metrics_token_sha256 && i < c->n_tenants; i++)
        if (c->tenants[i].token_sha256 &&
            CRYPTO_memcmp(c->tenants[i].token_sha256, c->metrics_token_sha256, 64) == 0)
            ERR(l, config_setting_get_member(root, "metrics_token_file"), "metrics_token_file",
                "holds the same token as tenants[%zu]: the metrics token must be a token of its "
                "own",
                i);
}

static void load_tenants(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {
        "id",    "token_file",  "cert_subject",        "cert_ca_file", "destinations",
        "kinds", "webhook_url", "webhook_secret_file", "parties",      NULL};
    struct ewtp_config *c = &l->full->pub;
    const config_setting_t *list = get_list(l, root, "tenants");
    int n = list ? config_setting_length(list) : 0;
    if (n <= 0)
        return;
    c->tenants = calloc((size_t)n, sizeof(*c->tenants));
    if (c->tenants == NULL) {
        l->oom = true;
        return;
    }
    c->n_tenants = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct ewtp_tenant_conf *t = &c->tenants[i];
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "tenants[%d]", i);
        record_line(l, prefix, g);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            ERR(l, g, prefix, "must be a group { id = ...; token_file = ...; }");
            continue;
        }
        check_known(l, g, prefix, known);
        const char *id, *subject, *url;
        char s[96];
        if (get_str(l, g, prefix, "id", true, &id) > 0) {
            join(s, sizeof(s), prefix, "id");
            if (!is_name(id, 64))
                ERR(l, config_setting_get_member(g, "id"), s,
                    "\"%s\" is not a tenant id: 1 to 64 letters, digits, '-', '_' or '.'", id);
            t->id = dup_or_oom(l, id);
            for (int j = 0; j < i; j++)
                if (c->tenants[j].id && strcmp(c->tenants[j].id, id) == 0)
                    ERR(l, config_setting_get_member(g, "id"), s,
                        "\"%s\" is also the id of tenants[%d]", id, j);
        }
        get_token(l, g, prefix, "token_file", false, &t->token_file, &t->token_sha256);
        if (get_str(l, g, prefix, "cert_subject", false, &subject) > 0)
            t->cert_subject = dup_or_oom(l, subject);
        /* Issue 19: a client certificate authenticates a tenant only when it chains to that
         * tenant's own CA, not to whichever CA a listener trusts (another customer's CA could
         * issue a certificate with the same subject). */
        get_file(l, g, prefix, "cert_ca_file", false, &t->cert_ca_file);
        if (t->cert_subject && config_setting_get_member(g, "cert_ca_file") == NULL) {
            join(s, sizeof(s), prefix, "cert_ca_file");
            ERR(l, g, s,
                "required with cert_subject: the CA that issues this tenant's client "
                "certificates (one with the same subject from another CA is refused)");
        }
        if (config_setting_get_member(g, "token_file") == NULL &&
            config_setting_get_member(g, "cert_subject") == NULL)
            ERR(l, g, prefix,
                "no credentials: set token_file (bearer token) or cert_subject (client "
                "certificate), or both");
        for (int j = 0; j < i && t->token_sha256; j++)
            if (c->tenants[j].token_sha256 &&
                CRYPTO_memcmp(c->tenants[j].token_sha256, t->token_sha256, 64) == 0) {
                join(s, sizeof(s), prefix, "token_file");
                ERR(l, config_setting_get_member(g, "token_file"), s,
                    "holds the same token as tenants[%d]: each tenant needs its own", j);
            }
        for (int j = 0; j < i && t->cert_subject; j++)
            if (c->tenants[j].cert_subject &&
                strcmp(c->tenants[j].cert_subject, t->cert_subject) == 0) {
                join(s, sizeof(s), prefix, "cert_subject");
                ERR(l, config_setting_get_member(g, "cert_subject"), s,
                    "is also the subject of tenants[%d]", j);
            }
        load_destinations(l, g, prefix, t);
        load_parties(l, g, prefix, i, t);
        get_kinds(l, g, prefix, &t->kinds);
        if (get_str(l, g, prefix, "webhook_url", false, &url) > 0) {
            check_url(l, g, prefix, "webhook_url", url);
            t->webhook_url = dup_or_oom(l, url);
        }
        get_secret(l, g, prefix, "webhook_secret_file", false, &t->webhook_secret_file);
        if (t->webhook_url && config_setting_get_member(g, "webhook_secret_file") == NULL) {
            join(s, sizeof(s), prefix, "webhook_secret_file");
            ERR(l, g, s,
                "required when webhook_url is set: webhooks are always signed, so that the "
                "tenant can tell them from forgeries");
        }
        if (t->webhook_secret_file && config_setting_get_member(g, "webhook_url") == NULL) {
            join(s, sizeof(s), prefix, "webhook_secret_file");
            WARN(l, config_setting_get_member(g, "webhook_secret_file"), s,
                 "is set but webhook_url is not: no webhooks are sent");
        }
    }
}

/* The libpq connection string in file must parse (PQconninfoParse: no server needed); the
 * text itself is not kept (it may hold a password). */
static void check_conninfo(struct ld *l, const config_setting_t *m, const char *file)
{
    char *buf = NULL, *err = NULL;
    size_t n = 0;
    if (ewtp_read_file(file, 64 * 1024, &buf, &n) != 0) {
        ERR(l, m, "store.conninfo_file", "cannot read %s: %s", file, strerror(errno));
        return;
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    PQconninfoOption *o = n ? PQconninfoParse(buf, &err) : NULL;
    if (n == 0) {
        ERR(l, m, "store.conninfo_file",
            "%s is empty: write a libpq connection string into it (e.g. host=db.example "
            "dbname=ewtp user=ewtpd password=... sslmode=verify-full)",
            file);
    } else if (o == NULL) {
        ERR(l, m, "store.conninfo_file", "%s is not a libpq connection string: %.*s", file,
            err ? (int)strcspn(err, "\n") : 13, err ? err : "out of memory");
    }
    PQconninfoFree(o);
    PQfreemem(err);
    OPENSSL_cleanse(buf, n);
    free(buf);
}

static void load_store(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"backend", "path", "conninfo_file", "pool_size", NULL};
    struct ewtp_store_conf *st = &l->full->pub.store;
    const config_setting_t *g = get_group(l, root, "", "store");
    const char *backend = NULL;
    if (g) {
        check_known(l, g, "store", known);
        get_str(l, g, "store", "backend", false, &backend);
    }
    if (backend == NULL)
        backend = "sqlite";
    st->backend = dup_or_oom(l, backend);
    if (strcmp(backend, "sqlite") == 0) {
        if (g == NULL || get_path(l, g, "store", "path", false, &st->path) == 0)
            st->path = dup_or_oom(l, DEFAULT_SQLITE_PATH);
    } else if (strcmp(backend, "postgresql") == 0) {
        long long v = 0;
        get_int(l, g, "store", "pool_size", 4, 1, 64, &v);
        st->pool_size = (unsigned)v;
        if (get_secret(l, g, "store", "conninfo_file", true, &st->conninfo_file) > 0 &&
            st->conninfo_file)
            check_conninfo(l, config_setting_get_member(g, "conninfo_file"), st->conninfo_file);
    } else {
        ERR(l, config_setting_get_member(g, "backend"), "store.backend",
            "\"%s\" is not a store backend (\"sqlite\" or \"postgresql\")", backend);
    }
}

/* evidence = { key = "NAME"; retention_days = N; }; key names one of keys (issue 18). */
static void load_evidence(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"key", "retention_days", NULL};
    struct ewtp_config *c = &l->full->pub;
    const config_setting_t *g = get_group(l, root, "", "evidence");
    const char *key = NULL;
    long long days = 400;
    if (g) {
        check_known(l, g, "evidence", known);
        get_str(l, g, "evidence", "key", false, &key);
        get_int(l, g, "evidence", "retention_days", 400, 1, 36500, &days);
    }
    c->evidence.retention_days = days;
    if (key == NULL)
        return;
    c->evidence.key = dup_or_oom(l, key);
    bool found = false;
    for (size_t i = 0; i < c->n_keys; i++)
        found = found || (c->keys[i].name && strcmp(c->keys[i].name, key) == 0);
    if (!found)
        ERR(l, config_setting_get_member(g, "key"), "evidence.key",
            "\"%s\" is not the name of a key of keys", key);
}

static void load_delivery(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"max_attempts",
                                        "max_age_ms",
                                        "base_delay_ms",
                                        "max_delay_ms",
                                        "request_timeout_ms",
                                        "lease_ms",
                                        "poll_interval_ms",
                                        "scan_interval_ms",
                                        "workers",
                                        "nice",
                                        "max_in_flight",
                                        "wait_timeout_ms",
                                        NULL};
    struct ewtp_delivery_conf *d = &l->full->pub.delivery;
    const config_setting_t *g = get_group(l, root, "", "delivery");
    if (g)
        check_known(l, g, "delivery", known);
    const long long day = 24LL * 3600 * 1000, year = 366 * day;
    long long v;
    get_int(l, g, "delivery", "max_attempts", 10, 1, 1000, &v);
    d->max_attempts = (unsigned)v;
    get_int(l, g, "delivery", "max_age_ms", day, 1000, year, &v);
    d->max_age_ms = v;
    get_int(l, g, "delivery", "base_delay_ms", 1000, 10, day, &v);
    d->base_delay_ms = v;
    get_int(l, g, "delivery", "max_delay_ms", 600000, 10, day, &v);
    d->max_delay_ms = v;
    get_int(l, g, "delivery", "request_timeout_ms", 30000, 100, 3600000, &v);
    d->request_timeout_ms = v;
    get_int(l, g, "delivery", "lease_ms", 300000, 1000, day, &v);
    d->lease_ms = v;
    get_int(l, g, "delivery", "poll_interval_ms", 30000, 100, day, &v);
    d->poll_interval_ms = v;
    get_int(l, g, "delivery", "scan_interval_ms", 200, 10, 3600000, &v);
    d->scan_interval_ms = v;
    get_int(l, g, "delivery", "workers", 8, 1, 256, &v);
    d->workers = (unsigned)v;
    get_int(l, g, "delivery", "nice", 10, 0, 19, &v);
    d->nice = (int)v;
    get_int(l, g, "delivery", "max_in_flight", 64, 1, 100000, &v);
    d->max_in_flight = (unsigned)v;
    get_int(l, g, "delivery", "wait_timeout_ms", day, 1000, year, &v);
    d->wait_timeout_ms = v;
    if (d->base_delay_ms > d->max_delay_ms)
        ERR(l, config_setting_get_member(g, "base_delay_ms"), "delivery.base_delay_ms",
            "%lld is larger than max_delay_ms (%lld)", (long long)d->base_delay_ms,
            (long long)d->max_delay_ms);
    /* A lease shorter than a request would let a second node send it again meanwhile. */
    if (d->lease_ms <= d->request_timeout_ms)
        ERR(l, g ? g : root, "delivery.lease_ms",
            "%lld must be longer than request_timeout_ms (%lld)", (long long)d->lease_ms,
            (long long)d->request_timeout_ms);
}

static void load_limits(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {
        "max_body_bytes",  "max_header_bytes",           "timeout_ms",  "header_timeout_ms",
        "max_connections", "max_connections_per_client", "max_pending", NULL};
    struct ewtp_limits_conf *m = &l->full->pub.limits;
    const config_setting_t *g = get_group(l, root, "", "limits");
    if (g)
        check_known(l, g, "limits", known);
    long long v;
    get_int(l, g, "limits", "max_body_bytes", 1 << 20, 1024, 1LL << 30, &v);
    m->max_body_bytes = (size_t)v;
    get_int(l, g, "limits", "max_header_bytes", 16 << 10, 1024, 1 << 20, &v);
    m->max_header_bytes = (size_t)v;
    get_int(l, g, "limits", "timeout_ms", 30000, 100, 3600000, &v);
    m->timeout_ms = v;
    get_int(l, g, "limits", "header_timeout_ms", 10000, 100, 3600000, &v);
    m->header_timeout_ms = v;
    get_int(l, g, "limits", "max_connections", 1024, 1, 1000000, &v);
    m->max_connections = (unsigned)v;
    get_int(l, g, "limits", "max_connections_per_client", 64, 1, 1000000, &v);
    m->max_connections_per_client = (unsigned)v;
    get_int(l, g, "limits", "max_pending", 10000, 1, 10000000, &v);
    m->max_pending = (unsigned)v;
}

static void check_dir(struct ld *l, const config_setting_t *g, const char *prefix, const char *name,
                      const char *dir)
{
    if (dir == NULL)
        return;
    char setting[512];
    join(setting, sizeof(setting), prefix, name);
    struct stat st;
    if (stat(dir, &st) != 0)
        ERR(l, config_setting_get_member(g, name), setting, "cannot use %s: %s", dir,
            strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        ERR(l, config_setting_get_member(g, name), setting, "%s is not a directory", dir);
}

static void load_auth(struct ld *l, const config_setting_t *pg, const char *iprefix,
                      struct ewtp_auth_conf *a)
{
    static const char *const known[] = {
        "kind",  "token_file",         "token_url",  "client_id", "secret_file",
        "scope", "token_json_pointer", "onbehalfof", NULL};
    char prefix[96];
    join(prefix, sizeof(prefix), iprefix, "auth");
    const config_setting_t *g = get_group(l, pg, iprefix, "auth");
    a->kind = EWTP_AUTH_NONE;
    if (g == NULL)
        return;
    check_known(l, g, prefix, known);
    const char *kind, *v;
    if (get_str(l, g, prefix, "kind", true, &kind) <= 0)
        return;
    if (strcmp(kind, "none") == 0)
        return;
    if (strcmp(kind, "bearer_file") == 0) {
        a->kind = EWTP_AUTH_BEARER_FILE;
        get_secret(l, g, prefix, "token_file", true, &a->token_file);
        return;
    }
    if (strcmp(kind, "oauth2") == 0)
        a->kind = EWTP_AUTH_OAUTH2;
    else if (strcmp(kind, "json_login") == 0)
        a->kind = EWTP_AUTH_JSON_LOGIN;
    else {
        char s[128];
        join(s, sizeof(s), prefix, "kind");
        ERR(l, config_setting_get_member(g, "kind"), s,
            "\"%s\" is not an authentication kind (\"none\", \"bearer_file\", \"oauth2\", "
            "\"json_login\")",
            kind);
        return;
    }
    if (get_str(l, g, prefix, "token_url", true, &v) > 0) {
        check_url(l, g, prefix, "token_url", v);
        a->token_url = dup_or_oom(l, v);
    }
    if (get_str(l, g, prefix, "client_id", true, &v) > 0)
        a->client_id = dup_or_oom(l, v);
    get_secret(l, g, prefix, "secret_file", true, &a->secret_file);
    if (get_str(l, g, prefix, "scope", false, &v) > 0)
        a->scope = dup_or_oom(l, v);
    if (get_str(l, g, prefix, "onbehalfof", false, &v) > 0) {
        /* A header value: TIN[:registration number], letters and digits only, so that nothing
         * can smuggle a header line break into the token request. */
        size_t n = strlen(v), colon = strcspn(v, ":");
        bool ok = n > 0 && n <= 64 && colon > 0 && (colon == n || colon + 1 < n);
        for (size_t i = 0; ok && i < n; i++)
            ok = (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z') ||
                 (v[i] >= '0' && v[i] <= '9') || (v[i] == ':' && i == colon) || v[i] == '-';
        if (!ok || a->kind != EWTP_AUTH_OAUTH2) {
            char s[128];
            join(s, sizeof(s), prefix, "onbehalfof");
            if (a->kind != EWTP_AUTH_OAUTH2)
                ERR(l, config_setting_get_member(g, "onbehalfof"), s,
                    "onbehalfof belongs to kind \"oauth2\" only");
            else
                ERR(l, config_setting_get_member(g, "onbehalfof"), s,
                    "\"%s\" is not TIN or TIN:registration-number (letters, digits, '-')", v);
        } else {
            a->onbehalfof = dup_or_oom(l, v);
        }
    }
    if (a->kind == EWTP_AUTH_JSON_LOGIN) {
        if (get_str(l, g, prefix, "token_json_pointer", false, &v) <= 0)
            v = "/token";
        else if (v[0] != '/') {
            char s[128];
            join(s, sizeof(s), prefix, "token_json_pointer");
            ERR(l, config_setting_get_member(g, "token_json_pointer"), s,
                "\"%s\" is not a JSON pointer (it starts with '/')", v);
        }
        a->token_json_pointer = dup_or_oom(l, v);
    }
}

/* transport "amqp": the broker, where requests go and where receipts come from. */
static void load_amqp(struct ld *l, const config_setting_t *pg, const char *iprefix,
                      struct ewtp_amqp_conf *a)
{
    static const char *const known[] = {"url",         "credentials_file",   "exchange",
                                        "routing_key", "receipt_queue",      "content_type",
                                        "heartbeat_s", "connect_timeout_ms", NULL};
    char prefix[96], s[160];
    join(prefix, sizeof(prefix), iprefix, "amqp");
    const config_setting_t *g = get_group(l, pg, iprefix, "amqp");
    if (g == NULL) {
        if (config_setting_get_member(pg, "amqp") == NULL)
            ERR(l, pg, prefix,
                "required with transport \"amqp\": amqp = { url = \"amqp://...\"; exchange = "
                "\"...\"; routing_key = \"...\"; }");
        return;
    }
    check_known(l, g, prefix, known);
    const char *v;
    if (get_str(l, g, prefix, "url", true, &v) > 0) {
        struct ewtp_amqp_url u;
        const char *why = NULL;
        join(s, sizeof(s), prefix, "url");
        const config_setting_t *m = config_setting_get_member(g, "url");
        if (ewtp_amqp_url_parse(v, &u, &why) != 0) {
            ERR(l, m, s, "%s: %s", v, why);
        } else {
            /* As for https endpoints: cleartext only to this host. */
            if (!u.tls && !is_loopback_address(u.host))
                ERR(l, m, s,
                    "%s: plain amqp:// is only allowed to a loopback address (127.0.0.1, ::1, "
                    "localhost); use amqps://",
                    v);
            ewtp_amqp_url_clear(&u);
            a->url = dup_or_oom(l, v);
        }
    }
    get_secret(l, g, prefix, "credentials_file", false, &a->credentials_file);
    if (get_str(l, g, prefix, "exchange", false, &v) > 0)
        a->exchange = dup_or_oom(l, v);
    if (get_str(l, g, prefix, "routing_key", a->exchange == NULL, &v) > 0)
        a->routing_key = dup_or_oom(l, v);
    if (get_str(l, g, prefix, "receipt_queue", false, &v) > 0)
        a->receipt_queue = dup_or_oom(l, v);
    if (get_str(l, g, prefix, "content_type", false, &v) <= 0)
        v = "application/xml";
    a->content_type = dup_or_oom(l, v);
    long long n;
    get_int(l, g, prefix, "heartbeat_s", 30, 0, 3600, &n);
    a->heartbeat_s = (int)n;
    get_int(l, g, prefix, "connect_timeout_ms", 10000, 100, 600000, &n);
    a->connect_timeout_ms = n;
}

static void load_instances(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {
        "name",      "plugin",   "file",        "settings",           "transport",
        "endpoint",  "ca_file",  "client_cert", "client_key",         "client_next",
        "spool_out", "spool_in", "auth",        "inbound_token_file", "amqp",
        NULL};
    struct ewtp_config *c = &l->full->pub;
    const config_setting_t *list = get_list(l, root, "plugins");
    int n = list ? config_setting_length(list) : 0;
    if (n <= 0)
        return;
    c->instances = calloc((size_t)n, sizeof(*c->instances));
    if (c->instances == NULL) {
        l->oom = true;
        return;
    }
    c->n_instances = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct ewtp_instance_conf *in = &c->instances[i];
        char prefix[64], s[128];
        snprintf(prefix, sizeof(prefix), "plugins[%d]", i);
        record_line(l, prefix, g);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            ERR(l, g, prefix, "must be a group { name = ...; plugin = ...; }");
            continue;
        }
        check_known(l, g, prefix, known);
        const char *v;
        if (get_str(l, g, prefix, "name", true, &v) > 0) {
            join(s, sizeof(s), prefix, "name");
            /* It appears in /v1/inbound/<name> and in file names. */
            if (!is_name(v, 64))
                ERR(l, config_setting_get_member(g, "name"), s,
                    "\"%s\" is not an instance name: 1 to 64 letters, digits, '-', '_' or '.'", v);
            for (int j = 0; j < i; j++)
                if (c->instances[j].name && strcmp(c->instances[j].name, v) == 0)
                    ERR(l, config_setting_get_member(g, "name"), s,
                        "\"%s\" is also the name of plugins[%d]", v, j);
            in->name = dup_or_oom(l, v);
        }
        bool has_file = config_setting_get_member(g, "file") != NULL;
        if (get_str(l, g, prefix, "plugin", !has_file, &v) > 0) {
            join(s, sizeof(s), prefix, "plugin");
            if (!is_name(v, 32) || strchr(v, '.'))
                ERR(l, config_setting_get_member(g, "plugin"), s,
                    "\"%s\" is not a plugin name (\"cn\", \"zz\")", v);
            else
                in->plugin = dup_or_oom(l, v);
        }
        if (has_file) {
            get_file(l, g, prefix, "file", true, &in->file);
        } else if (in->plugin && c->plugin_dir) {
            in->file = fmt_or_oom(l, "%s/ewtp-%s.so", c->plugin_dir, in->plugin);
            if (in->file && access(in->file, R_OK) != 0) {
                join(s, sizeof(s), prefix, "plugin");
                ERR(l, config_setting_get_member(g, "plugin"), s,
                    "cannot read %s: %s (is the plugin installed? plugin_dir is %s)", in->file,
                    strerror(errno), c->plugin_dir);
            }
        }
        const config_setting_t *sg = config_setting_get_member(g, "settings");
        if (sg != NULL && config_setting_type(sg) != CONFIG_TYPE_GROUP) {
            join(s, sizeof(s), prefix, "settings");
            ERR(l, sg, s, "must be a group { ... }");
        } else {
            char *why = NULL;
            in->settings = ewtp_conf_settings(sg, &why);
            if (in->settings == NULL) {
                join(s, sizeof(s), prefix, "settings");
                /* why already names file and line. */
                ewtp_errors_add(l->why, "/plugins", "config", "%s", why ? why : "out of memory");
                free(why);
            }
        }
        const char *transport = "https";
        join(s, sizeof(s), prefix, "transport");
        if (get_str(l, g, prefix, "transport", false, &v) > 0)
            transport = v;
        if (strcmp(transport, "https") == 0) {
            in->transport = EWTP_TRANSPORT_HTTPS;
            if (get_str(l, g, prefix, "endpoint", true, &v) > 0) {
                check_url(l, g, prefix, "endpoint", v);
                in->endpoint = dup_or_oom(l, v);
            }
        } else if (strcmp(transport, "amqp") == 0) {
            in->transport = EWTP_TRANSPORT_AMQP;
            load_amqp(l, g, prefix, &in->amqp);
        } else if (strcmp(transport, "spool") == 0) {
            in->transport = EWTP_TRANSPORT_SPOOL;
            if (get_path(l, g, prefix, "spool_out", true, &in->spool_out) > 0)
                check_dir(l, g, prefix, "spool_out", in->spool_out);
            if (get_path(l, g, prefix, "spool_in", false, &in->spool_in) > 0)
                check_dir(l, g, prefix, "spool_in", in->spool_in);
            if (config_setting_get_member(g, "endpoint") != NULL) {
                join(s, sizeof(s), prefix, "endpoint");
                WARN(l, config_setting_get_member(g, "endpoint"), s,
                     "is ignored with transport \"spool\"");
            }
        } else {
            ERR(l, config_setting_get_member(g, "transport"), s,
                "\"%s\" is not a transport (\"https\", \"spool\" or \"amqp\")", transport);
        }
        if (in->transport != EWTP_TRANSPORT_SPOOL && config_setting_get_member(g, "spool_in"))
            if (get_path(l, g, prefix, "spool_in", false, &in->spool_in) > 0)
                check_dir(l, g, prefix, "spool_in", in->spool_in);
        get_file(l, g, prefix, "ca_file", false, &in->ca_file);
        get_file(l, g, prefix, "client_cert", false, &in->client_cert);
        get_secret(l, g, prefix, "client_key", false, &in->client_key);
        if ((config_setting_get_member(g, "client_cert") == NULL) !=
            (config_setting_get_member(g, "client_key") == NULL))
            ERR(l, g, prefix, "client_cert and client_key go together (mTLS to the authority)");
        if (config_setting_get_member(g, "client_next") != NULL &&
            config_setting_get_member(g, "client_cert") == NULL) {
            join(s, sizeof(s), prefix, "client_next");
            ERR(l, config_setting_get_member(g, "client_next"), s,
                "a next client certificate needs client_cert and client_key (the current pair)");
        } else {
            in->client_next =
                load_next(l, g, prefix, "client_next", "client_cert", "client_key", true);
        }
        load_auth(l, g, prefix, &in->auth);
        get_token(l, g, prefix, "inbound_token_file", false, &in->inbound_token_file,
                  &in->inbound_token_sha256);
    }
}

static void load_routes(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"tenant", "destination", "kinds", "instance", NULL};
    struct ewtp_config *c = &l->full->pub;
    const config_setting_t *list = get_list(l, root, "routes");
    int n = list ? config_setting_length(list) : 0;
    if (n <= 0)
        return;
    c->routes = calloc((size_t)n, sizeof(*c->routes));
    if (c->routes == NULL) {
        l->oom = true;
        return;
    }
    c->n_routes = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct ewtp_route_conf *r = &c->routes[i];
        char prefix[64], s[128];
        snprintf(prefix, sizeof(prefix), "routes[%d]", i);
        record_line(l, prefix, g);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            ERR(l, g, prefix, "must be a group { destination = ...; instance = ...; }");
            continue;
        }
        check_known(l, g, prefix, known);
        const char *v;
        if (get_str(l, g, prefix, "tenant", false, &v) <= 0)
            v = "*";
        r->tenant = dup_or_oom(l, v);
        if (strcmp(v, "*") != 0 && ewtp_config_tenant(c, v) == NULL) {
            join(s, sizeof(s), prefix, "tenant");
            ERR(l, config_setting_get_member(g, "tenant"), s,
                "no tenant has the id \"%s\" (tenants list the ids; \"*\" is every tenant)", v);
        }
        if (get_str(l, g, prefix, "destination", true, &v) > 0) {
            r->destination = dup_or_oom(l, v);
            if (!is_country(v)) {
                join(s, sizeof(s), prefix, "destination");
                ERR(l, config_setting_get_member(g, "destination"), s,
                    "\"%s\" is not a destination: an ISO 3166 country code (\"CN\") or \"*\"", v);
            }
        }
        get_kinds(l, g, prefix, &r->kinds);
        if (get_str(l, g, prefix, "instance", true, &v) > 0) {
            r->instance = dup_or_oom(l, v);
            if (ewtp_config_instance(c, v) == NULL) {
                join(s, sizeof(s), prefix, "instance");
                ERR(l, config_setting_get_member(g, "instance"), s,
                    "no plugin instance is named \"%s\" (see plugins[].name)", v);
            }
        }
    }
}

/* keys[i].remote = { url; key; client_cert; client_key; ca_file; timeout_ms; }: the agent that
 * holds the key (ewtp-signer). NULL when absent; problems reported. */
static struct ewtp_key_remote_conf *load_remote(struct ld *l, const config_setting_t *key,
                                                const char *key_prefix)
{
    static const char *const known[] = {"url",     "key",        "client_cert", "client_key",
                                        "ca_file", "timeout_ms", NULL};
    char prefix[96], s[160];
    join(prefix, sizeof(prefix), key_prefix, "remote");
    const config_setting_t *g = get_group(l, key, key_prefix, "remote");
    if (g == NULL)
        return NULL;
    check_known(l, g, prefix, known);
    struct ewtp_key_remote_conf *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        l->oom = true;
        return NULL;
    }
    const char *v;
    if (get_str(l, g, prefix, "url", true, &v) > 0) {
        r->url = dup_or_oom(l, v);
        if (strncmp(v, "https://", 8) != 0 || v[8] == '\0' || v[8] == '/') {
            join(s, sizeof(s), prefix, "url");
            ERR(l, config_setting_get_member(g, "url"), s,
                "must be https://HOST:PORT (the agent is reached over mutually authenticated "
                "TLS only)");
        }
    }
    if (get_str(l, g, prefix, "key", true, &v) > 0)
        r->key = dup_or_oom(l, v);
    get_file(l, g, prefix, "client_cert", true, &r->client_cert);
    get_secret(l, g, prefix, "client_key", true, &r->client_key);
    get_file(l, g, prefix, "ca_file", true, &r->ca_file);
    long long t;
    get_int(l, g, prefix, "timeout_ms", 10000, 100, 600000, &t);
    r->timeout_ms = t;
    return r;
}

static void free_remote(struct ewtp_key_remote_conf *r)
{
    if (r == NULL)
        return;
    free(r->url);
    free(r->key);
    free(r->client_cert);
    free(r->client_key);
    free(r->ca_file);
    free(r);
}

static void load_keys(struct ld *l, const config_setting_t *root)
{
    static const char *const known[] = {"name", "key", "cert", "command", "remote", "next", NULL};
    struct ewtp_config *c = &l->full->pub;
    const config_setting_t *list = get_list(l, root, "keys");
    int n = list ? config_setting_length(list) : 0;
    if (n <= 0)
        return;
    c->keys = calloc((size_t)n, sizeof(*c->keys));
    if (c->keys == NULL) {
        l->oom = true;
        return;
    }
    c->n_keys = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct ewtp_key_conf *k = &c->keys[i];
        char prefix[64], s[128];
        snprintf(prefix, sizeof(prefix), "keys[%d]", i);
        record_line(l, prefix, g);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            ERR(l, g, prefix, "must be a group { name = ...; key = ...; cert = ...; }");
            continue;
        }
        check_known(l, g, prefix, known);
        const char *v;
        if (get_str(l, g, prefix, "name", true, &v) > 0) {
            k->name = dup_or_oom(l, v);
            for (int j = 0; j < i; j++)
                if (c->keys[j].name && strcmp(c->keys[j].name, v) == 0) {
                    join(s, sizeof(s), prefix, "name");
                    ERR(l, config_setting_get_member(g, "name"), s,
                        "\"%s\" is also the name of keys[%d]", v, j);
                }
        }
        bool has_key = config_setting_get_member(g, "key") != NULL;
        bool has_cmd = config_setting_get_member(g, "command") != NULL;
        bool has_remote = config_setting_get_member(g, "remote") != NULL;
        if (has_key + has_cmd + has_remote > 1)
            ERR(l, g, prefix,
                "set one of key (a PEM file), command (an external signer) or remote (an "
                "ewtp-signer agent)");
        else if (!has_key && !has_cmd && !has_remote)
            ERR(l, g, prefix,
                "needs key (a PEM private key file), command (an external signer) or remote "
                "(an ewtp-signer agent)");
        get_secret(l, g, prefix, "key", false, &k->key_file);
        get_file(l, g, prefix, "cert", has_key || has_remote, &k->cert_file);
        if (get_str(l, g, prefix, "command", false, &v) > 0)
            k->command = dup_or_oom(l, v);
        if (has_remote)
            k->remote = load_remote(l, g, prefix);
        if (config_setting_get_member(g, "next") != NULL && !has_key) {
            join(s, sizeof(s), prefix, "next");
            ERR(l, config_setting_get_member(g, "next"), s,
                "a next key and certificate need key (a PEM file): an external signer "
                "changes its key itself");
        } else {
            k->next = load_next(l, g, prefix, "next", "cert", "key", true);
        }
    }
}

/* plugin_dir, state_dir, admin_socket. */
static void load_top(struct ld *l, const config_setting_t *root)
{
    struct ewtp_config *c = &l->full->pub;
    if (get_path(l, root, "", "plugin_dir", false, &c->plugin_dir) > 0)
        check_dir(l, root, "", "plugin_dir", c->plugin_dir);
    else if (c->plugin_dir == NULL) {
        char *d = NULL;
        ewtp_config_default_plugin_dir(&d);
        if (d == NULL)
            l->oom = true;
        c->plugin_dir = d;
    }
    record_line(l, "plugin_dir", config_setting_get_member(root, "plugin_dir"));
    if (get_path(l, root, "", "state_dir", false, &c->state_dir) == 0 && c->state_dir == NULL)
        c->state_dir = dup_or_oom(l, DEFAULT_STATE_DIR);
    record_line(l, "state_dir", config_setting_get_member(root, "state_dir"));
    if (get_path(l, root, "", "admin_socket", false, &c->admin_socket) == 0 &&
        c->admin_socket == NULL && c->state_dir)
        c->admin_socket = fmt_or_oom(l, "%s/ewtpd.sock", c->state_dir);
    /* sun_path holds 108 bytes. */
    if (c->admin_socket && strlen(c->admin_socket) >= 108)
        ERR(l, config_setting_get_member(root, "admin_socket"), "admin_socket",
            "%s is too long for a Unix socket path (107 bytes at most)", c->admin_socket);
}

static char *abs_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return NULL;
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash == copy)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = copy;
    }
    char *abs = realpath(dir, NULL);
    free(copy);
    return abs;
}

/* The @include lines of file (libconfig resolves them against include_dir), each checked to
 * name a readable regular file, recursively. libconfig itself calls exit() when an include
 * names a directory (hyperrealm/libconfig#292): a reload must refuse the file, not end ewtpd. */
static int check_includes_in(const char *file, const char *include_dir, unsigned depth,
                             struct ewtp_errors *why)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return 0; /* unreadable files are reported by the parse itself */
    char line[4096];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "@include", 8) != 0)
            continue;
        p += 8;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
        if (end == NULL)
            continue; /* malformed: the parser reports it with its line */
        char *name = strndup(p + 1, (size_t)(end - p - 1));
        char *target = NULL;
        if (name == NULL ||
            asprintf(&target, "%s%s%s", name[0] == '/' || include_dir == NULL ? "" : include_dir,
                     name[0] == '/' || include_dir == NULL ? "" : "/", name) < 0) {
            free(name);
            fclose(f);
            return -EWTP_ENOMEM;
        }
        struct stat st;
        bool missing = stat(target, &st) != 0;
        if (missing || !S_ISREG(st.st_mode) || access(target, R_OK) != 0) {
            ewtp_errors_add(why, "", "config", "%s:%u: @include \"%s\": %s", file, lineno, name,
                            missing ? "no such file" : "not a readable regular file");
            rc = -EWTP_EINVAL;
        } else if (depth >= 8) {
            ewtp_errors_add(why, "", "config", "%s:%u: @include \"%s\": nested too deep", file,
                            lineno, name);
            rc = -EWTP_EINVAL;
        } else if (check_includes_in(target, include_dir, depth + 1, why) != 0) {
            rc = -EWTP_EINVAL;
        }
        free(name);
        free(target);
    }
    fclose(f);
    return rc;
}

int ewtp_config_check_includes(const char *path, struct ewtp_errors *why)
{
    char *dir = abs_dir_of(path);
    int rc = check_includes_in(path, dir, 0, why);
    free(dir);
    return rc;
}

/* dev_mode relaxes secret checks: only when nothing listens beyond this machine. */
static void check_dev_mode(struct ld *l, const config_setting_t *root)
{
    const struct ewtp_config *c = &l->full->pub;
    if (!l->dev_mode)
        return;
    for (size_t i = 0; i < c->n_listeners; i++) {
        const char *a = c->listeners[i].address;
        if (a == NULL || !is_loopback_address(a))
            ERR(l, config_setting_get_member(root, "dev_mode"), "dev_mode",
                "is only allowed when every listener is on loopback; listener %zu is on %s", i,
                a ? a : "every address");
    }
}

int ewtp_config_load(const char *path, struct ewtp_config **out, struct ewtp_errors *why)
{
    *out = NULL;
    if (why == NULL) {
        /* The checks below need somewhere to count errors. */
        struct ewtp_errors *own = ewtp_errors_new();
        if (own == NULL)
            return -EWTP_ENOMEM;
        int rc = ewtp_config_load(path, out, own);
        ewtp_errors_free(own);
        return rc;
    }
    struct ld l = {.path = path, .why = why};
    l.full = calloc(1, sizeof(*l.full));
    if (l.full == NULL)
        return -EWTP_ENOMEM;
    if ((l.full->pub.path = strdup(path)) == NULL) {
        ewtp_config_free(&l.full->pub);
        return -EWTP_ENOMEM;
    }
    l.dir = abs_dir_of(path);
    if (l.dir == NULL || access(path, R_OK) != 0) {
        ewtp_errors_add(why, "", "config", "%s: cannot read the configuration: %s", path,
                        strerror(errno));
        free(l.dir);
        ewtp_config_free(&l.full->pub);
        return -EWTP_EIO;
    }
    config_t cfg;
    config_init(&cfg);
    /* @include "x.conf" is relative to this file too. */
    config_set_include_dir(&cfg, l.dir);
    size_t before = ewtp_errors_blocking(why);
    int rc = check_includes_in(path, l.dir, 0, why);
    if (rc != 0) {
        /* not parsed at all: see check_includes_in */
    } else if (config_read_file(&cfg, path) != CONFIG_TRUE) {
        const char *f = config_error_file(&cfg);
        if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
            ewtp_errors_add(why, "", "config", "%s: cannot read the configuration: %s",
                            f ? f : path, strerror(errno));
        else
            ewtp_errors_add(why, "", "config", "%s:%d: %s", f ? f : path, config_error_line(&cfg),
                            config_error_text(&cfg));
        rc = config_error_type(&cfg) == CONFIG_ERR_FILE_IO ? -EWTP_EIO : -EWTP_EINVAL;
    } else {
        const config_setting_t *root = config_root_setting(&cfg);
        static const char *const known[] = {"plugin_dir",
                                            "state_dir",
                                            "admin_socket",
                                            "listeners",
                                            "tenants",
                                            "store",
                                            "delivery",
                                            "limits",
                                            "plugins",
                                            "routes",
                                            "keys",
                                            "dev_mode",
                                            "evidence",
                                            "metrics_token_file",
                                            NULL};
        check_known(&l, root, "", known);
        get_bool(&l, root, "", "dev_mode", false, &l.dev_mode);
        l.full->pub.dev_mode = l.dev_mode;
        load_top(&l, root);
        load_listeners(&l, root);
        check_dev_mode(&l, root);
        load_tenants(&l, root);
        load_metrics_token(&l, root);
        load_store(&l, root);
        load_delivery(&l, root);
        load_limits(&l, root);
        load_keys(&l, root);
        load_evidence(&l, root);
        load_instances(&l, root);
        load_routes(&l, root);
        if (l.oom || ewtp_errors_oom(why))
            rc = -EWTP_ENOMEM;
        else if (ewtp_errors_blocking(why) > before)
            rc = -EWTP_EINVAL;
    }
    config_destroy(&cfg);
    free(l.dir);
    if (rc != 0) {
        ewtp_config_free(&l.full->pub);
        return rc;
    }
    *out = &l.full->pub;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void ewtp_config_free(struct ewtp_config *c)
{
    if (c == NULL)
        return;
    struct config_full *f = (struct config_full *)c;
    for (size_t i = 0; i < c->n_listeners; i++) {
        struct ewtp_listener_conf *x = &c->listeners[i];
        free(x->address);
        free(x->cert_file);
        free(x->key_file);
        free(x->client_ca_file);
        free_next(x->next);
    }
    free(c->listeners);
    for (size_t i = 0; i < c->n_tenants; i++) {
        struct ewtp_tenant_conf *t = &c->tenants[i];
        free(t->id);
        free(t->token_sha256);
        free(t->token_file);
        free(t->cert_subject);
        free(t->cert_ca_file);
        free_strv(t->destinations, t->n_destinations);
        free_strv(t->parties, t->n_parties);
        free(t->webhook_url);
        free(t->webhook_secret_file);
    }
    free(c->tenants);
    for (size_t i = 0; i < c->n_instances; i++) {
        struct ewtp_instance_conf *in = &c->instances[i];
        free(in->name);
        free(in->plugin);
        free(in->file);
        ewtp_settings_free(in->settings);
        free(in->endpoint);
        free(in->ca_file);
        free(in->client_cert);
        free(in->client_key);
        free_next(in->client_next);
        free(in->spool_out);
        free(in->spool_in);
        free(in->auth.token_file);
        free(in->auth.token_url);
        free(in->auth.client_id);
        free(in->auth.secret_file);
        free(in->auth.scope);
        free(in->auth.token_json_pointer);
        free(in->auth.onbehalfof);
        free(in->inbound_token_file);
        free(in->inbound_token_sha256);
        free(in->amqp.url);
        free(in->amqp.credentials_file);
        free(in->amqp.exchange);
        free(in->amqp.routing_key);
        free(in->amqp.receipt_queue);
        free(in->amqp.content_type);
    }
    free(c->instances);
    for (size_t i = 0; i < c->n_routes; i++) {
        free(c->routes[i].tenant);
        free(c->routes[i].destination);
        free(c->routes[i].instance);
    }
    free(c->routes);
    for (size_t i = 0; i < c->n_keys; i++) {
        free(c->keys[i].name);
        free(c->keys[i].key_file);
        free(c->keys[i].cert_file);
        free(c->keys[i].command);
        free_remote(c->keys[i].remote);
        free_next(c->keys[i].next);
    }
    free(c->keys);
    free(c->evidence.key);
    free(c->store.backend);
    free(c->store.path);
    free(c->store.conninfo_file);
    free(c->path);
    free(c->plugin_dir);
    free(c->state_dir);
    free(c->admin_socket);
    free(c->metrics_token_file);
    free(c->metrics_token_sha256);
    for (size_t i = 0; i < f->n_lines; i++)
        free(f->lines[i].setting);
    free(f->lines);
    free(f);
}

const struct ewtp_tenant_conf *ewtp_config_tenant(const struct ewtp_config *c, const char *id)
{
    for (size_t i = 0; c && id && i < c->n_tenants; i++)
        if (c->tenants[i].id && strcmp(c->tenants[i].id, id) == 0)
            return &c->tenants[i];
    return NULL;
}

const struct ewtp_instance_conf *ewtp_config_instance(const struct ewtp_config *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_instances; i++)
        if (c->instances[i].name && strcmp(c->instances[i].name, name) == 0)
            return &c->instances[i];
    return NULL;
}

unsigned ewtp_config_line(const struct ewtp_config *c, const char *setting)
{
    const struct config_full *f = (const struct config_full *)c;
    for (size_t i = 0; f && setting && i < f->n_lines; i++)
        if (strcmp(f->lines[i].setting, setting) == 0)
            return f->lines[i].line;
    return 0;
}

#ifndef EWTP_SYSTEM_PLUGIN_DIR
#define EWTP_SYSTEM_PLUGIN_DIR "/usr/lib/ewtp/plugins"
#endif

/* build/bin/ewtpctl finds build/plugins; an installed one the system directory. */
static char *default_plugin_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char *dir = NULL;
            struct stat st;
            if (asprintf(&dir, "%s/../plugins", exe) > 0 && stat(dir, &st) == 0 &&
                S_ISDIR(st.st_mode))
                return dir;
            free(dir);
        }
    }
    return strdup(EWTP_SYSTEM_PLUGIN_DIR);
}

const char *ewtp_config_default_plugin_dir(char **dir)
{
    *dir = default_plugin_dir();
    return *dir;
}
