/* dsig.c — XML-DSig enveloped signature assembly and verification. See ewtp/dsig.h. */
#include "xml_internal.h"

#include <ewtp/dsig.h>

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/xpathInternals.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define SM2_ID "1234567812345678"
#define B64_LINE 76

void ewtp_dsig_options_init(struct ewtp_dsig_options *o, enum ewtp_sign_alg alg,
                            const char *key_name)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->alg = alg;
    o->key_name = key_name;
    o->ds_prefix = "ds";
    o->c14n = EWTP_C14N_10;
    o->keyinfo = EWTP_DSIG_KEYNAME | EWTP_DSIG_X509_CERT;
}

const char *ewtp_dsig_signature_method_uri(enum ewtp_sign_alg alg)
{
    switch (alg) {
    case EWTP_SIGN_RSA_SHA1:
        return EWTP_DSIG_URI_RSA_SHA1;
    case EWTP_SIGN_RSA_SHA256:
        return EWTP_DSIG_URI_RSA_SHA256;
    case EWTP_SIGN_SM2_SM3:
        return EWTP_DSIG_URI_SM2_SM3;
    case EWTP_SIGN_ECDSA_SHA256:
        return EWTP_DSIG_URI_ECDSA_SHA256;
    case EWTP_SIGN_RSA_SHA512: /* 1.3, for JSON envelopes (EIMS); not offered for XML-DSig */
        return NULL;
    }
    return NULL;
}

const char *ewtp_dsig_digest_method_uri(enum ewtp_digest_alg alg)
{
    switch (alg) {
    case EWTP_DIGEST_SHA1:
        return EWTP_DSIG_URI_SHA1;
    case EWTP_DIGEST_SHA256:
        return EWTP_DSIG_URI_SHA256;
    case EWTP_DIGEST_SM3:
        return EWTP_DSIG_URI_SM3;
    }
    return NULL;
}

static enum ewtp_digest_alg default_digest(enum ewtp_sign_alg alg)
{
    switch (alg) {
    case EWTP_SIGN_RSA_SHA1:
        return EWTP_DIGEST_SHA1;
    case EWTP_SIGN_RSA_SHA256:
    case EWTP_SIGN_ECDSA_SHA256:
        return EWTP_DIGEST_SHA256;
    case EWTP_SIGN_SM2_SM3:
        return EWTP_DIGEST_SM3;
    case EWTP_SIGN_RSA_SHA512: /* no XML-DSig method (ewtp_dsig_signature_method_uri) */
        break;
    }
    return 0;
}

/* ---- Options with the size rule applied ---- */

/* Copies the caller's options over the defaults, only as far as its size covers. */
static int load_options(const struct ewtp_dsig_options *in, struct ewtp_dsig_options *o)
{
    if (in == NULL || in->size < offsetof(struct ewtp_dsig_options, parent_xpath))
        return -EWTP_EINVAL;
    ewtp_dsig_options_init(o, in->alg, in->key_name);
    memcpy(o, in, in->size < sizeof(*o) ? in->size : sizeof(*o));
    o->size = sizeof(*o);
    if (o->ds_prefix == NULL)
        o->ds_prefix = "ds";
    if (o->digest == 0)
        o->digest = default_digest(o->alg);
    if (o->signature_method_uri == NULL)
        o->signature_method_uri = ewtp_dsig_signature_method_uri(o->alg);
    if (o->digest_method_uri == NULL)
        o->digest_method_uri = ewtp_dsig_digest_method_uri(o->digest);
    if (o->key_name == NULL || o->signature_method_uri == NULL || o->digest_method_uri == NULL ||
        ewtp_c14n_uri(o->c14n, o->c14n_comments) == NULL)
        return -EWTP_EINVAL;
    return 0;
}

/* ---- Signature value encodings ---- */

/* DER ECDSA/SM2 (r,s) to fixed-width r||s, width bytes each. */
static int der_to_raw(const unsigned char *der, size_t len, size_t width, struct ewtp_arena *a,
                      const unsigned char **out, size_t *out_len)
{
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (s == NULL)
        return -EWTP_ECRYPTO;
    const BIGNUM *r = NULL, *sv = NULL;
    ECDSA_SIG_get0(s, &r, &sv);
    unsigned char *b = ewtp_arena_alloc(a, 2 * width);
    int rc = 0;
    if (b == NULL)
        rc = -EWTP_ENOMEM;
    else if (BN_bn2binpad(r, b, (int)width) < 0 || BN_bn2binpad(sv, b + width, (int)width) < 0)
        rc = -EWTP_ECRYPTO;
    ECDSA_SIG_free(s);
    if (rc == 0) {
        *out = b;
        *out_len = 2 * width;
    }
    return rc;
}

