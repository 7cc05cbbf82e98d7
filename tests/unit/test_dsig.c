/* Unit tests for sdk/src/dsig.c with daemon/keys.c as the host's signer. Signatures are
 * checked by independent verifiers: xmlsec1 (RSA, ECDSA) and the openssl CLI over
 * SignedInfo and the reference as canonicalised by xmllint (RSA, SM2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ewtp/crypto.h>
#include <ewtp/dsig.h>
#include <ewtp/xml.h>

#include "keys.h"

#define CN_REF EWTP_SHARED_DIR "/reference/cn"
#define CEB_NS "http://www.chinaport.gov.cn/ceb"

struct fx {
    struct ewtp_keys *keys;
    struct ewtp_host host;
    struct ewtp_arena *a;
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->keys = ewtp_keys_new();
    if (ewtp_keys_add_test(f->keys, "rsa", EWTP_KEY_RSA) != 0 ||
        ewtp_keys_add_test(f->keys, "sm2", EWTP_KEY_SM2) != 0 ||
        ewtp_keys_add_test(f->keys, "ec", EWTP_KEY_EC_P256) != 0)
        return -1;
    f->host = (struct ewtp_host){.size = sizeof(f->host),
                                 .ctx = f->keys,
                                 .sign = ewtp_keys_sign,
                                 .cert = ewtp_keys_cert,
                                 .random = ewtp_keys_random};
    f->a = ewtp_arena_new();
    strcpy(f->dir, "/tmp/ewtp-dsig-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    ewtp_keys_free(f->keys);
    ewtp_arena_free(f->a);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Runs a shell command in the fixture's directory; returns its exit status. */
