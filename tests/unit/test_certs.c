/* Certificate lifecycle (issue 18, certs.h): expiry in seconds and its levels, warnings once
 * per threshold crossed (30, 7, 1 days, expired), the metric, successors (next = { ... from })
 * checked against their keys with file, line and member in the message, a listener's pair
 * chosen by time, a client pair chosen by time, and a signing key's certificate chosen by the
 * generation's clock (a signature made after from verifies with the successor's key).
 * Certificates are made with OpenSSL's API with chosen notBefore and notAfter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ewtp/host.h>

#include "certs.h"
#include "config.h"
#include "gen.h"

#define DAY INT64_C(86400)
/* A fixed clock: 2027-01-15T08:00:00Z. */
#define T0 INT64_C(1800000000)
#define MS(s) ((s)*INT64_C(1000))

struct fx {
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL || test_tmpdir_make(f->dir, sizeof(f->dir), "ewtp-certs") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc = test_tmpdir_remove(f->dir);
    free(f);
    return rc;
}

/* dir/NAME.crt (self-signed, CN=NAME, valid from T0+nb_s to T0+na_s) and dir/NAME.key
 * (EC P-256, mode 0600). */
static void make_pair(const struct fx *f, const char *name, int64_t nb_s, int64_t na_s)
{
    static long serial = 4096;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(T0 + nb_s)));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(T0 + na_s)));
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.crt", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    PEM_write_X509(fp, x);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/%s.key", f->dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    chmod(path, 0600);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* SHA-256 hex of the certificate in dir/NAME.crt. */
static void fingerprint(const struct fx *f, const char *name, char hex[65])
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.crt", f->dir, name);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    unsigned char md[32];
    unsigned len = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &len), 1);
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    X509_free(x);
}

/* A configuration: one TLS listener on tls.crt (next: listener_next, may be ""), one signing
 * key sig.crt (next: key_next). Returns its path (malloc'd). */
static char *write_conf(const struct fx *f, const char *listener_next, const char *key_next)
{
    char *text = NULL;
    assert_true(asprintf(&text,
                         "state_dir = \"run\";\n"                                 /* 1 */
                         "dev_mode = true;\n"                                     /* 2 */
                         "listeners = (\n"                                        /* 3 */
                         "  { address = \"127.0.0.1\"; port = 0; tls = true;\n"   /* 4 */
                         "    cert_file = \"tls.crt\"; key_file = \"tls.key\";\n" /* 5 */
                         "    %s }\n"                                             /* 6 */
                         ");\n"                                                   /* 7 */
                         "keys = ( { name = \"sig\"; key = \"sig.key\"; cert = \"sig.crt\";\n"
                         "    %s } );\n",
                         listener_next, key_next) > 0);
    test_write_file(f->dir, "certs.conf", text);
    free(text);
    char *p = NULL;
    assert_true(asprintf(&p, "%s/certs.conf", f->dir) > 0);
    return p;
}

static struct ewtp_config *load_conf(const char *path)
{
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    int rc = ewtp_config_load(path, &c, why);
    for (size_t i = 0; i < ewtp_errors_count(why); i++)
        fprintf(stderr, "config: %s\n", ewtp_errors_at(why, i)->message);
    assert_int_equal(rc, 0);
    ewtp_errors_free(why);
    return c;
}

/* Collects what the alerts say. */
struct said {
    int n, warnings, errors;
    char last[1024];
};

static void say(void *arg, int priority, const char *line)
{
    struct said *s = arg;
    s->n++;
    if (priority == LOG_WARNING)
        s->warnings++;
    else if (priority == LOG_ERR)
        s->errors++;
    snprintf(s->last, sizeof(s->last), "%s", line);
}