/* r||s to DER; malloc'd, caller frees with OPENSSL_free. */
static int raw_to_der(const unsigned char *raw, size_t len, unsigned char **der, size_t *der_len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL);
    BIGNUM *sv = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);
    if (s == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(s, r, sv) != 1) {
        ECDSA_SIG_free(s);
        BN_free(r);
        BN_free(sv);
        return -EWTP_ENOMEM;
    }
    *der = NULL;
    int n = i2d_ECDSA_SIG(s, der);
    ECDSA_SIG_free(s);
    if (n <= 0)
        return -EWTP_ECRYPTO;
    *der_len = (size_t)n;
    return 0;
}

/* ---- Tree building ---- */

struct builder {
    xmlDocPtr doc;
    xmlNsPtr ns;
    bool pretty;
    int err;
};

static void add_nl(struct builder *b, xmlNodePtr parent)
{
    if (b->pretty && b->err == 0) {
        xmlNodePtr t = xmlNewDocText(b->doc, BAD_CAST "\n");
        if (t == NULL || xmlAddChild(parent, t) == NULL) {
            xmlFreeNode(t);
            b->err = -EWTP_ENOMEM;
        }
    }
}

/* New ds: child of parent (a newline before it when pretty), with text when non-NULL. */
static xmlNodePtr add_el(struct builder *b, xmlNodePtr parent, const char *name, const char *text)
{
    if (b->err != 0)
        return NULL;
    add_nl(b, parent);
    xmlNodePtr n = xmlNewDocNode(b->doc, b->ns, BAD_CAST name, NULL);
    if (n == NULL || xmlAddChild(parent, n) == NULL) {
        xmlFreeNode(n);
        b->err = -EWTP_ENOMEM;
        return NULL;
    }
    if (text != NULL) {
        xmlNodePtr t = xmlNewDocText(b->doc, BAD_CAST text);
        if (t == NULL || xmlAddChild(n, t) == NULL) {
            xmlFreeNode(t);
            b->err = -EWTP_ENOMEM;
        }
    }
    return n;
}

/* An element with an Algorithm attribute and no content. */
static xmlNodePtr add_alg(struct builder *b, xmlNodePtr parent, const char *name, const char *uri)
{
    xmlNodePtr n = add_el(b, parent, name, NULL);
    if (n != NULL && xmlNewProp(n, BAD_CAST "Algorithm", BAD_CAST uri) == NULL)
        b->err = -EWTP_ENOMEM;
    return n;
}

/* Base64 with the pretty layout of the CEB samples: on its own lines. */
static const char *b64_text(struct builder *b, struct ewtp_arena *a, const unsigned char *p,
                            size_t n)
{
    const char *s = ewtp_base64_encode_ex(a, p, n, 0, b->pretty ? B64_LINE : 0);
    if (s != NULL && b->pretty)
        s = ewtp_arena_printf(a, "\n%s\n", s);
    if (s == NULL)
        b->err = -EWTP_ENOMEM;
    return s;
}

/* ---- Certificate details for KeyInfo ---- */

struct cert_info {
    const char *serial_hex; /* lowercase, even number of digits */
    const char *serial_dec;
    const char *issuer; /* RFC 2253 */
};

/* The details of the last few signing certificates, by their exact DER: parsing the
 * certificate again for every signature cost about a fifth of a China delivery's instructions
 * (issue 20). A reloaded key with another certificate is another entry. */
#define CERT_CACHE 4
static struct {
    unsigned char *der;
    size_t len;
    char *serial_hex, *serial_dec, *issuer;
} cert_cache[CERT_CACHE];
static unsigned cert_cache_next;
static pthread_mutex_t cert_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static bool cert_cached(const unsigned char *der, size_t len, struct ewtp_arena *a,
                        struct cert_info *ci)
{
    bool hit = false;
    pthread_mutex_lock(&cert_cache_mu);
    for (unsigned i = 0; i < CERT_CACHE && !hit; i++)
        if (cert_cache[i].der != NULL && cert_cache[i].len == len &&
            memcmp(cert_cache[i].der, der, len) == 0) {
            ci->serial_hex = ewtp_arena_strdup(a, cert_cache[i].serial_hex);
            ci->serial_dec = ewtp_arena_strdup(a, cert_cache[i].serial_dec);
            ci->issuer = ewtp_arena_strdup(a, cert_cache[i].issuer);
            hit = ci->serial_hex != NULL && ci->serial_dec != NULL && ci->issuer != NULL;
        }
    pthread_mutex_unlock(&cert_cache_mu);
    return hit;
}

