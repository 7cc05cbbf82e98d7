/* certs.c — the configured certificates, their expiry and their successors (certs.h). */
#include "certs.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "util.h"

#define DAY_S INT64_C(86400)

/* A certificate chain (leaf first) with its private key: what a TLS listener serves. */
struct tls_pair {
    X509 *leaf;
    STACK_OF(X509) * chain; /* intermediates, maybe empty */
    EVP_PKEY *key;
};

struct listener_tls {
    bool present; /* a TLS listener */
    struct tls_pair cur, next;
    bool has_next;
    int64_t from_ms;
};

struct ewtp_certs {
    struct ewtp_cert_info *v;
    size_t n, cap;
    struct listener_tls *ls;
    size_t n_ls;
    int64_t built_ms;
    const struct ewtp_config *conf; /* for messages while loading only */
    struct ewtp_errors *why;
    int rc;
};

const char *ewtp_cert_use_name(enum ewtp_cert_use use)
{
    switch (use) {
    case EWTP_CERT_TLS:
        return "tls";
    case EWTP_CERT_CLIENT:
        return "client";
    case EWTP_CERT_SIGNING:
        return "signing";
    }
    return "?";
}

const char *ewtp_cert_colon_hex(const char *hex, char *buf, size_t size)
{
    size_t o = 0, n = strlen(hex);
    if (size == 0)
        return buf;
    /* An odd number of digits (a serial such as "5") gets a leading zero. */
    for (size_t i = 0; i < n && o + 3 < size; i++) {
        if (i == 0 && n % 2 == 1)
            buf[o++] = '0';
        else if ((i + n % 2) % 2 == 0 && o > 0)
            buf[o++] = ':';
        buf[o++] = (char)toupper((unsigned char)hex[i]);
    }
    buf[o] = '\0';
    return buf;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* Never prompt for a passphrase (an encrypted key is refused: no terminal under systemd). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "not PEM";
}

/* "FILE:LINE: setting: reason" about a member of list entry `entry` (its line comes from the
 * configuration: "listeners[0].next" or "listeners[0]"). */
__attribute__((format(printf, 4, 5))) static void problem(struct ewtp_certs *s, const char *entry,
                                                          const char *setting, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ERR_clear_error();
    unsigned line = ewtp_config_line(s->conf, entry);
    char ptr[256];
    size_t o = 0;
    for (const char *p = setting; *p && o + 2 < sizeof(ptr); p++) {
        if (p == setting || *p == '[' || *p == '.')
            ptr[o++] = '/';
        if (*p != '[' && *p != ']' && *p != '.')
            ptr[o++] = *p;
    }
    ptr[o] = '\0';
    const char *file = s->conf->path ? s->conf->path : "config";
    if (line)
        ewtp_errors_add(s->why, ptr, "config", "%s:%u: %s: %s", file, line, setting, msg);
    else
        ewtp_errors_add(s->why, ptr, "config", "%s: %s: %s", file, setting, msg);
    s->rc = -EWTP_EINVAL;
}

/* The certificates of a PEM file: the first into *leaf, the others (if chain) into *chain. */
static int read_chain(const char *file, X509 **leaf, STACK_OF(X509) * *chain)
{
    *leaf = NULL;
    if (chain)
        *chain = NULL;
    BIO *b = BIO_new_file(file, "r");
    if (b == NULL)
        return -EWTP_EIO;
    *leaf = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL);
    if (*leaf == NULL) {
        BIO_free(b);
        return -EWTP_ECRYPTO;
    }
    if (chain) {
        *chain = sk_X509_new_null();
        X509 *x;
        while (*chain && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL)
            if (!sk_X509_push(*chain, x))
                X509_free(x);
        ERR_clear_error(); /* the end of the file reads as "no start line" */
    }
    BIO_free(b);
    if (chain && *chain == NULL) {
        X509_free(*leaf);
        *leaf = NULL;
        return -EWTP_ENOMEM;
    }
    return 0;
}

static EVP_PKEY *read_key(const char *file)
{
    BIO *b = BIO_new_file(file, "r");
    if (b == NULL)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    return k;
}

static void pair_free(struct tls_pair *p)
{
    X509_free(p->leaf);
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    memset(p, 0, sizeof(*p));
}

static int64_t asn1_time_ms(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

static char *name_text(const X509_NAME *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return NULL;
    char *out = NULL;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        char *data;
        long len = BIO_get_mem_data(b, &data);
        out = ewtp_asprintf("%.*s", (int)len, data);
    }
    BIO_free(b);
    return out;
}