static int run(struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(struct fx *f, const char *fmt, ...)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof(cmd), "cd '%s' && (", f->dir);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, ") >>log.txt 2>&1");
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(struct fx *f, const char *name, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    b[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static char *read_tmp(struct fx *f, const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return read_file(path, len);
}

/* A CEB-shaped document: default-free namespace prefix, Chinese text, an attribute with
 * characters C14N escapes, whitespace between elements, no comments (the xmllint-based
 * reference check below keeps comments). */
static const char doc_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ceb:CEB311Message guid=\"4CDE1CFD-EDED-46B1-946C-B8022E42FC94\" version=\"1.0\"\n"
    "    xmlns:ceb=\"http://www.chinaport.gov.cn/ceb\">\n"
    "\t<ceb:Order note=\"a&amp;b &lt; c\">\n"
    "\t\t<ceb:orderNo>order-A-1</ceb:orderNo>\n"
    "\t\t<ceb:consignee>\xe7\x84\xa6\xe6\xb4\xaa\xe5\xae\x87</ceb:consignee>\n"
    "\t\t<ceb:empty/>\n"
    "\t</ceb:Order>\n"
    "\t<ceb:BaseTransfer><ceb:copCode>1105910159</ceb:copCode></ceb:BaseTransfer>\n"
    "</ceb:CEB311Message>\n";

/* Writes the pieces the openssl CLI needs: pub.pem, sig.bin, si.c14n (SignedInfo as xmllint
 * canonicalises it within the whole document, with the namespaces it inherits put on it as
 * inclusive C14N of a subset does: here xmlns:ceb and xmlns:ds, sorted), ref.c14n (the
 * document without the Signature), digest.b64. */
static void cli_pieces(struct fx *f, const char *signed_name)
{
    assert_int_equal(run(f, "openssl x509 -in cert.pem -pubkey -noout > pub.pem"), 0);
    assert_int_equal(run(f,
                         "xmllint --xpath 'string(//*[local-name()=\"SignatureValue\"])' %s "
                         "| base64 -d > sig.bin",
                         signed_name),
                     0);
    assert_int_equal(run(f, "xmllint --c14n %s > full.c14n", signed_name), 0);
    size_t len;
    char *full = read_tmp(f, "full.c14n", &len);
    char *si = strstr(full, "<ds:SignedInfo>");
    char *si_end = strstr(full, "</ds:SignedInfo>");
    char *sig = strstr(full, "<ds:Signature ");
    char *sig_end = strstr(full, "</ds:Signature>");
    assert_non_null(si);
    assert_non_null(si_end);
    assert_non_null(sig);
    assert_non_null(sig_end);
    si_end += strlen("</ds:SignedInfo>");
    sig_end += strlen("</ds:Signature>");
    char *out = malloc(len + 200);
    int n = sprintf(out, "<ds:SignedInfo xmlns:ceb=\"" CEB_NS "\" xmlns:ds=\"" EWTP_DSIG_NS "\">");
    memcpy(out + n, si + strlen("<ds:SignedInfo>"), (size_t)(si_end - si) - 15);
    write_file(f, "si.c14n", out, (size_t)n + (size_t)(si_end - si) - 15);
    /* Enveloped transform: the canonical document with the Signature element cut out. */
    memcpy(out, full, (size_t)(sig - full));
    memcpy(out + (sig - full), sig_end, len - (size_t)(sig_end - full));
    write_file(f, "ref.c14n", out, len - (size_t)(sig_end - sig));
    free(out);
    free(full);
    assert_int_equal(run(f,
                         "xmllint --xpath 'string(//*[local-name()=\"DigestValue\"])' %s "
                         "> digest.b64",
                         signed_name),
                     0);
}

static void test_rsa_xmlsec(void **state)
{
    struct fx *f = *state;
    struct ewtp_dsig_options o;
    ewtp_dsig_options_init(&o, EWTP_SIGN_RSA_SHA256, "rsa");
    o.keyinfo = EWTP_DSIG_KEYNAME | EWTP_DSIG_X509_CERT | EWTP_DSIG_X509_ISSUER_SERIAL;
    o.flags = EWTP_DSIG_PRETTY;
    const char *out;
    size_t len;
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len), 0);
    assert_non_null(strstr(out, "<ds:SignatureMethod Algorithm=\"" EWTP_DSIG_URI_RSA_SHA256));
    assert_non_null(strstr(out, "<ds:X509IssuerName>CN=" EWTP_KEYS_TEST_SUBJECT));
    /* Last child of the root, nothing else changed. */
    assert_non_null(strstr(out, "</ds:Signature></ceb:CEB311Message>"));
    assert_true(ewtp_keys_is_test(f->keys, "rsa"));

    const unsigned char *cert;
    size_t cert_len;
    assert_int_equal(ewtp_keys_cert(f->keys, "rsa", f->a, &cert, &cert_len), 0);
    assert_int_equal(ewtp_dsig_verify(out, len, cert, cert_len, NULL), 0);
    assert_int_equal(ewtp_dsig_verify(out, len, NULL, 0, NULL), 0); /* embedded cert */

    char path[256];
    snprintf(path, sizeof(path), "%s/cert.pem", f->dir);
    assert_int_equal(ewtp_keys_write_cert_pem(f->keys, "rsa", path), 0);
    write_file(f, "signed.xml", out, len);
    assert_int_equal(run(f, "xmlsec1 --verify --trusted-pem cert.pem signed.xml"), 0);

    /* The openssl CLI agrees on SignedInfo and the reference digest. */
    cli_pieces(f, "signed.xml");
    assert_int_equal(run(f, "openssl dgst -sha256 -verify pub.pem -signature sig.bin si.c14n"), 0);
    assert_int_equal(
        run(f,
            "test \"$(openssl dgst -sha256 -binary ref.c14n | base64)\" = \"$(cat digest.b64)\""),
        0);

    /* One byte of content changed: both verifiers refuse. */
    char *bad = strdup(out);
    char *p = strstr(bad, "order-A-1");
    assert_non_null(p);
    p[8] = '2';
    write_file(f, "tampered.xml", bad, len);
    assert_int_not_equal(run(f, "xmlsec1 --verify --trusted-pem cert.pem tampered.xml"), 0);
    struct ewtp_errors *e = ewtp_errors_new();
    assert_int_equal(ewtp_dsig_verify(bad, len, cert, cert_len, e), -EWTP_ECRYPTO);
    assert_true(ewtp_errors_has(e, "", "signature"));
    ewtp_errors_free(e);
    free(bad);

    /* A changed SignedInfo (digest method text) breaks the signature, not the digest. */
    bad = strdup(out);
    p = strstr(bad, "<ds:DigestValue>");
    assert_non_null(p);
    p += strlen("<ds:DigestValue>");
    *p = *p == 'A' ? 'B' : 'A';
    assert_int_equal(ewtp_dsig_verify(bad, len, cert, cert_len, NULL), -EWTP_ECRYPTO);
    free(bad);

    /* Verifying with another key's certificate fails. */
    const unsigned char *other;
    size_t other_len;
    assert_int_equal(ewtp_keys_cert(f->keys, "ec", f->a, &other, &other_len), 0);
    assert_int_not_equal(ewtp_dsig_verify(out, len, other, other_len, NULL), 0);
}