static const struct ewtp_cert_info *find(const struct ewtp_certs *s, enum ewtp_cert_use use,
                                         bool next)
{
    for (size_t i = 0; i < ewtp_certs_count(s); i++)
        if (ewtp_certs_at(s, i)->use == use && ewtp_certs_at(s, i)->next == next)
            return ewtp_certs_at(s, i);
    return NULL;
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(ewtp_cert_level_of(31 * DAY), EWTP_CERT_FINE);
    assert_int_equal(ewtp_cert_level_of(30 * DAY + 1), EWTP_CERT_FINE);
    assert_int_equal(ewtp_cert_level_of(30 * DAY), EWTP_CERT_30_DAYS);
    assert_int_equal(ewtp_cert_level_of(7 * DAY + 1), EWTP_CERT_30_DAYS);
    assert_int_equal(ewtp_cert_level_of(7 * DAY), EWTP_CERT_7_DAYS);
    assert_int_equal(ewtp_cert_level_of(DAY), EWTP_CERT_1_DAY);
    assert_int_equal(ewtp_cert_level_of(1), EWTP_CERT_1_DAY);
    assert_int_equal(ewtp_cert_level_of(0), EWTP_CERT_EXPIRED);
    assert_int_equal(ewtp_cert_level_of(-DAY), EWTP_CERT_EXPIRED);
    struct ewtp_cert_info ci = {.not_after_ms = MS(T0 + 5 * DAY)};
    assert_int_equal(ewtp_cert_seconds_left(&ci, MS(T0)), 5 * DAY);
    assert_int_equal(ewtp_cert_seconds_left(&ci, MS(T0 + 6 * DAY)), -DAY);
    /* Part of a second: towards minus infinity, so "expired" starts right after notAfter. */
    assert_int_equal(ewtp_cert_seconds_left(&ci, MS(T0 + 5 * DAY) + 1), -1);
    assert_int_equal(ewtp_cert_seconds_left(&ci, MS(T0 + 5 * DAY) - 1), 0);
}

/* A listener certificate 5 days from its notAfter, no successor: one warning (7 days), not
 * two, then nothing until the 1-day threshold, then an error once expired. */
static void test_alerts_once_per_threshold(void **state)
{
    struct fx *f = *state;
    make_pair(f, "tls", -DAY, 5 * DAY);
    make_pair(f, "sig", -DAY, 400 * DAY);
    char *path = write_conf(f, "", "");
    struct ewtp_config *c = load_conf(path);
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_certs *s = NULL;
    assert_int_equal(ewtp_certs_load(c, MS(T0), &s, why), 0);
    assert_int_equal(ewtp_certs_count(s), 2);
    const struct ewtp_cert_info *tls = find(s, EWTP_CERT_TLS, false);
    assert_non_null(tls);
    assert_string_equal(tls->name, "listeners[0]");
    assert_string_equal(tls->subject, "CN=tls");
    assert_int_equal(tls->not_after_ms, MS(T0 + 5 * DAY));
    char fp[65];
    fingerprint(f, "tls", fp);
    assert_string_equal(tls->sha256, fp);

    struct ewtp_cert_alerts *a = ewtp_cert_alerts_new();
    struct said said = {0};
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0), say, &said), 1);
    assert_int_equal(said.warnings, 1);
    assert_non_null(strstr(said.last, "listeners[0]"));
    assert_non_null(strstr(said.last, "in 5 days"));
    /* The fingerprint as openssl prints it (a bare hex run would be redacted in the log). */
    char colon[100];
    ewtp_cert_colon_hex(fp, colon, sizeof(colon));
    assert_int_equal(strlen(colon), 95);
    assert_non_null(strstr(said.last, colon));
    assert_null(strstr(said.last, fp));
    assert_string_equal(ewtp_cert_colon_hex("5", colon, sizeof(colon)), "05");
    assert_string_equal(ewtp_cert_colon_hex("1aB", colon, sizeof(colon)), "01:AB");
    /* Hourly checks, a reload (the same certificate): nothing new. */
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 + 3600), say, &said), 0);
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 + 3 * DAY), say, &said), 0);
    /* Within a day. */
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 + 4 * DAY + 3600), say, &said), 1);
    assert_non_null(strstr(said.last, "in 23 hours"));
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 + 4 * DAY + 7200), say, &said), 0);
    /* Expired: an error, once. */
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 + 5 * DAY + 1), say, &said), 1);
    assert_int_equal(said.errors, 1);
    assert_non_null(strstr(said.last, "expired"));
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 + 6 * DAY), say, &said), 0);
    assert_int_equal(said.warnings, 2);

    /* A fresh watch (a restart) at 20 days left says the 30-day level once. */
    ewtp_cert_alerts_free(a);
    a = ewtp_cert_alerts_new();
    said = (struct said){0};
    const struct ewtp_cert_info *sig = find(s, EWTP_CERT_SIGNING, false);
    assert_non_null(sig);
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 - 25 * DAY), say, &said), 1);
    assert_non_null(strstr(said.last, "listeners[0]"));
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0 - 24 * DAY), say, &said), 0);
    /* The metric: seconds left, per certificate. */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    ewtp_certs_write_metrics(s, MS(T0), m);
    fclose(m);
    char line[512];
    snprintf(line, sizeof(line),
             "ewtp_certificate_expiry_seconds{use=\"tls\",name=\"listeners[0]\",slot=\"current\","
             "serial=\"%s\",fingerprint=\"%s\"} %lld\n",
             tls->serial, fp, (long long)(5 * DAY));
    assert_non_null(strstr(text, line));
    assert_non_null(strstr(text, "{use=\"signing\",name=\"sig\",slot=\"current\""));
    assert_non_null(strstr(text, "# TYPE ewtp_certificate_expiry_seconds gauge\n"));
    free(text);
    text = NULL;
    m = open_memstream(&text, &len);
    ewtp_certs_write_metrics(s, MS(T0 + 6 * DAY), m);
    fclose(m);
    snprintf(line, sizeof(line), "fingerprint=\"%s\"} %lld\n", fp, (long long)(-DAY));
    assert_non_null(strstr(text, line));
    free(text);

    ewtp_cert_alerts_free(a);
    ewtp_certs_free(s);
    ewtp_errors_free(why);
    ewtp_config_free(c);
    free(path);
}