static void cert_remember(const unsigned char *der, size_t len, const struct cert_info *ci)
{
    unsigned char *d = malloc(len ? len : 1);
    char *h = strdup(ci->serial_hex), *dec = strdup(ci->serial_dec), *is = strdup(ci->issuer);
    if (d == NULL || h == NULL || dec == NULL || is == NULL) {
        free(d);
        free(h);
        free(dec);
        free(is);
        return; /* only slower */
    }
    memcpy(d, der, len);
    pthread_mutex_lock(&cert_cache_mu);
    unsigned i = cert_cache_next++ % CERT_CACHE;
    free(cert_cache[i].der);
    free(cert_cache[i].serial_hex);
    free(cert_cache[i].serial_dec);
    free(cert_cache[i].issuer);
    cert_cache[i].der = d;
    cert_cache[i].len = len;
    cert_cache[i].serial_hex = h;
    cert_cache[i].serial_dec = dec;
    cert_cache[i].issuer = is;
    pthread_mutex_unlock(&cert_cache_mu);
}

static int cert_parse(const unsigned char *der, size_t len, struct ewtp_arena *a,
                      struct cert_info *ci);

static int cert_details(const unsigned char *der, size_t len, struct ewtp_arena *a,
                        struct cert_info *ci)
{
    if (cert_cached(der, len, a, ci))
        return 0;
    int rc = cert_parse(der, len, a, ci);
    if (rc == 0)
        cert_remember(der, len, ci);
    return rc;
}

static int cert_parse(const unsigned char *der, size_t len, struct ewtp_arena *a,
                      struct cert_info *ci)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL)
        return -EWTP_ECRYPTO;
    int rc = -EWTP_ENOMEM;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *dec = bn != NULL ? BN_bn2dec(bn) : NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bn == NULL || dec == NULL || bio == NULL)
        goto out;
    int nb = BN_num_bytes(bn);
    unsigned char *bin = ewtp_arena_alloc(a, nb > 0 ? (size_t)nb : 1);
    if (bin == NULL)
        goto out;
    if (nb == 0) { /* serial 0 still shows as "00" */
        bin[0] = 0;
        nb = 1;
    } else {
        BN_bn2bin(bn, bin);
    }
    ci->serial_hex = ewtp_hex_encode(a, bin, (size_t)nb);
    ci->serial_dec = ewtp_arena_strdup(a, dec);
    if (X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253) < 0) {
        rc = -EWTP_ECRYPTO;
        goto out;
    }
    char *mem = NULL;
    long ml = BIO_get_mem_data(bio, &mem);
    ci->issuer = ewtp_arena_strndup(a, mem != NULL ? mem : "", ml > 0 ? (size_t)ml : 0);
    if (ci->serial_hex != NULL && ci->serial_dec != NULL && ci->issuer != NULL)
        rc = 0;
out:
    BIO_free(bio);
    OPENSSL_free(dec);
    BN_free(bn);
    X509_free(x);
    return rc;
}

/* ---- Sign ---- */