static void test_rsa_sha1_exclusive_placement(void **state)
{
    struct fx *f = *state;
    struct ewtp_dsig_options o;
    ewtp_dsig_options_init(&o, EWTP_SIGN_RSA_SHA1, "rsa");
    o.c14n = EWTP_C14N_EXCL_10;
    o.flags = EWTP_DSIG_REF_EXCL_C14N;
    o.key_name_text = "0001";
    static const char *const ns[] = {"ceb", CEB_NS, NULL};
    o.ns = ns;
    o.parent_xpath = "/ceb:CEB311Message";
    o.before_xpath = "ceb:BaseTransfer"; /* the export schema's order */
    o.signature_id = "sig-1";
    const char *out;
    size_t len;
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len), 0);
    assert_non_null(strstr(out, "</ds:Signature><ceb:BaseTransfer>"));
    assert_non_null(strstr(out, "<ds:KeyName>0001</ds:KeyName>"));
    assert_non_null(strstr(out, EWTP_DSIG_URI_RSA_SHA1));
    write_file(f, "signed1.xml", out, len);
    char path[256];
    snprintf(path, sizeof(path), "%s/cert.pem", f->dir);
    assert_int_equal(ewtp_keys_write_cert_pem(f->keys, "rsa", path), 0);
    assert_int_equal(run(f, "xmlsec1 --verify --trusted-pem cert.pem signed1.xml"), 0);
    assert_int_equal(ewtp_dsig_verify(out, len, NULL, 0, NULL), 0);

    /* Parent that does not exist; key that does not exist; key of the wrong family. */
    o.parent_xpath = "//ceb:Nothing";
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len),
                     -EWTP_ENOTFOUND);
    ewtp_dsig_options_init(&o, EWTP_SIGN_RSA_SHA256, "nokey");
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len),
                     -EWTP_ENOTFOUND);
    ewtp_dsig_options_init(&o, EWTP_SIGN_SM2_SM3, "rsa");
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len),
                     -EWTP_EUNSUPP);
    ewtp_dsig_options_init(&o, EWTP_SIGN_RSA_SHA256, "rsa");
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, "<a>", 3, f->a, &out, &len), -EWTP_EFORMAT);
    struct ewtp_host nosign = {.size = sizeof(nosign)};
    assert_int_equal(ewtp_dsig_sign(&nosign, &o, doc_xml, strlen(doc_xml), f->a, &out, &len),
                     -EWTP_EUNSUPP);
}

static void test_ecdsa_xmlsec(void **state)
{
    struct fx *f = *state;
    struct ewtp_dsig_options o;
    ewtp_dsig_options_init(&o, EWTP_SIGN_ECDSA_SHA256, "ec");
    const char *out;
    size_t len;
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len), 0);
    write_file(f, "signed-ec.xml", out, len);
    char path[256];
    snprintf(path, sizeof(path), "%s/cert-ec.pem", f->dir);
    assert_int_equal(ewtp_keys_write_cert_pem(f->keys, "ec", path), 0);
    assert_int_equal(run(f, "xmlsec1 --verify --trusted-pem cert-ec.pem signed-ec.xml"), 0);
    assert_int_equal(ewtp_dsig_verify(out, len, NULL, 0, NULL), 0);
}

/* Takes the official CEB311 sample, drops its placeholder signature, signs it with SM2 the
 * CEB way and checks: schema-valid, openssl CLI verifies SignedInfo (SM3, distid
 * 1234567812345678) and the SM3 reference digest, our verifier agrees, tampering fails. */