/* A current certificate whose successor takes over before it expires is not warned about;
 * the successor is, by its own notAfter; the metric shows both until from, then the
 * successor alone (slot current). */
static void test_successor(void **state)
{
    struct fx *f = *state;
    make_pair(f, "tls", -DAY, 5 * DAY);
    make_pair(f, "tls2", -DAY, 10 * DAY);
    make_pair(f, "sig", -DAY, 400 * DAY);
    char *path = write_conf(f,
                            "next = { cert_file = \"tls2.crt\"; key_file = \"tls2.key\"; "
                            "from = \"2027-01-16T08:00:00Z\"; };",
                            "");
    struct ewtp_config *c = load_conf(path);
    assert_non_null(c->listeners[0].next);
    assert_int_equal(c->listeners[0].next->from_ms, MS(T0 + DAY));
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_certs *s = NULL;
    assert_int_equal(ewtp_certs_load(c, MS(T0), &s, why), 0);
    assert_int_equal(ewtp_certs_count(s), 3);
    const struct ewtp_cert_info *cur = find(s, EWTP_CERT_TLS, false);
    const struct ewtp_cert_info *nxt = find(s, EWTP_CERT_TLS, true);
    assert_non_null(cur);
    assert_non_null(nxt);
    assert_string_equal(nxt->setting, "listeners[0].next.cert_file");
    assert_true(ewtp_cert_active(cur, MS(T0)));
    assert_false(ewtp_cert_active(nxt, MS(T0)));
    assert_false(ewtp_cert_active(cur, MS(T0 + DAY)));
    assert_true(ewtp_cert_active(nxt, MS(T0 + DAY)));
    assert_int_equal(ewtp_certs_next_switch_ms(s, MS(T0)), MS(T0 + DAY));
    assert_int_equal(ewtp_certs_next_switch_ms(s, MS(T0 + DAY)), 0);

    struct ewtp_cert_alerts *a = ewtp_cert_alerts_new();
    struct said said = {0};
    /* Only the successor (10 days left: the 30-day level). */
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0), say, &said), 1);
    assert_non_null(strstr(said.last, "listeners[0].next.cert_file"));

    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    ewtp_certs_write_metrics(s, MS(T0), m);
    fclose(m);
    assert_non_null(strstr(text, "name=\"listeners[0]\",slot=\"current\""));
    assert_non_null(strstr(text, "name=\"listeners[0]\",slot=\"next\""));
    free(text);
    text = NULL;
    m = open_memstream(&text, &len);
    ewtp_certs_write_metrics(s, MS(T0 + DAY), m);
    fclose(m);
    assert_null(strstr(text, "slot=\"next\""));
    assert_non_null(strstr(text, nxt->sha256));
    assert_null(strstr(text, cur->sha256));
    free(text);

    /* The handshake's pair: the current one before from, the successor from then on. */
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    for (int k = 0; k < 3; k++) {
        int64_t now = k == 0 ? MS(T0) : k == 1 ? MS(T0 + DAY) - 1 : MS(T0 + DAY);
        SSL *ssl = SSL_new(ctx);
        assert_non_null(ssl);
        assert_int_equal(ewtp_certs_use_listener(s, 0, now, ssl), 0);
        X509 *x = SSL_get_certificate(ssl);
        assert_non_null(x);
        unsigned char md[32];
        unsigned mdl = 0;
        char hex[65];
        X509_digest(x, EVP_sha256(), md, &mdl);
        for (unsigned i = 0; i < mdl; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        assert_string_equal(hex, k < 2 ? cur->sha256 : nxt->sha256);
        assert_int_equal(SSL_check_private_key(ssl), 1);
        SSL_free(ssl);
    }
    SSL *ssl = SSL_new(ctx);
    assert_int_equal(ewtp_certs_use_listener(s, 1, MS(T0), ssl), -EWTP_ENOTFOUND);
    SSL_free(ssl);
    SSL_CTX_free(ctx);

    ewtp_cert_alerts_free(a);
    ewtp_certs_free(s);
    ewtp_errors_free(why);
    ewtp_config_free(c);
    free(path);
}