static int register_ns(struct ewtp_xml_doc *d, const char *const *ns)
{
    for (size_t i = 0; ns != NULL && ns[i] != NULL; i += 2) {
        if (ns[i + 1] == NULL)
            return -EWTP_EINVAL;
        int rc = ewtp_xml_ns_register(d, ns[i], ns[i + 1]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* First element xpath selects from ctx, or NULL. */
static int first_node(struct ewtp_xml_doc *d, xmlNodePtr ctx, const char *xpath, xmlNodePtr *out)
{
    xmlXPathObjectPtr r;
    int rc = ewtpi_xml_eval_nodes(d, ctx, xpath, &r);
    if (rc < 0)
        return rc;
    *out = r->nodesetval != NULL && r->nodesetval->nodeNr > 0 ? r->nodesetval->nodeTab[0] : NULL;
    xmlXPathFreeObject(r);
    return 0;
}

/* Places the Signature element: under parent, before `before` when given. */
static int place_signature(struct ewtp_xml_doc *d, const struct ewtp_dsig_options *o,
                           xmlNodePtr sig)
{
    xmlNodePtr parent = xmlDocGetRootElement(d->doc), before = NULL;
    int rc;
    if (o->parent_xpath != NULL) {
        if ((rc = first_node(d, NULL, o->parent_xpath, &parent)) < 0)
            return rc;
        if (parent == NULL)
            return -EWTP_ENOTFOUND;
        if (parent->type != XML_ELEMENT_NODE)
            return -EWTP_EINVAL;
    }
    if (o->before_xpath != NULL) {
        if ((rc = first_node(d, parent, o->before_xpath, &before)) < 0)
            return rc;
        if (before != NULL && before->parent != parent)
            return -EWTP_EINVAL; /* must be a child of the parent */
    }
    xmlNodePtr r = before != NULL ? xmlAddPrevSibling(before, sig) : xmlAddChild(parent, sig);
    return r == NULL ? -EWTP_ENOMEM : 0;
}

int ewtp_dsig_sign(const struct ewtp_host *host, const struct ewtp_dsig_options *opt,
                   const void *doc, size_t len, struct ewtp_arena *a, const char **out,
                   size_t *out_len)
{
    struct ewtp_dsig_options o;
    int rc = load_options(opt, &o);
    if (rc < 0 || out == NULL || out_len == NULL)
        return rc < 0 ? rc : -EWTP_EINVAL;
    if (!EWTP_HOST_HAS(host, sign))
        return -EWTP_EUNSUPP;

    /* The certificate is fetched after signing: a host creating test identities on first use
     * picks the key family from the algorithm of the first sign call (keys.h). */
    const unsigned char *cert = NULL;
    size_t cert_len = 0;
    struct cert_info ci = {0};
    bool need_cert = (o.keyinfo & (EWTP_DSIG_X509_CERT | EWTP_DSIG_X509_ISSUER_SERIAL)) ||
                     ((o.keyinfo & EWTP_DSIG_KEYNAME) && o.key_name_text == NULL);
    if (need_cert && !EWTP_HOST_HAS(host, cert))
        return -EWTP_EUNSUPP;

    struct ewtp_xml_doc *d = NULL;
    if ((rc = ewtp_xml_parse(doc, len, NULL, &d)) < 0)
        return rc;
    if ((rc = register_ns(d, o.ns)) < 0)
        goto out;

    struct builder b = {.doc = d->doc, .pretty = (o.flags & EWTP_DSIG_PRETTY) != 0};
    xmlNodePtr sig = xmlNewDocNode(d->doc, NULL, BAD_CAST "Signature", NULL);
    if (sig == NULL) {
        rc = -EWTP_ENOMEM;
        goto out;
    }
    b.ns =
        xmlNewNs(sig, BAD_CAST EWTP_DSIG_NS, o.ds_prefix[0] != '\0' ? BAD_CAST o.ds_prefix : NULL);
    if (b.ns == NULL) {
        xmlFreeNode(sig);
        rc = -EWTP_ENOMEM;
        goto out;
    }
    xmlSetNs(sig, b.ns);
    if (o.signature_id != NULL && xmlNewProp(sig, BAD_CAST "Id", BAD_CAST o.signature_id) == NULL)
        b.err = -EWTP_ENOMEM;
    if ((rc = place_signature(d, &o, sig)) < 0) {
        xmlFreeNode(sig);
        goto out;
    }

    xmlNodePtr si = add_el(&b, sig, "SignedInfo", NULL);
    add_alg(&b, si, "CanonicalizationMethod", ewtp_c14n_uri(o.c14n, o.c14n_comments));
    add_alg(&b, si, "SignatureMethod", o.signature_method_uri);
    xmlNodePtr ref = add_el(&b, si, "Reference", NULL);
    if (ref != NULL && xmlNewProp(ref, BAD_CAST "URI", BAD_CAST "") == NULL)
        b.err = -EWTP_ENOMEM;
    xmlNodePtr tr = add_el(&b, ref, "Transforms", NULL);
    add_alg(&b, tr, "Transform", EWTP_DSIG_ENVELOPED);
    if (o.flags & EWTP_DSIG_REF_EXCL_C14N)
        add_alg(&b, tr, "Transform", ewtp_c14n_uri(EWTP_C14N_EXCL_10, false));
    add_nl(&b, tr);
    add_alg(&b, ref, "DigestMethod", o.digest_method_uri);
    xmlNodePtr dv = add_el(&b, ref, "DigestValue", NULL);
    add_nl(&b, ref);
    add_nl(&b, si);
    if ((rc = b.err) < 0)
        goto out;

    /* Reference digest: the document minus this Signature, canonicalised. */
    const char *c14n;
    size_t c14n_len;
    enum ewtp_c14n ref_mode =
        (o.flags & EWTP_DSIG_REF_EXCL_C14N) ? EWTP_C14N_EXCL_10 : EWTP_C14N_10;
    if ((rc = ewtpi_xml_c14n_nodes(d->doc, NULL, 0, sig, ref_mode, false, NULL, a, &c14n,
                                   &c14n_len)) < 0)
        goto out;
    unsigned char md[EWTP_DIGEST_MAX];
    size_t md_len;
    if ((rc = ewtp_digest(o.digest, c14n, c14n_len, md, &md_len)) < 0)
        goto out;
    const char *md_b64 = ewtp_base64_encode(a, md, md_len);
    if (md_b64 == NULL) {
        rc = -EWTP_ENOMEM;
        goto out;
    }
    xmlNodeAddContent(dv, BAD_CAST md_b64);

    /* SignedInfo, canonicalised in place (it inherits the document's namespaces). */
    xmlNodePtr apex[1] = {si};
    if ((rc = ewtpi_xml_c14n_nodes(d->doc, apex, 1, NULL, o.c14n, o.c14n_comments, NULL, a, &c14n,
                                   &c14n_len)) < 0)
        goto out;
    const unsigned char *sv;
    size_t sv_len;
    if ((rc = host->sign(host->ctx, o.key_name, o.alg, c14n, c14n_len, a, &sv, &sv_len)) < 0)
        goto out;
    if (o.alg == EWTP_SIGN_ECDSA_SHA256 ||
        (o.alg == EWTP_SIGN_SM2_SM3 && (o.flags & EWTP_DSIG_SM2_RAW))) {
        if ((rc = der_to_raw(sv, sv_len, 32, a, &sv, &sv_len)) < 0)
            goto out;
    }
    add_el(&b, sig, "SignatureValue", b64_text(&b, a, sv, sv_len));

    if (need_cert) {
        if ((rc = host->cert(host->ctx, o.key_name, a, &cert, &cert_len)) < 0 ||
            (rc = cert_details(cert, cert_len, a, &ci)) < 0)
            goto out;
    }
    if (o.keyinfo != 0) {
        xmlNodePtr ki = add_el(&b, sig, "KeyInfo", NULL);
        if (o.keyinfo & EWTP_DSIG_KEYNAME)
            add_el(&b, ki, "KeyName", o.key_name_text != NULL ? o.key_name_text : ci.serial_hex);
        if (o.keyinfo & (EWTP_DSIG_X509_CERT | EWTP_DSIG_X509_ISSUER_SERIAL)) {
            xmlNodePtr xd = add_el(&b, ki, "X509Data", NULL);
            if (o.keyinfo & EWTP_DSIG_X509_ISSUER_SERIAL) {
                xmlNodePtr is = add_el(&b, xd, "X509IssuerSerial", NULL);
                add_el(&b, is, "X509IssuerName", ci.issuer);
                add_el(&b, is, "X509SerialNumber", ci.serial_dec);
                add_nl(&b, is);
            }
            if (o.keyinfo & EWTP_DSIG_X509_CERT)
                add_el(&b, xd, "X509Certificate", b64_text(&b, a, cert, cert_len));
            add_nl(&b, xd);
        }
        add_nl(&b, ki);
    }
    add_nl(&b, sig);
    if ((rc = b.err) < 0)
        goto out;
    rc = ewtp_xml_serialize(d, a, out, out_len);
out:
    ewtp_xml_free(d);
    return rc;
}

/* ---- Verify ---- */

static int vfail(struct ewtp_errors *errs, int rc, const char *msg, const char *detail)
{
    if (errs != NULL)
        ewtp_errors_add(errs, "", "signature", "%s%s%s", msg, detail != NULL ? ": " : "",
                        detail != NULL ? detail : "");
    return rc;
}

static bool c14n_from_uri(const char *uri, enum ewtp_c14n *mode, bool *comments)
{
    for (int m = EWTP_C14N_10; m <= EWTP_C14N_11; m++) {
        for (int c = 0; c <= 1; c++) {
            if (strcmp(uri, ewtp_c14n_uri((enum ewtp_c14n)m, c)) == 0) {
                *mode = (enum ewtp_c14n)m;
                *comments = c;
                return true;
            }
        }
    }
    return false;
}

struct sig_method {
    const char *uri;
    const char *md; /* OpenSSL digest name */
    int kind;       /* 0 RSA, 1 ECDSA (r||s in XML), 2 SM2 */
};

static const struct sig_method sig_methods[] = {
    {EWTP_DSIG_URI_RSA_SHA1, "SHA1", 0},       {EWTP_DSIG_URI_RSA_SHA256, "SHA256", 0},
    {EWTP_DSIG_URI_ECDSA_SHA256, "SHA256", 1}, {EWTP_DSIG_URI_SM2_SM3, "SM3", 2},
    {EWTP_DSIG_URI_SM2_SM3_W3C, "SM3", 2},
};

static bool digest_from_uri(const char *uri, enum ewtp_digest_alg *alg)
{
    static const enum ewtp_digest_alg all[] = {EWTP_DIGEST_SHA1, EWTP_DIGEST_SHA256,
                                               EWTP_DIGEST_SM3};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(uri, ewtp_dsig_digest_method_uri(all[i])) == 0) {
            *alg = all[i];
            return true;
        }
    }
    if (strcmp(uri, "http://www.w3.org/2000/09/xmldsig#sm3") == 0) {
        *alg = EWTP_DIGEST_SM3;
        return true;
    }
    return false;
}

/* An EC key on the SM2 curve decoded as plain EC: rebuild it as an SM2 key so that
 * signature operations use SM2, not ECDSA. Returns the key to use (new ref). */
static EVP_PKEY *as_sm2(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "SM2") || !EVP_PKEY_is_a(k, "EC")) {
        EVP_PKEY_up_ref(k);
        return k;
    }
    char group[64] = "";
    size_t gl = 0;
    EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &gl);
    if (strcmp(group, "SM2") != 0) {
        EVP_PKEY_up_ref(k);
        return k;
    }
    OSSL_PARAM *params = NULL;
    EVP_PKEY *out = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    if (c != NULL && EVP_PKEY_todata(k, EVP_PKEY_PUBLIC_KEY, &params) == 1 &&
        EVP_PKEY_fromdata_init(c) == 1)
        EVP_PKEY_fromdata(c, &out, EVP_PKEY_PUBLIC_KEY, params);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(c);
    return out;
}