static void test_sm2_ceb311(void **state)
{
    struct fx *f = *state;
    size_t len;
    char *xml = read_file(CN_REF "/samples/import/CEB311Message.xml", &len);
    char *s = strstr(xml, "<ds:Signature");
    char *e = strstr(xml, "</ds:Signature>");
    assert_non_null(s);
    assert_non_null(e);
    e += strlen("</ds:Signature>");
    memmove(s, e, strlen(e) + 1);
    len = strlen(xml);
    /* The enveloped reference never includes comments; xmllint's canonical form would, so
     * the CLI digest check needs a comment-free document. */
    assert_null(strstr(xml, "<!--"));

    struct ewtp_dsig_options o;
    ewtp_dsig_options_init(&o, EWTP_SIGN_SM2_SM3, "sm2");
    o.flags = EWTP_DSIG_PRETTY;
    const char *out;
    size_t out_len;
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, xml, len, f->a, &out, &out_len), 0);
    assert_non_null(strstr(out, "Algorithm=\"" EWTP_DSIG_URI_SM2_SM3 "\""));
    assert_non_null(strstr(out, "Algorithm=\"" EWTP_DSIG_URI_SM3 "\""));
    /* Appended as the last child: nothing is added outside the Signature element. */
    assert_non_null(strstr(out, "</ds:Signature></ceb:CEB311Message>"));
    /* KeyName defaults to the certificate serial in hex: 8 random bytes = 16 digits. */
    const char *kn = strstr(out, "<ds:KeyName>");
    assert_non_null(kn);
    assert_int_equal(strcspn(kn + 12, "<"), 16);

    struct ewtp_xsd *xsd = NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    assert_int_equal(ewtp_xsd_load(CN_REF "/xsd/by-root/CEB311Message.xsd", errs, &xsd), 0);
    assert_int_equal(ewtp_xsd_validate(xsd, out, out_len, errs), 0);
    assert_int_equal(ewtp_errors_count(errs), 0);
    ewtp_xsd_free(xsd);

    write_file(f, "signed-sm2.xml", out, out_len);
    char path[256];
    snprintf(path, sizeof(path), "%s/cert.pem", f->dir);
    assert_int_equal(ewtp_keys_write_cert_pem(f->keys, "sm2", path), 0);
    cli_pieces(f, "signed-sm2.xml");
    assert_int_equal(run(f, "openssl pkeyutl -verify -rawin -digest sm3 -pubin -inkey pub.pem "
                            "-sigfile sig.bin -in si.c14n -pkeyopt distid:1234567812345678"),
                     0);
    /* The distinguishing id matters: without it the CLI refuses. */
    assert_int_not_equal(run(f, "openssl pkeyutl -verify -rawin -digest sm3 -pubin -inkey "
                                "pub.pem -sigfile sig.bin -in si.c14n -pkeyopt distid:other"),
                         0);
    assert_int_equal(
        run(f, "test \"$(openssl dgst -sm3 -binary ref.c14n | base64)\" = \"$(cat digest.b64)\""),
        0);

    const unsigned char *cert;
    size_t cert_len;
    assert_int_equal(ewtp_keys_cert(f->keys, "sm2", f->a, &cert, &cert_len), 0);
    assert_int_equal(ewtp_dsig_verify(out, out_len, cert, cert_len, errs), 0);
    char *bad = strdup(out);
    char *p = strstr(bad, "<ceb:buyerName>aa<");
    assert_non_null(p);
    p[15] = 'b';
    assert_int_equal(ewtp_dsig_verify(bad, out_len, cert, cert_len, errs), -EWTP_ECRYPTO);
    free(bad);

    /* r||s encoding: 64 bytes, still verifiable. */
    o.flags = EWTP_DSIG_SM2_RAW;
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, xml, len, f->a, &out, &out_len), 0);
    assert_int_equal(ewtp_dsig_verify(out, out_len, cert, cert_len, NULL), 0);
    struct ewtp_xml_doc *d = NULL;
    assert_int_equal(ewtp_xml_parse(out, out_len, NULL, &d), 0);
    ewtp_xml_ns_register(d, "ds", EWTP_DSIG_NS);
    const char *sv;
    assert_int_equal(ewtp_xml_xpath_string(d, NULL, "//ds:SignatureValue", f->a, &sv), 0);
    unsigned char *raw;
    size_t raw_len;
    assert_int_equal(ewtp_base64_decode(f->a, sv, strlen(sv), 0, &raw, &raw_len), 0);
    assert_int_equal(raw_len, 64);
    ewtp_xml_free(d);
    ewtp_errors_free(errs);
    free(xml);
}