static char *serial_hex(const X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    char *out = hex ? strdup(hex) : NULL;
    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}

/* Appends the facts of x as one entry (strings copied). */
static int add_info(struct ewtp_certs *s, const X509 *x, enum ewtp_cert_use use, const char *name,
                    const char *setting, const char *file, bool next, int64_t from_ms)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct ewtp_cert_info *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return -EWTP_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    struct ewtp_cert_info *ci = &s->v[s->n];
    memset(ci, 0, sizeof(*ci));
    ci->use = use;
    ci->next = next;
    ci->from_ms = from_ms;
    ci->name = strdup(name);
    ci->setting = strdup(setting);
    ci->file = strdup(file);
    ci->subject = name_text(X509_get_subject_name(x));
    ci->serial = serial_hex(x);
    ci->not_before_ms = asn1_time_ms(X509_get0_notBefore(x));
    ci->not_after_ms = asn1_time_ms(X509_get0_notAfter(x));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (X509_digest(x, EVP_sha256(), md, &md_len) == 1)
        for (unsigned i = 0; i < md_len && i < 32; i++)
            snprintf(ci->sha256 + 2 * i, 3, "%02x", md[i]);
    s->n++;
    if (!ci->name || !ci->setting || !ci->file || !ci->subject || !ci->serial)
        return -EWTP_ENOMEM;
    return 0;
}

/* Reads cert_file (and key_file when given: it must match) of list entry `entry`; members
 * cert_member and key_member name them in messages. The pair is kept in *keep when not NULL
 * (listeners), else dropped. 0, or reported; a certificate that cannot be read is skipped
 * silently when quiet (a current signing key's: the key store reports it, keys.h). */
static int load_one(struct ewtp_certs *s, const char *entry, const char *cert_member,
                    const char *key_member, const char *cert_file, const char *key_file,
                    enum ewtp_cert_use use, const char *name, bool next, int64_t from_ms,
                    struct tls_pair *keep, bool quiet)
{
    char cs[256], ks[256];
    snprintf(cs, sizeof(cs), "%s.%s", entry, cert_member);
    snprintf(ks, sizeof(ks), "%s.%s", entry, key_member ? key_member : "");
    struct tls_pair p = {0};
    int rc = read_chain(cert_file, &p.leaf, keep ? &p.chain : NULL);
    if (rc == -EWTP_ENOMEM)
        return rc;
    if (rc != 0) {
        if (quiet)
            ERR_clear_error();
        else
            problem(s, entry, cs, "%s: %s", cert_file,
                    rc == -EWTP_EIO ? "cannot be read" : "is not a PEM certificate");
        return 0;
    }
    if (key_file) {
        p.key = read_key(key_file);
        if (p.key == NULL) {
            problem(s, entry, ks, "%s: not a PEM private key (%s; an encrypted key is refused)",
                    key_file, ssl_reason());
        } else if (X509_check_private_key(p.leaf, p.key) != 1) {
            problem(s, entry, ks, "the key in %s does not match the certificate of %s (%s)",
                    key_file, cs, cert_file);
        }
    }
    rc = add_info(s, p.leaf, use, name, cs, cert_file, next, from_ms);
    if (rc == 0 && next && from_ms < s->v[s->n - 1].not_before_ms) {
        char nb[40], fr[40];
        problem(s, entry, cs,
                "its notBefore %s is after from %s: it would not be valid yet when it takes over",
                ewtp_fmt_time(nb, sizeof(nb), s->v[s->n - 1].not_before_ms),
                ewtp_fmt_time(fr, sizeof(fr), from_ms));
    }
    if (keep && rc == 0 && s->rc == 0)
        *keep = p;
    else
        pair_free(&p);
    return rc;
}