static int verify_sig(EVP_PKEY *key, const struct sig_method *m, const char *data, size_t len,
                      const unsigned char *sig, size_t sig_len, struct ewtp_errors *errs)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    int rc;
    if (m->kind == 1 || (m->kind == 2 && sig_len == 64)) {
        if ((rc = raw_to_der(sig, sig_len, &der, &der_len)) < 0)
            return vfail(errs, rc, "cannot decode the signature value", NULL);
        sig = der;
        sig_len = der_len;
    }
    EVP_PKEY *k = key;
    if (m->kind == 2)
        k = as_sm2(key); /* a new reference */
    else
        EVP_PKEY_up_ref(key);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    EVP_MD *md = EVP_MD_fetch(NULL, m->md, NULL);
    rc = -EWTP_ECRYPTO;
    if (k == NULL || mc == NULL || md == NULL) {
        rc = vfail(errs, -EWTP_EUNSUPP, "key or digest not usable", m->md);
        goto out;
    }
    if (m->kind == 2) {
        /* SM2's Z value depends on the distinguishing id: set it before init. */
        pc = EVP_PKEY_CTX_new(k, NULL);
        if (pc == NULL || EVP_PKEY_CTX_set1_id(pc, SM2_ID, strlen(SM2_ID)) <= 0)
            goto out;
        EVP_MD_CTX_set_pkey_ctx(mc, pc);
    }
    if (EVP_DigestVerifyInit(mc, NULL, md, NULL, k) != 1) {
        rc = vfail(errs, -EWTP_EUNSUPP, "the key does not fit the signature method", m->uri);
        goto out;
    }
    if (EVP_DigestVerify(mc, sig, sig_len, (const unsigned char *)data, len) == 1)
        rc = 0;
    else
        rc = vfail(errs, -EWTP_ECRYPTO, "signature value does not match SignedInfo", NULL);