static void test_options_and_uris(void **state)
{
    (void)state;
    struct ewtp_dsig_options o;
    ewtp_dsig_options_init(&o, EWTP_SIGN_SM2_SM3, "k");
    assert_int_equal(o.size, sizeof(o));
    assert_int_equal(o.c14n, EWTP_C14N_10);
    assert_int_equal(o.keyinfo, EWTP_DSIG_KEYNAME | EWTP_DSIG_X509_CERT);
    assert_string_equal(o.ds_prefix, "ds");
    assert_string_equal(ewtp_dsig_signature_method_uri(EWTP_SIGN_SM2_SM3),
                        "http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3");
    assert_string_equal(ewtp_dsig_digest_method_uri(EWTP_DIGEST_SM3),
                        "http://www.chinaport.gov.cn/2022/04/xmldsig#sm3");
    assert_string_equal(ewtp_dsig_signature_method_uri(EWTP_SIGN_RSA_SHA1),
                        "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
    assert_null(ewtp_dsig_signature_method_uri((enum ewtp_sign_alg)77));
    struct ewtp_errors *e = ewtp_errors_new();
    const char *plain = "<a/>";
    assert_int_equal(ewtp_dsig_verify(plain, 4, NULL, 0, e), -EWTP_ENOTFOUND);
    assert_true(ewtp_errors_has(e, "", "signature"));
    ewtp_errors_free(e);
}

/* A host creating test identities on first use: the SM2 family follows from signing first. */
static void test_auto_identity_sm2(void **state)
{
    struct fx *f = *state;
    struct ewtp_keys *k = ewtp_keys_new();
    ewtp_keys_set_auto_test(k, true);
    struct ewtp_host h = {
        .size = sizeof(h), .ctx = k, .sign = ewtp_keys_sign, .cert = ewtp_keys_cert};
    struct ewtp_dsig_options o;
    ewtp_dsig_options_init(&o, EWTP_SIGN_SM2_SM3, "tenant-1");
    const char *out;
    size_t len;
    assert_int_equal(ewtp_dsig_sign(&h, &o, doc_xml, strlen(doc_xml), f->a, &out, &len), 0);
    assert_true(ewtp_keys_is_test(k, "tenant-1"));
    assert_int_equal(ewtp_dsig_verify(out, len, NULL, 0, NULL), 0);
    ewtp_keys_free(k);
}

/* The DER of a PEM certificate file of the fixture's directory, in the arena. */
static const unsigned char *cert_der_of(struct fx *f, const char *pem, size_t *len)
{
    char cmd_out[64];
    snprintf(cmd_out, sizeof(cmd_out), "%s.der", pem);
    assert_int_equal(run(f, "openssl x509 -in %s -outform DER -out %s", pem, cmd_out), 0);
    char *b = read_tmp(f, cmd_out, len);
    unsigned char *d = ewtp_arena_memdup(f->a, b, *len);
    free(b);
    return d;
}

/* ewtp_dsig_verify_trusted (1.7): a signature counts only when its certificate is pinned or
 * chains to a caller-given anchor; the certificate a document carries is never trusted by
 * itself, while ewtp_dsig_verify keeps its documented meaning (integrity with the embedded
 * certificate). */
static void test_verify_trusted(void **state)
{
    struct fx *f = *state;
    struct ewtp_dsig_options o;
    ewtp_dsig_options_init(&o, EWTP_SIGN_RSA_SHA256, "rsa");
    const char *out;
    size_t len;
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len), 0);
    const unsigned char *own, *other;
    size_t own_len, other_len;
    assert_int_equal(ewtp_keys_cert(f->keys, "rsa", f->a, &own, &own_len), 0);
    assert_int_equal(ewtp_keys_cert(f->keys, "ec", f->a, &other, &other_len), 0);

    /* Signed by a key nobody trusts, its own certificate embedded: the old function accepts
     * (documented), the trusted one refuses with a reason. */
    assert_int_equal(ewtp_dsig_verify(out, len, NULL, 0, NULL), 0);
    const unsigned char *const certs_other[] = {other};
    const size_t lens_other[] = {other_len};
    struct ewtp_dsig_trust t_other =
        EWTP_DSIG_TRUST_INIT(.certs = certs_other, .cert_lens = lens_other, .n_certs = 1);
    struct ewtp_errors *e = ewtp_errors_new();
    assert_int_equal(ewtp_dsig_verify_trusted(out, len, &t_other, e), -EWTP_ECRYPTO);
    assert_true(ewtp_errors_has(e, "", "signature"));
    assert_non_null(strstr(ewtp_errors_at(e, 0)->message, "not trusted"));
    ewtp_errors_free(e);
    /* No trust store at all is a caller error, never "trust the document". */
    struct ewtp_dsig_trust t_none = EWTP_DSIG_TRUST_INIT(.n_certs = 0);
    assert_int_equal(ewtp_dsig_verify_trusted(out, len, &t_none, NULL), -EWTP_EINVAL);
    assert_int_equal(ewtp_dsig_verify_trusted(out, len, NULL, NULL), -EWTP_EINVAL);

    /* The signer's certificate pinned: accepted; one changed byte: refused. */
    const unsigned char *const certs_own[] = {other, own};
    const size_t lens_own[] = {other_len, own_len};
    struct ewtp_dsig_trust t_own =
        EWTP_DSIG_TRUST_INIT(.certs = certs_own, .cert_lens = lens_own, .n_certs = 2);
    assert_int_equal(ewtp_dsig_verify_trusted(out, len, &t_own, NULL), 0);
    char *bad = strdup(out);
    char *p = strstr(bad, "order-A-1");
    assert_non_null(p);
    p[8] = '2';
    assert_int_equal(ewtp_dsig_verify_trusted(bad, len, &t_own, NULL), -EWTP_ECRYPTO);
    free(bad);

    /* A leaf issued by a CA: trusted through the CA, refused through another CA even though its
     * subject and the embedded certificate are the same. */
    assert_int_equal(
        run(f, "for ca in ca1 ca2; do openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
               "-subj \"/CN=ewtp $ca TEST\" -keyout $ca.key -out $ca.pem; done && "
               "openssl req -newkey rsa:2048 -nodes -subj '/CN=ewtp signer TEST' "
               "-keyout leaf.key -out leaf.csr && "
               "openssl x509 -req -in leaf.csr -CA ca1.pem -CAkey ca1.key -CAcreateserial "
               "-days 2 -out leaf.pem"),
        0);
    char kp[256], cp[256];
    snprintf(kp, sizeof(kp), "%s/leaf.key", f->dir);
    snprintf(cp, sizeof(cp), "%s/leaf.pem", f->dir);
    assert_int_equal(ewtp_keys_add_pem(f->keys, "leaf", kp, cp, NULL), 0);
    ewtp_dsig_options_init(&o, EWTP_SIGN_RSA_SHA256, "leaf");
    assert_int_equal(ewtp_dsig_sign(&f->host, &o, doc_xml, strlen(doc_xml), f->a, &out, &len), 0);
    size_t ca1_len, ca2_len;
    const unsigned char *ca1 = cert_der_of(f, "ca1.pem", &ca1_len);
    const unsigned char *ca2 = cert_der_of(f, "ca2.pem", &ca2_len);
    const unsigned char *const c1[] = {ca1}, *const c2[] = {ca2};
    struct ewtp_dsig_trust t1 =
        EWTP_DSIG_TRUST_INIT(.certs = c1, .cert_lens = &ca1_len, .n_certs = 1);
    struct ewtp_dsig_trust t2 =
        EWTP_DSIG_TRUST_INIT(.certs = c2, .cert_lens = &ca2_len, .n_certs = 1);
    assert_int_equal(ewtp_dsig_verify_trusted(out, len, &t1, NULL), 0);
    assert_int_equal(ewtp_dsig_verify_trusted(out, len, &t2, NULL), -EWTP_ECRYPTO);
    /* Validity is checked at at_ms: ten years on, the two-day leaf has expired. */
    t1.at_ms = (int64_t)(time(NULL) + 10 * 365 * 86400LL) * 1000;
    assert_int_equal(ewtp_dsig_verify_trusted(out, len, &t1, NULL), -EWTP_ECRYPTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_and_uris),
        cmocka_unit_test(test_rsa_xmlsec),
        cmocka_unit_test(test_rsa_sha1_exclusive_placement),
        cmocka_unit_test(test_ecdsa_xmlsec),
        cmocka_unit_test(test_sm2_ceb311),
        cmocka_unit_test(test_auto_identity_sm2),
        cmocka_unit_test(test_verify_trusted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