int ewtp_certs_load(const struct ewtp_config *c, int64_t now_ms, struct ewtp_certs **out,
                    struct ewtp_errors *why)
{
    *out = NULL;
    struct ewtp_certs *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -EWTP_ENOMEM;
    s->conf = c;
    s->why = why;
    s->built_ms = now_ms;
    s->n_ls = c->n_listeners;
    s->ls = calloc(c->n_listeners ? c->n_listeners : 1, sizeof(*s->ls));
    int rc = s->ls ? 0 : -EWTP_ENOMEM;
    char entry[160], name[64];
    for (size_t i = 0; rc == 0 && i < c->n_listeners; i++) {
        const struct ewtp_listener_conf *lc = &c->listeners[i];
        if (!lc->tls || lc->cert_file == NULL || lc->key_file == NULL)
            continue;
        struct listener_tls *lt = &s->ls[i];
        lt->present = true;
        snprintf(name, sizeof(name), "listeners[%zu]", i);
        const struct ewtp_cert_next *nx = lc->next;
        rc = load_one(s, name, "cert_file", "key_file", lc->cert_file, lc->key_file, EWTP_CERT_TLS,
                      name, false, nx ? nx->from_ms : 0, &lt->cur, false);
        if (rc == 0 && nx) {
            snprintf(entry, sizeof(entry), "%s.next", name);
            rc = load_one(s, entry, "cert_file", "key_file", nx->cert_file, nx->key_file,
                          EWTP_CERT_TLS, name, true, nx->from_ms, &lt->next, false);
            lt->has_next = true;
            lt->from_ms = nx->from_ms;
        }
    }
    for (size_t i = 0; rc == 0 && i < c->n_instances; i++) {
        const struct ewtp_instance_conf *ic = &c->instances[i];
        if (ic->client_cert == NULL)
            continue;
        const struct ewtp_cert_next *nx = ic->client_next;
        snprintf(entry, sizeof(entry), "plugins[%zu]", i);
        rc = load_one(s, entry, "client_cert", "client_key", ic->client_cert, ic->client_key,
                      EWTP_CERT_CLIENT, ic->name, false, nx ? nx->from_ms : 0, NULL, false);
        if (rc == 0 && nx) {
            snprintf(entry, sizeof(entry), "plugins[%zu].client_next", i);
            rc = load_one(s, entry, "client_cert", "client_key", nx->cert_file, nx->key_file,
                          EWTP_CERT_CLIENT, ic->name, true, nx->from_ms, NULL, false);
        }
    }
    for (size_t i = 0; rc == 0 && i < c->n_keys; i++) {
        const struct ewtp_key_conf *k = &c->keys[i];
        if (k->remote && k->remote->client_cert) {
            /* Our client certificate towards the key's ewtp-signer agent (remote_sign.c reads
             * it and checks it with its key, and says what is wrong with it). */
            snprintf(entry, sizeof(entry), "keys[%zu].remote", i);
            snprintf(name, sizeof(name), "signer:%.56s", k->name);
            rc = load_one(s, entry, "client_cert", "client_key", k->remote->client_cert, NULL,
                          EWTP_CERT_CLIENT, name, false, 0, NULL, true);
        }
        if (rc != 0 || k->cert_file == NULL)
            continue;
        const struct ewtp_cert_next *nx = k->next;
        snprintf(entry, sizeof(entry), "keys[%zu]", i);
        /* The current key itself is read and checked by the key store (keys.h). */
        rc = load_one(s, entry, "cert", NULL, k->cert_file, NULL, EWTP_CERT_SIGNING, k->name, false,
                      nx ? nx->from_ms : 0, NULL, true);
        if (rc == 0 && nx) {
            snprintf(entry, sizeof(entry), "keys[%zu].next", i);
            rc = load_one(s, entry, "cert", "key", nx->cert_file, nx->key_file, EWTP_CERT_SIGNING,
                          k->name, true, nx->from_ms, NULL, false);
        }
    }
    if (rc == 0)
        rc = s->rc;
    s->conf = NULL;
    s->why = NULL;
    if (rc != 0) {
        ewtp_certs_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void ewtp_certs_free(struct ewtp_certs *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->v[i].name);
        free((char *)s->v[i].setting);
        free((char *)s->v[i].file);
        free((char *)s->v[i].subject);
        free((char *)s->v[i].serial);
    }
    free(s->v);
    for (size_t i = 0; s->ls && i < s->n_ls; i++) {
        pair_free(&s->ls[i].cur);
        pair_free(&s->ls[i].next);
    }
    free(s->ls);
    free(s);
}

size_t ewtp_certs_count(const struct ewtp_certs *s)
{
    return s ? s->n : 0;
}

const struct ewtp_cert_info *ewtp_certs_at(const struct ewtp_certs *s, size_t i)
{
    return s && i < s->n ? &s->v[i] : NULL;
}

/* ---- time ---------------------------------------------------------------------------------- */

bool ewtp_cert_configured_in_use(const struct ewtp_cert_info *ci, int64_t now_ms)
{
    return ci->next || ci->from_ms == 0 || now_ms < ci->from_ms;
}

bool ewtp_cert_active(const struct ewtp_cert_info *ci, int64_t now_ms)
{
    if (ci->next)
        return now_ms >= ci->from_ms;
    return ci->from_ms == 0 || now_ms < ci->from_ms;
}