out:
    EVP_MD_free(md);
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(k);
    OPENSSL_free(der);
    return rc;
}

static const char *str_at(struct ewtp_xml_doc *d, xmlNodePtr ctx, const char *xpath,
                          struct ewtp_arena *a)
{
    const char *s = NULL;
    if (ewtp_xml_xpath_string(d, (const struct ewtp_xml_node *)ctx, xpath, a, &s) < 0)
        return NULL;
    return s;
}

/* Verifies the first signature of d with cert_der (NULL: the certificate in KeyInfo). When
 * signer is not NULL and the signature is valid, *signer gets the certificate that verified it
 * (the caller frees it): ewtp_dsig_verify_trusted then decides whether it is trusted. */
static int verify_doc(struct ewtp_xml_doc *d, const unsigned char *cert_der, size_t cert_len,
                      struct ewtp_arena *a, struct ewtp_errors *errs, X509 **signer)
{
    int rc = ewtp_xml_ns_register(d, "ds", EWTP_DSIG_NS);
    if (rc < 0)
        return rc;
    xmlNodePtr sig = NULL, si = NULL;
    if ((rc = first_node(d, NULL, "//ds:Signature", &sig)) < 0)
        return rc;
    if (sig == NULL)
        return vfail(errs, -EWTP_ENOTFOUND, "no ds:Signature element", NULL);
    if ((rc = first_node(d, sig, "ds:SignedInfo", &si)) < 0)
        return rc;
    if (si == NULL)
        return vfail(errs, -EWTP_EFORMAT, "no ds:SignedInfo", NULL);