/* A successor whose key is not its certificate's is refused with file, line and member; so
 * is a from that is no time, and a successor not yet valid at its from. */
static void test_successor_refused(void **state)
{
    struct fx *f = *state;
    make_pair(f, "tls", -DAY, 50 * DAY);
    make_pair(f, "tls2", -DAY, 400 * DAY);
    make_pair(f, "other", -DAY, 400 * DAY);
    make_pair(f, "late", 30 * DAY, 400 * DAY);
    make_pair(f, "sig", -DAY, 400 * DAY);
    char *path = write_conf(f,
                            "next = { cert_file = \"tls2.crt\"; key_file = \"other.key\"; "
                            "from = \"2027-01-16T08:00:00Z\"; };",
                            "");
    struct ewtp_config *c = load_conf(path);
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_certs *s = NULL;
    assert_int_equal(ewtp_certs_load(c, MS(T0), &s, why), -EWTP_EINVAL);
    assert_null(s);
    assert_int_equal(ewtp_errors_count(why), 1);
    const char *msg = ewtp_errors_at(why, 0)->message;
    assert_non_null(strstr(msg, "certs.conf:6: listeners[0].next.key_file: "));
    assert_non_null(strstr(msg, "does not match"));
    assert_string_equal(ewtp_errors_at(why, 0)->pointer, "/listeners/0/next/key_file");
    ewtp_errors_free(why);
    ewtp_config_free(c);
    free(path);

    /* The generation refuses it whole (a reload keeps the running one). */
    path = write_conf(f, "",
                      "next = { key = \"other.key\"; cert = \"tls2.crt\"; from = "
                      "\"2027-01-16T08:00:00Z\"; };");
    why = ewtp_errors_new();
    struct ewtp_gen *g = NULL;
    assert_int_not_equal(ewtp_gen_build_at(path, 1, MS(T0), &g, why), 0);
    assert_null(g);
    assert_true(ewtp_errors_count(why) >= 1);
    assert_non_null(strstr(ewtp_errors_at(why, 0)->message, "keys[0].next.key: "));
    ewtp_errors_free(why);
    free(path);

    path = write_conf(f,
                      "next = { cert_file = \"tls2.crt\"; key_file = \"tls2.key\"; "
                      "from = \"next tuesday\"; };",
                      "");
    why = ewtp_errors_new();
    c = NULL;
    assert_int_not_equal(ewtp_config_load(path, &c, why), 0);
    assert_non_null(strstr(ewtp_errors_at(why, 0)->message,
                           "certs.conf:6: listeners[0].next.from: \"next tuesday\" is not an RFC "
                           "3339 time"));
    ewtp_errors_free(why);
    free(path);

    path = write_conf(f,
                      "next = { cert_file = \"late.crt\"; key_file = \"late.key\"; "
                      "from = \"2027-01-16T08:00:00Z\"; };",
                      "");
    c = load_conf(path);
    why = ewtp_errors_new();
    assert_int_equal(ewtp_certs_load(c, MS(T0), &s, why), -EWTP_EINVAL);
    assert_non_null(strstr(ewtp_errors_at(why, 0)->message, "notBefore"));
    ewtp_errors_free(why);
    ewtp_config_free(c);
    free(path);
}