int64_t ewtp_cert_seconds_left(const struct ewtp_cert_info *ci, int64_t now_ms)
{
    int64_t ms = ci->not_after_ms - now_ms;
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

enum ewtp_cert_level ewtp_cert_level_of(int64_t seconds_left)
{
    if (seconds_left <= 0)
        return EWTP_CERT_EXPIRED;
    if (seconds_left <= DAY_S)
        return EWTP_CERT_1_DAY;
    if (seconds_left <= 7 * DAY_S)
        return EWTP_CERT_7_DAYS;
    if (seconds_left <= 30 * DAY_S)
        return EWTP_CERT_30_DAYS;
    return EWTP_CERT_FINE;
}

int64_t ewtp_certs_next_switch_ms(const struct ewtp_certs *s, int64_t after_ms)
{
    int64_t best = 0;
    for (size_t i = 0; s && i < s->n; i++) {
        const struct ewtp_cert_info *ci = &s->v[i];
        if (ci->next && ci->from_ms > after_ms && (best == 0 || ci->from_ms < best))
            best = ci->from_ms;
    }
    return best;
}

bool ewtp_certs_signing_stale(const struct ewtp_certs *s, int64_t now_ms)
{
    for (size_t i = 0; s && i < s->n; i++) {
        const struct ewtp_cert_info *ci = &s->v[i];
        if (ci->use == EWTP_CERT_SIGNING && ci->next && ci->from_ms > s->built_ms &&
            ci->from_ms <= now_ms)
            return true;
    }
    return false;
}

int ewtp_certs_use_listener(const struct ewtp_certs *s, size_t i, int64_t now_ms,
                            struct ssl_st *ssl)
{
    if (s == NULL || i >= s->n_ls || !s->ls[i].present)
        return -EWTP_ENOTFOUND;
    const struct listener_tls *lt = &s->ls[i];
    const struct tls_pair *p = lt->has_next && now_ms >= lt->from_ms ? &lt->next : &lt->cur;
    /* Takes its own references: the connection keeps the pair after the set is freed. */
    if (SSL_use_cert_and_key(ssl, p->leaf, p->key, p->chain, 1) != 1) {
        ERR_clear_error();
        return -EWTP_ECRYPTO;
    }
    return 0;
}

/* ---- output ---------------------------------------------------------------------------- */

static void put_label(FILE *f, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f), fputc(*v, f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

void ewtp_certs_write_metrics(const struct ewtp_certs *s, int64_t now_ms, FILE *f)
{
    fputs("# HELP ewtp_certificate_expiry_seconds Seconds until a configured certificate's "
          "notAfter (negative once expired), by use (tls, client, signing), name and slot "
          "(current, or next until it takes over).\n"
          "# TYPE ewtp_certificate_expiry_seconds gauge\n",
          f);
    for (size_t i = 0; s && i < s->n; i++) {
        const struct ewtp_cert_info *ci = &s->v[i];
        if (!ewtp_cert_configured_in_use(ci, now_ms))
            continue;
        fprintf(f, "ewtp_certificate_expiry_seconds{use=\"%s\",name=\"",
                ewtp_cert_use_name(ci->use));
        put_label(f, ci->name);
        fprintf(f, "\",slot=\"%s\",serial=\"%s\",fingerprint=\"%s\"} %" PRId64 "\n",
                ci->next && !ewtp_cert_active(ci, now_ms) ? "next" : "current", ci->serial,
                ci->sha256, ewtp_cert_seconds_left(ci, now_ms));
    }
}

/* "in 5 days", "in 3 hours", "2 days ago". */
static void fmt_left(char *buf, size_t size, int64_t left)
{
    int64_t a = left < 0 ? -left : left;
    const char *unit = a >= DAY_S ? "day" : a >= 3600 ? "hour" : "minute";
    int64_t n = a >= DAY_S ? a / DAY_S : a >= 3600 ? a / 3600 : a / 60;
    if (left >= 0)
        snprintf(buf, size, "in %" PRId64 " %s%s", n, unit, n == 1 ? "" : "s");
    else
        snprintf(buf, size, "%" PRId64 " %s%s ago", n, unit, n == 1 ? "" : "s");
}

void ewtp_certs_print(const struct ewtp_certs *s, int64_t now_ms, FILE *f)
{
    for (size_t i = 0; s && i < s->n; i++) {
        const struct ewtp_cert_info *ci = &s->v[i];
        char na[40], fr[40], left[48], fp[100];
        ewtp_fmt_time(na, sizeof(na), ci->not_after_ms);
        int64_t sl = ewtp_cert_seconds_left(ci, now_ms);
        fmt_left(left, sizeof(left), sl);
        fprintf(f, "certificate %s %s (%s): %s, sha256 %s, notAfter %s (%s%s)",
                ewtp_cert_use_name(ci->use), ci->name, ci->setting, ci->subject,
                ewtp_cert_colon_hex(ci->sha256, fp, sizeof(fp)), na, sl <= 0 ? "expired " : "",
                left);
        if (ci->from_ms)
            fprintf(f, ", %s %s", ci->next ? "takes over" : "replaced",
                    ewtp_fmt_time(fr, sizeof(fr), ci->from_ms));
        fputc('\n', f);
    }
}

/* ---- warnings ---------------------------------------------------------------------------- */

struct said {
    enum ewtp_cert_use use;
    char *name;
    char sha256[65];
    enum ewtp_cert_level level;
    bool seen;
};

struct ewtp_cert_alerts {
    struct said *v;
    size_t n, cap;
};

struct ewtp_cert_alerts *ewtp_cert_alerts_new(void)
{
    return calloc(1, sizeof(struct ewtp_cert_alerts));
}

void ewtp_cert_alerts_free(struct ewtp_cert_alerts *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].name);
    free(a->v);
    free(a);
}