    const char *cm = str_at(d, si, "string(ds:CanonicalizationMethod/@Algorithm)", a);
    const char *smu = str_at(d, si, "string(ds:SignatureMethod/@Algorithm)", a);
    const char *dmu = str_at(d, si, "string(ds:Reference/ds:DigestMethod/@Algorithm)", a);
    const char *dvs = str_at(d, si, "string(ds:Reference/ds:DigestValue)", a);
    const char *svs = str_at(d, sig, "string(ds:SignatureValue)", a);
    size_t nref = 0, nuri = 0, ntr = 0;
    if (cm == NULL || smu == NULL || dmu == NULL || dvs == NULL || svs == NULL ||
        ewtp_xml_xpath_count(d, (const struct ewtp_xml_node *)si, "ds:Reference", &nref) < 0 ||
        ewtp_xml_xpath_count(d, (const struct ewtp_xml_node *)si, "ds:Reference[@URI='']", &nuri) <
            0 ||
        ewtp_xml_xpath_count(d, (const struct ewtp_xml_node *)si,
                             "ds:Reference/ds:Transforms/ds:Transform", &ntr) < 0)
        return -EWTP_ENOMEM;
    if (nref != 1 || nuri != 1)
        return vfail(errs, -EWTP_EUNSUPP, "need exactly one Reference with URI=\"\"", NULL);

    enum ewtp_c14n si_mode, ref_mode = EWTP_C14N_10;
    bool si_comments, ref_comments = false, enveloped = false;
    if (!c14n_from_uri(cm, &si_mode, &si_comments))
        return vfail(errs, -EWTP_EUNSUPP, "unknown CanonicalizationMethod", cm);
    for (size_t i = 1; i <= ntr; i++) {
        char xp[96];
        snprintf(xp, sizeof(xp), "string(ds:Reference/ds:Transforms/ds:Transform[%zu]/@Algorithm)",
                 i);
        const char *t = str_at(d, si, xp, a);
        bool ignored;
        if (t != NULL && strcmp(t, EWTP_DSIG_ENVELOPED) == 0)
            enveloped = true;
        else if (t == NULL || !c14n_from_uri(t, &ref_mode, &ignored))
            return vfail(errs, -EWTP_EUNSUPP, "unsupported Transform", t);
        /* URI="" has no comments whatever the transform says (XML-DSig 4.3.3.3). */
    }
    if (!enveloped)
        return vfail(errs, -EWTP_EUNSUPP, "the Reference lacks the enveloped transform", NULL);
    const struct sig_method *m = NULL;
    for (size_t i = 0; i < sizeof(sig_methods) / sizeof(sig_methods[0]); i++)
        if (strcmp(smu, sig_methods[i].uri) == 0)
            m = &sig_methods[i];
    if (m == NULL)
        return vfail(errs, -EWTP_EUNSUPP, "unknown SignatureMethod", smu);
    enum ewtp_digest_alg dalg;
    if (!digest_from_uri(dmu, &dalg))
        return vfail(errs, -EWTP_EUNSUPP, "unknown DigestMethod", dmu);

    /* The reference. */
    const char *c14n;
    size_t c14n_len;
    if ((rc = ewtpi_xml_c14n_nodes(d->doc, NULL, 0, sig, ref_mode, ref_comments, NULL, a, &c14n,
                                   &c14n_len)) < 0)
        return rc;
    unsigned char md[EWTP_DIGEST_MAX], *want;
    size_t md_len, want_len;
    if ((rc = ewtp_digest(dalg, c14n, c14n_len, md, &md_len)) < 0)
        return rc;
    if (ewtp_base64_decode(a, dvs, strlen(dvs), EWTP_BASE64_ALLOW_WS, &want, &want_len) < 0)
        return vfail(errs, -EWTP_EFORMAT, "DigestValue is not Base64", NULL);
    if (want_len != md_len || memcmp(want, md, md_len) != 0)
        return vfail(errs, -EWTP_ECRYPTO, "reference digest does not match the document", NULL);

    /* The signature over SignedInfo. */
    xmlNodePtr apex[1] = {si};
    if ((rc = ewtpi_xml_c14n_nodes(d->doc, apex, 1, NULL, si_mode, si_comments, NULL, a, &c14n,
                                   &c14n_len)) < 0)
        return rc;
    unsigned char *sv;
    size_t sv_len;
    if (ewtp_base64_decode(a, svs, strlen(svs), EWTP_BASE64_ALLOW_WS, &sv, &sv_len) < 0)
        return vfail(errs, -EWTP_EFORMAT, "SignatureValue is not Base64", NULL);