/* A client pair: client_next's from its from on. */
static void test_client_pair(void **state)
{
    (void)state;
    struct ewtp_cert_next nx = {.cert_file = "b.crt", .key_file = "b.key", .from_ms = 1000};
    struct ewtp_instance_conf ic = {.client_cert = "a.crt", .client_key = "a.key"};
    const char *cert, *key;
    ewtp_instance_client_pair(&ic, 5000, &cert, &key);
    assert_string_equal(cert, "a.crt");
    assert_string_equal(key, "a.key");
    ic.client_next = &nx;
    ewtp_instance_client_pair(&ic, 999, &cert, &key);
    assert_string_equal(cert, "a.crt");
    assert_string_equal(key, "a.key");
    ewtp_instance_client_pair(&ic, 1000, &cert, &key);
    assert_string_equal(cert, "b.crt");
    assert_string_equal(key, "b.key");
}

/* The DER of dir/NAME.crt. */
static size_t der_of(const struct fx *f, const char *name, unsigned char **der)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.crt", f->dir, name);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    *der = NULL;
    int n = i2d_X509(x, der);
    X509_free(x);
    assert_true(n > 0);
    return (size_t)n;
}

/* Signs with the generation's key and verifies the signature with the certificate the same
 * generation hands out: true when they belong together. Returns that certificate's DER
 * (arena) through der. */
static bool sign_and_verify(struct ewtp_gen *g, const unsigned char **der, size_t *der_len)
{
    const struct ewtp_host *h = ewtp_gen_host(g);
    struct ewtp_arena *a = ewtp_arena_new();
    assert_non_null(a);
    static const char data[] = "SignedInfo bytes";
    const unsigned char *sig = NULL;
    size_t sig_len = 0;
    assert_int_equal(
        h->sign(h->ctx, "sig", EWTP_SIGN_ECDSA_SHA256, data, sizeof(data) - 1, a, &sig, &sig_len),
        0);
    const unsigned char *d = NULL;
    size_t dl = 0;
    assert_int_equal(h->cert(h->ctx, "sig", a, &d, &dl), 0);
    const unsigned char *p = d;
    X509 *x = d2i_X509(NULL, &p, (long)dl);
    assert_non_null(x);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)), 1);
    bool ok =
        EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)data, sizeof(data) - 1) == 1;
    EVP_MD_CTX_free(md);
    X509_free(x);
    *der = malloc(dl);
    memcpy((void *)*der, d, dl);
    *der_len = dl;
    ewtp_arena_free(a);
    return ok;
}

/* Signing keys switch with the generation: one built before from signs with the current key
 * and hands out its certificate, one built from then on the successor's; the older one knows
 * it is stale (certwatch rebuilds it). */