static struct said *said_find(struct ewtp_cert_alerts *a, const struct ewtp_cert_info *ci)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].use == ci->use && strcmp(a->v[i].name, ci->name) == 0 &&
            strcmp(a->v[i].sha256, ci->sha256) == 0)
            return &a->v[i];
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        struct said *v = realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        a->v = v;
        a->cap = cap;
    }
    struct said *d = &a->v[a->n];
    memset(d, 0, sizeof(*d));
    if ((d->name = strdup(ci->name)) == NULL)
        return NULL;
    d->use = ci->use;
    memcpy(d->sha256, ci->sha256, sizeof(d->sha256));
    a->n++;
    return d;
}

size_t ewtp_cert_alerts_check(struct ewtp_cert_alerts *a, const struct ewtp_certs *s,
                              int64_t now_ms, ewtp_cert_say_fn say, void *arg)
{
    size_t said = 0;
    for (size_t i = 0; i < a->n; i++)
        a->v[i].seen = false;
    for (size_t i = 0; s && i < s->n; i++) {
        const struct ewtp_cert_info *ci = &s->v[i];
        if (!ewtp_cert_configured_in_use(ci, now_ms))
            continue;
        /* A current certificate whose successor takes over before it expires is on its way
         * out: its own expiry needs nothing from the admin. */
        if (!ci->next && ci->from_ms > 0 && ci->from_ms <= ci->not_after_ms)
            continue;
        struct said *d = said_find(a, ci);
        if (d == NULL)
            continue;
        d->seen = true;
        int64_t left = ewtp_cert_seconds_left(ci, now_ms);
        enum ewtp_cert_level level = ewtp_cert_level_of(left);
        if (level > d->level) {
            char na[40], when[48], line[1024], fp[100], serial[160];
            ewtp_fmt_time(na, sizeof(na), ci->not_after_ms);
            fmt_left(when, sizeof(when), left);
            const char *hint = ci->use == EWTP_CERT_TLS ? "next = { cert_file; key_file; from; }"
                               : ci->use == EWTP_CERT_CLIENT ? "client_next = { client_cert; "
                                                               "client_key; from; }"
                                                             : "next = { key; cert; from; }";
            snprintf(line, sizeof(line),
                     "certificate %s %s (%s, %s, sha256 %s, serial %s) %s %s (notAfter %s): "
                     "configure its successor beside it (%s) and reload",
                     ewtp_cert_use_name(ci->use), ci->name, ci->setting, ci->subject,
                     ewtp_cert_colon_hex(ci->sha256, fp, sizeof(fp)),
                     ewtp_cert_colon_hex(ci->serial, serial, sizeof(serial)),
                     level == EWTP_CERT_EXPIRED ? "expired" : "expires", when, na, hint);
            say(arg, level == EWTP_CERT_EXPIRED ? LOG_ERR : LOG_WARNING, line);
            said++;
        }
        d->level = level;
    }
    /* Forget certificates no longer configured. */
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].seen)
            a->v[k++] = a->v[i];
        else
            free(a->v[i].name);
    }
    a->n = k;
    return said;
}