    if (cert_der == NULL) {
        const char *cs = str_at(d, sig, "string(ds:KeyInfo/ds:X509Data/ds:X509Certificate)", a);
        unsigned char *cb;
        size_t cl;
        if (cs == NULL || cs[0] == '\0')
            return vfail(errs, -EWTP_ENOTFOUND, "no certificate given and none in KeyInfo", NULL);
        if (ewtp_base64_decode(a, cs, strlen(cs), EWTP_BASE64_ALLOW_WS, &cb, &cl) < 0)
            return vfail(errs, -EWTP_EFORMAT, "X509Certificate is not Base64", NULL);
        cert_der = cb;
        cert_len = cl;
    }
    const unsigned char *p = cert_der;
    X509 *x = d2i_X509(NULL, &p, (long)cert_len);
    EVP_PKEY *key = x != NULL ? X509_get0_pubkey(x) : NULL;
    if (key == NULL) {
        X509_free(x);
        return vfail(errs, -EWTP_EFORMAT, "cannot read the certificate's public key", NULL);
    }
    rc = verify_sig(key, m, c14n, c14n_len, sv, sv_len, errs);
    if (rc == 0 && signer != NULL) {
        *signer = x;
        return 0;
    }
    X509_free(x);
    return rc;
}

int ewtp_dsig_verify(const void *doc, size_t len, const unsigned char *cert_der, size_t cert_len,
                     struct ewtp_errors *errs)
{
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return -EWTP_ENOMEM;
    struct ewtp_xml_doc *d = NULL;
    int rc = ewtp_xml_parse(doc, len, errs, &d);
    if (rc == 0)
        rc = verify_doc(d, cert_der, cert_len, a, errs, NULL);
    ewtp_xml_free(d);
    ewtp_arena_free(a);
    return rc;
}

/* Whether signer is one of trust's certificates or chains to one (X509_verify_cert with the
 * trusted certificates as the only anchors, partial chains allowed so that a pinned end-entity
 * or intermediate certificate is an anchor of its own). The certificates a document carries
 * are never anchors. */
static int trust_check(X509 *signer, const struct ewtp_dsig_trust *t, struct ewtp_errors *errs)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = store && ctx ? 0 : -EWTP_ENOMEM;
    size_t usable = 0;
    for (size_t i = 0; rc == 0 && i < t->n_certs; i++) {
        const unsigned char *p = t->certs[i];
        X509 *c = p ? d2i_X509(NULL, &p, (long)t->cert_lens[i]) : NULL;
        if (c == NULL)
            continue; /* an unreadable trust entry trusts nothing */
        if (X509_STORE_add_cert(store, c) == 1)
            usable++;
        X509_free(c);
    }
    if (rc == 0 && usable == 0)
        rc = vfail(errs, -EWTP_EINVAL, "the trust store holds no readable certificate", NULL);
    if (rc == 0 && X509_STORE_CTX_init(ctx, store, signer, NULL) != 1)
        rc = -EWTP_ENOMEM;
    if (rc == 0) {
        X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
        if (t->at_ms > 0)
            X509_VERIFY_PARAM_set_time(vp, (time_t)(t->at_ms / 1000));
        if (X509_verify_cert(ctx) != 1)
            rc = vfail(errs, -EWTP_ECRYPTO, "the signing certificate is not trusted",
                       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

int ewtp_dsig_verify_trusted(const void *doc, size_t len, const struct ewtp_dsig_trust *trust,
                             struct ewtp_errors *errs)
{
    if (trust == NULL || trust->size < offsetof(struct ewtp_dsig_trust, at_ms) ||
        trust->n_certs == 0 || trust->certs == NULL || trust->cert_lens == NULL)
        return vfail(errs, -EWTP_EINVAL, "a trust store of at least one certificate is required",
                     NULL);
    struct ewtp_dsig_trust t = {0};
    memcpy(&t, trust, trust->size < sizeof(t) ? trust->size : sizeof(t));
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return -EWTP_ENOMEM;
    struct ewtp_xml_doc *d = NULL;
    X509 *signer = NULL;
    int rc = ewtp_xml_parse(doc, len, errs, &d);
    if (rc == 0) {
        rc = ewtp_xml_ns_register(d, "ds", EWTP_DSIG_NS);
        size_t embedded = 0;
        if (rc == 0 && ewtp_xml_xpath_count(d, NULL,
                                            "//ds:Signature[1]/ds:KeyInfo/ds:X509Data/"
                                            "ds:X509Certificate",
                                            &embedded) < 0)
            rc = -EWTP_ENOMEM;
        if (rc == 0 && embedded > 0) {
            rc = verify_doc(d, NULL, 0, a, errs, &signer);
        } else if (rc == 0) {
            /* No certificate in the document: the signature must verify with a trusted one. */
            rc = -EWTP_ECRYPTO;
            for (size_t i = 0; rc != 0 && i < t.n_certs; i++)
                if (t.certs[i])
                    rc = verify_doc(d, t.certs[i], t.cert_lens[i], a, NULL, &signer);
            if (rc != 0)
                rc = vfail(errs, rc, "no trusted certificate verifies the signature", NULL);
        }
    }
    if (rc == 0)
        rc = trust_check(signer, &t, errs);
    X509_free(signer);
    ewtp_xml_free(d);
    ewtp_arena_free(a);
    return rc;
}