static void test_signing_by_time(void **state)
{
    struct fx *f = *state;
    make_pair(f, "tls", -DAY, 400 * DAY);
    make_pair(f, "sig", -DAY, 20 * DAY);
    make_pair(f, "sig2", -DAY, 400 * DAY);
    char *path = write_conf(f, "",
                            "next = { key = \"sig2.key\"; cert = \"sig2.crt\"; from = "
                            "\"2027-01-17T08:00:00Z\"; };");
    unsigned char *der_a = NULL, *der_b = NULL;
    size_t la = der_of(f, "sig", &der_a), lb = der_of(f, "sig2", &der_b);
    for (int k = 0; k < 3; k++) {
        int64_t at = k == 0 ? MS(T0) : k == 1 ? MS(T0 + 2 * DAY) - 1 : MS(T0 + 2 * DAY);
        struct ewtp_errors *why = ewtp_errors_new();
        struct ewtp_gen *g = NULL;
        int rc = ewtp_gen_build_at(path, 1, at, &g, why);
        for (size_t i = 0; i < ewtp_errors_count(why); i++)
            fprintf(stderr, "gen: %s\n", ewtp_errors_at(why, i)->message);
        assert_int_equal(rc, 0);
        const unsigned char *der = NULL;
        size_t dl = 0;
        assert_true(sign_and_verify(g, &der, &dl));
        if (k < 2) {
            assert_int_equal(dl, la);
            assert_memory_equal(der, der_a, la);
            /* Stale once from comes: the watch rebuilds the generation then. */
            assert_false(ewtp_certs_signing_stale(ewtp_gen_certs(g), MS(T0 + 2 * DAY) - 1));
            assert_true(ewtp_certs_signing_stale(ewtp_gen_certs(g), MS(T0 + 2 * DAY)));
        } else {
            assert_int_equal(dl, lb);
            assert_memory_equal(der, der_b, lb);
            assert_false(ewtp_certs_signing_stale(ewtp_gen_certs(g), MS(T0 + 3 * DAY)));
        }
        free((void *)der);
        ewtp_gen_unref(g);
        ewtp_errors_free(why);
    }
    OPENSSL_free(der_a);
    OPENSSL_free(der_b);
    free(path);
}

/* A remote key's client certificate towards its ewtp-signer agent is in the inventory too
 * (use client, name signer:KEY), beside the key's signing certificate. */
static void test_remote_signer_client_cert(void **state)
{
    struct fx *f = *state;
    make_pair(f, "tls", -DAY, 400 * DAY);
    make_pair(f, "sig", -DAY, 400 * DAY);
    make_pair(f, "agent", -DAY, 3 * DAY);
    char *text = NULL;
    assert_true(asprintf(&text, "state_dir = \"run\";\ndev_mode = true;\n"
                                "listeners = ( { address = \"127.0.0.1\"; port = 0; } );\n"
                                "keys = ( { name = \"hsm\"; cert = \"sig.crt\";\n"
                                "  remote = { url = \"https://127.0.0.1:9\"; key = \"k1\";\n"
                                "    client_cert = \"agent.crt\"; client_key = \"agent.key\";\n"
                                "    ca_file = \"sig.crt\"; }; } );\n") > 0);
    test_write_file(f->dir, "remote.conf", text);
    free(text);
    char path[128];
    snprintf(path, sizeof(path), "%s/remote.conf", f->dir);
    struct ewtp_config *c = load_conf(path);
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_certs *s = NULL;
    assert_int_equal(ewtp_certs_load(c, MS(T0), &s, why), 0);
    assert_int_equal(ewtp_certs_count(s), 2);
    const struct ewtp_cert_info *agent = find(s, EWTP_CERT_CLIENT, false);
    assert_non_null(agent);
    assert_string_equal(agent->name, "signer:hsm");
    assert_string_equal(agent->setting, "keys[0].remote.client_cert");
    assert_int_equal(ewtp_cert_seconds_left(agent, MS(T0)), 3 * DAY);
    assert_non_null(find(s, EWTP_CERT_SIGNING, false));
    struct ewtp_cert_alerts *a = ewtp_cert_alerts_new();
    struct said said = {0};
    assert_int_equal(ewtp_cert_alerts_check(a, s, MS(T0), say, &said), 1);
    assert_non_null(strstr(said.last, "certificate client signer:hsm"));
    ewtp_cert_alerts_free(a);
    ewtp_certs_free(s);
    ewtp_errors_free(why);
    ewtp_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test_setup_teardown(test_alerts_once_per_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_successor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_successor_refused, setup, teardown),
        cmocka_unit_test(test_client_pair),
        cmocka_unit_test_setup_teardown(test_signing_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_signer_client_cert, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
