/* The MyInvois document signature (FACTS.md §3, the procedure that reproduces LHDN's signed
 * samples). Not XML-DSig as a standard verifier knows it: the RSA signature is over the
 * transformed document itself, not over SignedInfo, and the SignedProperties digest is over a
 * .NET XmlWriter serialisation, not over any W3C canonical form. ewtp/dsig.h therefore does
 * not fit; this file assembles it from xml.h, json.h and crypto.h and the host's sign/cert. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/json.h>
#include <ewtp/xml.h>

#include "my.h"

#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define NS_XADES "http://uri.etsi.org/01903/v1.3.2#"
#define SHA256_URI "http://www.w3.org/2001/04/xmlenc#sha256"

char *my_b64_sha256(struct ewtp_arena *a, const void *data, size_t len)
{
    unsigned char md[EWTP_DIGEST_MAX];
    size_t md_len = 0;
    if (ewtp_digest(EWTP_DIGEST_SHA256, data, len, md, &md_len) != 0)
        return NULL;
    return ewtp_base64_encode(a, md, md_len);
}

/* ---- a growing string in the arena ---- */
struct sb {
    struct ewtp_arena *a;
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_putn(struct sb *s, const char *t, size_t n)
{
    if (s->oom)
        return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *np = ewtp_arena_alloc(s->a, cap);
        if (np == NULL) {
            s->oom = true;
            return;
        }
        if (s->len)
            memcpy(np, s->p, s->len);
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_put(struct sb *s, const char *t)
{
    sb_putn(s, t, strlen(t));
}

/* Text escaped as .NET XmlWriter and C14N do for element content. */
static void sb_text(struct sb *s, const char *t)
{
    for (; *t; t++) {
        switch (*t) {
        case '&':
            sb_put(s, "&amp;");
            break;
        case '<':
            sb_put(s, "&lt;");
            break;
        case '>':
            sb_put(s, "&gt;");
            break;
        case '\r':
            sb_put(s, "&#xD;");
            break;
        default:
            sb_putn(s, t, 1);
        }
    }
}

char *my_xml_signed_props(struct ewtp_arena *a, const char *signing_time, const char *cert_digest,
                          const char *issuer, const char *serial)
{
    /* Attributes first, then the namespace declarations the element needs; xmlns:ds again on
     * every ds: element because siblings do not inherit from each other; " />" for empty
     * elements (FACTS.md §3.2.6). */
    struct sb s = {.a = a};
    sb_put(&s, "<xades:SignedProperties Id=\"id-xades-signed-props\" xmlns:xades=\"" NS_XADES
               "\"><xades:SignedSignatureProperties><xades:SigningTime>");
    sb_text(&s, signing_time);
    sb_put(&s, "</xades:SigningTime><xades:SigningCertificate><xades:Cert><xades:CertDigest>"
               "<ds:DigestMethod Algorithm=\"" SHA256_URI "\" xmlns:ds=\"" NS_DS "\" />"
               "<ds:DigestValue xmlns:ds=\"" NS_DS "\">");
    sb_text(&s, cert_digest);
    sb_put(&s, "</ds:DigestValue></xades:CertDigest><xades:IssuerSerial>"
               "<ds:X509IssuerName xmlns:ds=\"" NS_DS "\">");
    sb_text(&s, issuer);
    sb_put(&s, "</ds:X509IssuerName><ds:X509SerialNumber xmlns:ds=\"" NS_DS "\">");
    sb_text(&s, serial);
    sb_put(&s, "</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert>"
               "</xades:SigningCertificate></xades:SignedSignatureProperties>"
               "</xades:SignedProperties>");
    return s.oom ? NULL : s.p;
}

/* ---- DER: just enough of X.509 for issuer, serial and subject ---- */

struct der {
    const unsigned char *p;
    size_t len;
};

/* Reads one TLV from *in; false when malformed. */
static bool der_next(struct der *in, unsigned *tag, struct der *val)
{
    if (in->len < 2)
        return false;
    *tag = in->p[0];
    size_t n = in->p[1], hdr = 2;
    if (n & 0x80) {
        size_t k = n & 0x7f;
        if (k == 0 || k > 4 || in->len < 2 + k)
            return false;
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = (n << 8) | in->p[2 + i];
        hdr += k;
    }
    if (n > in->len - hdr)
        return false;
    val->p = in->p + hdr;
    val->len = n;
    in->p += hdr + n;
    in->len -= hdr + n;
    return true;
}

static const char *oid_text(struct ewtp_arena *a, struct der oid)
{
    char buf[128];
    size_t o = 0;
    unsigned long v = 0;
    bool first = true;
    for (size_t i = 0; i < oid.len && o < sizeof(buf) - 24; i++) {
        v = (v << 7) | (oid.p[i] & 0x7f);
        if (oid.p[i] & 0x80)
            continue;
        if (first) {
            unsigned long x = v < 80 ? v / 40 : 2;
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%lu.%lu", x, v - x * 40);
            first = false;
        } else {
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, ".%lu", v);
        }
        v = 0;
    }
    buf[o < sizeof(buf) ? o : sizeof(buf) - 1] = '\0';
    return ewtp_arena_strdup(a, buf);
}

/* Attribute names as .NET's X500DistinguishedName writes them. */
static const char *rdn_key(struct ewtp_arena *a, const char *oid)
{
    static const char *const map[][2] = {
        {"2.5.4.3", "CN"},
        {"2.5.4.6", "C"},
        {"2.5.4.10", "O"},
        {"2.5.4.11", "OU"},
        {"2.5.4.7", "L"},
        {"2.5.4.8", "S"},
        {"2.5.4.9", "STREET"},
        {"2.5.4.5", "SERIALNUMBER"},
        {"1.2.840.113549.1.9.1", "E"},
        {"2.5.4.4", "SN"},
        {"2.5.4.42", "G"},
        {"2.5.4.12", "T"},
        {"0.9.2342.19200300.100.1.25", "DC"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], oid) == 0)
            return map[i][1];
    return ewtp_arena_printf(a, "OID.%s", oid);
}

/* Name -> "CN=x, OU=y, O=z, C=MY": .NET renders the last RDN first. */
static const char *der_name(struct ewtp_arena *a, struct der name)
{
    const char *parts[32];
    size_t n = 0;
    unsigned tag;
    struct der set;
    while (n < 32 && der_next(&name, &tag, &set)) {
        struct der seq;
        while (n < 32 && der_next(&set, &tag, &seq)) {
            struct der oid, val;
            unsigned t1, t2;
            if (!der_next(&seq, &t1, &oid) || !der_next(&seq, &t2, &val) || t1 != 0x06)
                return NULL;
            const char *v = ewtp_arena_strndup(a, (const char *)val.p, val.len);
            bool quote = v && (strpbrk(v, ",+=\"<>#;\n") != NULL || v[0] == ' ' ||
                               (val.len && v[val.len - 1] == ' '));
            parts[n++] = ewtp_arena_printf(a, quote ? "%s=\"%s\"" : "%s=%s",
                                           rdn_key(a, oid_text(a, oid)), v ? v : "");
        }
    }
    struct sb s = {.a = a};
    for (size_t i = n; i > 0; i--) {
        sb_put(&s, parts[i - 1]);
        if (i > 1)
            sb_put(&s, ", ");
    }
    return s.oom ? NULL : s.p ? s.p : "";
}

/* Unsigned big-endian integer -> decimal text. */
static const char *der_decimal(struct ewtp_arena *a, struct der v)
{
    unsigned char num[64];
    size_t n = v.len > sizeof(num) ? sizeof(num) : v.len;
    memcpy(num, v.p, n);
    char digits[160];
    size_t d = 0;
    for (;;) {
        bool zero = true;
        unsigned rem = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned cur = rem * 256 + num[i];
            num[i] = (unsigned char)(cur / 10);
            rem = cur % 10;
            zero = zero && num[i] == 0;
        }
        digits[d++] = (char)('0' + rem);
        if (zero || d >= sizeof(digits) - 1)
            break;
    }
    char out[160];
    for (size_t i = 0; i < d; i++)
        out[i] = digits[d - 1 - i];
    out[d] = '\0';
    return ewtp_arena_strdup(a, out);
}

int my_cert_facts(struct ewtp_arena *a, const unsigned char *der, size_t len, const char **issuer,
                  const char **serial, const char **subject)
{
    struct der in = {der, len}, cert, tbs, v;
    unsigned tag;
    if (!der_next(&in, &tag, &cert) || tag != 0x30 || !der_next(&cert, &tag, &tbs) || tag != 0x30)
        return -EWTP_EFORMAT;
    if (!der_next(&tbs, &tag, &v))
        return -EWTP_EFORMAT;
    if (tag == 0xa0 && !der_next(&tbs, &tag, &v)) /* [0] version, then the serial */
        return -EWTP_EFORMAT;
    if (tag != 0x02)
        return -EWTP_EFORMAT;
    *serial = der_decimal(a, v);
    struct der alg, iss, validity, subj;
    if (!der_next(&tbs, &tag, &alg) || !der_next(&tbs, &tag, &iss) || tag != 0x30 ||
        !der_next(&tbs, &tag, &validity) || !der_next(&tbs, &tag, &subj) || tag != 0x30)
        return -EWTP_EFORMAT;
    *issuer = der_name(a, iss);
    *subject = der_name(a, subj);
    return *issuer && *subject && *serial ? 0 : -EWTP_ENOMEM;
}

/* ---- transforms ---- */

/* Finds "<[prefix:]name" followed by space, '>' or '/' from p; NULL when absent. */
static const char *find_open(const char *p, const char *end, const char *name, bool any_prefix,
                             const char *prefix)
{
    size_t nl = strlen(name);
    for (const char *q = p; q < end; q++) {
        if (*q != '<' || q + 1 >= end || q[1] == '/' || q[1] == '?' || q[1] == '!')
            continue;
        const char *t = q + 1, *colon = NULL;
        const char *e = t;
        while (e < end && *e != ' ' && *e != '>' && *e != '/' && *e != '\t' && *e != '\n' &&
               *e != '\r') {
            if (*e == ':')
                colon = e;
            e++;
        }
        const char *local = colon ? colon + 1 : t;
        if ((size_t)(e - local) != nl || memcmp(local, name, nl) != 0)
            continue;
        if (!any_prefix) {
            size_t pl = prefix ? strlen(prefix) : 0;
            if (pl == 0 ? colon != NULL
                        : !(colon && (size_t)(colon - t) == pl && memcmp(t, prefix, pl) == 0))
                continue;
        }
        return q;
    }
    return NULL;
}

/* End (one past '>') of the element opened at q: same qname, no nesting of itself. */
static const char *element_end(const char *q, const char *end)
{
    const char *t = q + 1, *e = t;
    while (e < end && *e != ' ' && *e != '>' && *e != '/' && *e != '\t' && *e != '\n' && *e != '\r')
        e++;
    size_t ql = (size_t)(e - t);
    const char *gt = memchr(e, '>', (size_t)(end - e));
    if (gt == NULL)
        return NULL;
    if (gt[-1] == '/')
        return gt + 1;
    for (const char *r = gt; r + ql + 3 <= end; r++)
        if (r[0] == '<' && r[1] == '/' && memcmp(r + 2, t, ql) == 0 && r[2 + ql] == '>')
            return r + ql + 3;
    return NULL;
}

int my_transform_xml(struct ewtp_arena *a, const char *doc, size_t len, const char **out,
                     size_t *out_len)
{
    /* Cut the signature parts out as text (the SDK reader offers no node removal), drop
     * whitespace-only text between tags as .NET's PreserveWhitespace=false does, then let the
     * SDK do inclusive C14N 1.0. */
    struct sb s = {.a = a};
    const char *p = doc, *end = doc + len;
    for (;;) {
        const char *q = find_open(p, end, "UBLExtensions", true, NULL);
        if (q == NULL)
            break;
        const char *e = element_end(q, end);
        if (e == NULL)
            return -EWTP_EFORMAT;
        sb_putn(&s, p, (size_t)(q - p));
        p = e;
    }
    sb_putn(&s, p, (size_t)(end - p));
    if (s.oom)
        return -EWTP_ENOMEM;
    if (s.p == NULL)
        return -EWTP_EFORMAT;
    /* the top-level cac:Signature (ds:Signature lived inside UBLExtensions) */
    const char *q = find_open(s.p, s.p + s.len, "Signature", false, "cac");
    struct sb t = {.a = a};
    if (q) {
        const char *e = element_end(q, s.p + s.len);
        if (e == NULL)
            return -EWTP_EFORMAT;
        sb_putn(&t, s.p, (size_t)(q - s.p));
        sb_putn(&t, e, (size_t)(s.p + s.len - e));
    } else {
        t = s;
    }
    /* whitespace-only text nodes */
    struct sb u = {.a = a};
    const char *b = t.p, *bend = t.p + t.len;
    while (b < bend) {
        const char *gt = memchr(b, '>', (size_t)(bend - b));
        if (gt == NULL) {
            sb_putn(&u, b, (size_t)(bend - b));
            break;
        }
        sb_putn(&u, b, (size_t)(gt + 1 - b));
        const char *k = gt + 1;
        while (k < bend && (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r'))
            k++;
        if (k < bend && *k != '<')
            k = gt + 1; /* real text: keep its whitespace */
        b = k;
    }
    if (u.oom || t.oom)
        return -EWTP_ENOMEM;
    struct ewtp_xml_doc *x = NULL;
    int rc = ewtp_xml_parse(u.p, u.len, NULL, &x);
    if (rc != 0)
        return rc;
    rc = ewtp_xml_c14n(x, NULL, EWTP_C14N_10, false, NULL, a, out, out_len);
    ewtp_xml_free(x);
    return rc;
}

/* ---- JSON text helpers (never through a number conversion: spelling is digested) ---- */

static size_t json_value_end(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return n;
    if (s[i] == '"') {
        for (i++; i < n && s[i] != '"'; i++)
            if (s[i] == '\\')
                i++;
        return i + 1 <= n ? i + 1 : n;
    }
    if (s[i] != '[' && s[i] != '{') {
        while (i < n && s[i] != ',' && s[i] != ']' && s[i] != '}')
            i++;
        return i;
    }
    int depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            i = json_value_end(s, n, i);
            continue;
        }
        if (c == '[' || c == '{')
            depth++;
        else if (c == ']' || c == '}') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return n;
}

static char *json_minify(struct ewtp_arena *a, const char *s, size_t n, size_t *out_len)
{
    char *o = ewtp_arena_alloc(a, n + 1);
    if (o == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            size_t e = json_value_end(s, n, i);
            memcpy(o + k, s + i, e - i);
            k += e - i;
            i = e - 1;
        } else if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

/* Offset of the value of member key in the object at i (minified); 0 when absent. */
static size_t json_member(const char *s, size_t n, size_t i, const char *key, size_t *kstart)
{
    if (i >= n || s[i] != '{')
        return 0;
    size_t kl = strlen(key);
    i++;
    while (i < n && s[i] != '}') {
        size_t ks = i;
        size_t ke = json_value_end(s, n, i);
        size_t v = ke + 1;
        if (ke - ks == kl + 2 && memcmp(s + ks + 1, key, kl) == 0) {
            if (kstart)
                *kstart = ks;
            return v;
        }
        i = json_value_end(s, n, v);
        if (i < n && s[i] == ',')
            i++;
    }
    return 0;
}

int my_transform_json(struct ewtp_arena *a, const char *doc, size_t len, const char **out,
                      size_t *out_len)
{
    size_t n = 0;
    char *m = json_minify(a, doc, len, &n);
    if (m == NULL)
        return -EWTP_ENOMEM;
    size_t arr = json_member(m, n, 0, "Invoice", NULL);
    if (arr == 0 || m[arr] != '[')
        return -EWTP_EFORMAT;
    size_t obj = arr + 1;
    size_t obj_end = json_value_end(m, n, obj);
    /* rebuild Invoice[0] without UBLExtensions and Signature */
    struct sb s = {.a = a};
    sb_putn(&s, m, obj);
    sb_put(&s, "{");
    bool first = true;
    size_t i = obj + 1;
    while (i < obj_end - 1) {
        size_t ks = i, ke = json_value_end(m, n, i);
        size_t ve = json_value_end(m, n, ke + 1);
        bool drop = (ke - ks == 15 && memcmp(m + ks, "\"UBLExtensions\"", 15) == 0) ||
                    (ke - ks == 11 && memcmp(m + ks, "\"Signature\"", 11) == 0);
        if (!drop) {
            if (!first)
                sb_put(&s, ",");
            sb_putn(&s, m + ks, ve - ks);
            first = false;
        }
        i = ve;
        if (i < n && m[i] == ',')
            i++;
    }
    sb_put(&s, "}");
    sb_putn(&s, m + obj_end, n - obj_end);
    if (s.oom)
        return -EWTP_ENOMEM;
    *out = s.p;
    *out_len = s.len;
    return 0;
}

/* ---- signing ---- */

static void jleaf(struct ewtp_jsonw *w, const char *key, const char *text, const char *alg)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "_", text);
    if (alg)
        ewtp_jsonw_kv_string(w, "Algorithm", alg);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
}

static void jopen(struct ewtp_jsonw *w, const char *key)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_array_begin(w);
    ewtp_jsonw_object_begin(w);
}

static void jclose(struct ewtp_jsonw *w)
{
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_array_end(w);
}

/* {"Target":"signature","SignedProperties":[...]}: the object whose minified text LHDN digests
 * (FACTS.md §3.2.6, JSON), laid out as the official JSON samples. */
static const char *json_signed_props(struct ewtp_arena *a, const char *signing_time,
                                     const char *cert_digest, const char *issuer,
                                     const char *serial)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    if (w == NULL)
        return NULL;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "Target", "signature");
    jopen(w, "SignedProperties");
    ewtp_jsonw_kv_string(w, "Id", "id-xades-signed-props");
    jopen(w, "SignedSignatureProperties");
    jleaf(w, "SigningTime", signing_time, NULL);
    jopen(w, "SigningCertificate");
    jopen(w, "Cert");
    jopen(w, "CertDigest");
    jleaf(w, "DigestMethod", "", SHA256_URI);
    jleaf(w, "DigestValue", cert_digest, NULL);
    jclose(w);
    jopen(w, "IssuerSerial");
    jleaf(w, "X509IssuerName", issuer, NULL);
    jleaf(w, "X509SerialNumber", serial, NULL);
    jclose(w); /* IssuerSerial */
    jclose(w); /* Cert */
    jclose(w); /* SigningCertificate */
    jclose(w); /* SignedSignatureProperties */
    jclose(w); /* SignedProperties */
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    return ewtp_jsonw_finish(w, &out, &len) == 0 ? out : NULL;
}

int my_sign_document(const struct my_state *st, const struct ewtp_call *c, enum my_format fmt,
                     const char **out, size_t *len)
{
    const struct ewtp_host *h = c->host;
    if (!EWTP_HOST_HAS(h, sign) || !EWTP_HOST_HAS(h, cert))
        return -EWTP_EUNSUPP;
    const char *body = NULL, *tr = NULL;
    size_t body_len = 0, tr_len = 0;
    int rc = my_ubl_build(st, c, fmt, NULL, true, &body, &body_len);
    if (rc == 0)
        rc = fmt == MY_FMT_JSON ? my_transform_json(c->arena, body, body_len, &tr, &tr_len)
                                : my_transform_xml(c->arena, body, body_len, &tr, &tr_len);
    if (rc != 0)
        return rc;
    struct my_sig_parts p = {0};
    p.doc_digest = my_b64_sha256(c->arena, tr, tr_len);
    const unsigned char *sig = NULL, *der = NULL;
    size_t sig_len = 0, der_len = 0;
    rc = h->sign(h->ctx, st->sign_key, EWTP_SIGN_RSA_SHA256, tr, tr_len, c->arena, &sig, &sig_len);
    if (rc == 0)
        rc = h->cert(h->ctx, st->sign_key, c->arena, &der, &der_len);
    if (rc == 0)
        rc = my_cert_facts(c->arena, der, der_len, &p.issuer_name, &p.serial, &p.subject_name);
    if (rc != 0)
        return rc;
    if (st->issuer_name)
        p.issuer_name = st->issuer_name;
    p.signature_value = ewtp_base64_encode(c->arena, sig, sig_len);
    p.cert_b64 = ewtp_base64_encode(c->arena, der, der_len);
    p.cert_digest = my_b64_sha256(c->arena, der, der_len);
    char t[40];
    ewtp_time_format(c->now_ms - c->now_ms % 1000, 0, t, sizeof(t));
    p.signing_time = ewtp_arena_strdup(c->arena, t);
    if (fmt == MY_FMT_JSON) {
        p.props_json =
            json_signed_props(c->arena, p.signing_time, p.cert_digest, p.issuer_name, p.serial);
        if (p.props_json == NULL)
            return -EWTP_ENOMEM;
        p.props_digest = my_b64_sha256(c->arena, p.props_json, strlen(p.props_json));
        return my_ubl_build(st, c, fmt, &p, false, out, len);
    }
    const char *props =
        my_xml_signed_props(c->arena, p.signing_time, p.cert_digest, p.issuer_name, p.serial);
    if (props == NULL || p.doc_digest == NULL || p.signature_value == NULL || !p.cert_b64)
        return -EWTP_ENOMEM;
    p.props_digest = my_b64_sha256(c->arena, props, strlen(props));
    return my_ubl_build(st, c, fmt, &p, false, out, len);
}

/* ---- verification (simulator, tests) ---- */

static const char *trimmed(struct ewtp_arena *a, const char *s)
{
    if (s == NULL)
        return NULL;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    return ewtp_arena_strndup(a, s, n);
}

static const char *xp(struct ewtp_xml_doc *x, struct ewtp_arena *a, const char *path)
{
    const char *v = NULL;
    return ewtp_xml_xpath_string(x, NULL, path, a, &v) == 0 ? trimmed(a, v) : NULL;
}

struct vals {
    const char *doc_ref, *props_ref, *cert_b64, *time, *cert_digest, *issuer, *serial;
    const char *props_text; /* JSON: the QualifyingProperties object text */
    const char *sigval;
};

static int xml_vals(struct ewtp_arena *a, const char *doc, size_t len, struct vals *v)
{
    struct ewtp_xml_doc *x = NULL;
    if (ewtp_xml_parse(doc, len, NULL, &x) != 0)
        return -EWTP_EFORMAT;
    ewtp_xml_ns_register(x, "ds", NS_DS);
    ewtp_xml_ns_register(x, "xades", NS_XADES);
    size_t n = 0;
    ewtp_xml_xpath_count(x, NULL, "//ds:Signature", &n);
    if (n == 1) {
        v->doc_ref = xp(x, a, "//ds:SignedInfo/ds:Reference[@URI='']/ds:DigestValue");
        v->props_ref =
            xp(x, a, "//ds:SignedInfo/ds:Reference[@URI='#id-xades-signed-props']/ds:DigestValue");
        v->cert_b64 = xp(x, a, "//ds:KeyInfo/ds:X509Data/ds:X509Certificate");
        v->time = xp(x, a, "//xades:SignedProperties//xades:SigningTime");
        v->cert_digest = xp(x, a, "//xades:SignedProperties//xades:CertDigest/ds:DigestValue");
        v->issuer = xp(x, a, "//xades:SignedProperties//ds:X509IssuerName");
        v->serial = xp(x, a, "//xades:SignedProperties//ds:X509SerialNumber");
        v->sigval = xp(x, a, "//ds:Signature/ds:SignatureValue");
    }
    ewtp_xml_free(x);
    return n == 1 ? 0 : n == 0 ? -EWTP_ENOTFOUND : -EWTP_EINVAL;
}

/* Text of the value at a path of keys ("#" = first array element) in minified JSON. */
static const char *json_text_at(struct ewtp_arena *a, const char *m, size_t n,
                                const char *const *path)
{
    size_t i = 0;
    for (; *path; path++) {
        if (strcmp(*path, "#") == 0) {
            if (i >= n || m[i] != '[')
                return NULL;
            i++;
        } else {
            i = json_member(m, n, i, *path, NULL);
            if (i == 0)
                return NULL;
        }
    }
    size_t e = json_value_end(m, n, i);
    return ewtp_arena_strndup(a, m + i, e - i);
}

static int json_vals(struct ewtp_arena *a, const char *doc, size_t len, struct vals *v)
{
    const struct ewtp_json *j = ewtp_json_parse(a, doc, len, NULL);
    if (j == NULL)
        return -EWTP_EFORMAT;
    const struct ewtp_json *s = ewtp_json_at(
        j, "/Invoice/0/UBLExtensions/0/UBLExtension/0/ExtensionContent/0/UBLDocumentSignatures/0/"
           "SignatureInformation/0/Signature/0");
    if (s == NULL)
        return -EWTP_ENOTFOUND;
    const struct ewtp_json *refs = ewtp_json_at(s, "/SignedInfo/0/Reference");
    for (size_t i = 0; i < ewtp_json_size(refs); i++) {
        const struct ewtp_json *r = ewtp_json_index(refs, i);
        const char *uri = ewtp_json_get_string(r, "URI");
        const char *dv = ewtp_json_string(ewtp_json_at(r, "/DigestValue/0/_"));
        if (uri && strcmp(uri, "") == 0)
            v->doc_ref = dv;
        else if (uri && strcmp(uri, "#id-xades-signed-props") == 0)
            v->props_ref = dv;
    }
    v->cert_b64 = ewtp_json_string(ewtp_json_at(s, "/KeyInfo/0/X509Data/0/X509Certificate/0/_"));
    v->sigval = ewtp_json_string(ewtp_json_at(s, "/SignatureValue/0/_"));
    const struct ewtp_json *c = ewtp_json_at(
        s, "/Object/0/QualifyingProperties/0/SignedProperties/0/SignedSignatureProperties/0");
    v->time = ewtp_json_string(ewtp_json_at(c, "/SigningTime/0/_"));
    v->cert_digest = ewtp_json_string(
        ewtp_json_at(c, "/SigningCertificate/0/Cert/0/CertDigest/0/DigestValue/0/_"));
    size_t n = 0;
    char *m = json_minify(a, doc, len, &n);
    static const char *const qp[] = {"Invoice",
                                     "#",
                                     "UBLExtensions",
                                     "#",
                                     "UBLExtension",
                                     "#",
                                     "ExtensionContent",
                                     "#",
                                     "UBLDocumentSignatures",
                                     "#",
                                     "SignatureInformation",
                                     "#",
                                     "Signature",
                                     "#",
                                     "Object",
                                     "#",
                                     "QualifyingProperties",
                                     "#",
                                     NULL};
    v->props_text = m ? json_text_at(a, m, n, qp) : NULL;
    return 0;
}

int my_verify_digests(struct ewtp_arena *a, const char *doc, size_t len, bool json,
                      const char **code, const char **why)
{
    struct vals v = {0};
    int rc = json ? json_vals(a, doc, len, &v) : xml_vals(a, doc, len, &v);
    *code = NULL;
    *why = NULL;
    if (rc == -EWTP_EFORMAT) {
        *code = "DS300";
        *why = "the document cannot be parsed";
        return -EWTP_ECRYPTO;
    }
    if (rc == -EWTP_ENOTFOUND) {
        *code = "DS301";
        *why = "the document carries no signature";
        return -EWTP_ECRYPTO;
    }
    if (rc != 0) {
        *code = "DS302";
        *why = "the document must carry exactly one signature";
        return -EWTP_ECRYPTO;
    }
    const char *tr = NULL;
    size_t tr_len = 0;
    rc = json ? my_transform_json(a, doc, len, &tr, &tr_len)
              : my_transform_xml(a, doc, len, &tr, &tr_len);
    if (rc != 0) {
        *code = "DS300";
        *why = "the document cannot be transformed for its digest";
        return -EWTP_ECRYPTO;
    }
    const char *doc_digest = my_b64_sha256(a, tr, tr_len);
    if (v.doc_ref == NULL) {
        *code = "DS321";
        *why = "the document digest is missing";
        return -EWTP_ECRYPTO;
    }
    if (doc_digest == NULL || strcmp(doc_digest, v.doc_ref) != 0) {
        *code = "DS322";
        *why = ewtp_arena_printf(a, "document digest: computed %s, the document says %s",
                                 doc_digest ? doc_digest : "?", v.doc_ref);
        return -EWTP_ECRYPTO;
    }
    unsigned char *der = NULL;
    size_t der_len = 0;
    if (v.cert_b64 == NULL || ewtp_base64_decode(a, v.cert_b64, strlen(v.cert_b64),
                                                 EWTP_BASE64_ALLOW_WS, &der, &der_len) != 0) {
        *code = "DS305";
        *why = "the certificate is missing or not Base64";
        return -EWTP_ECRYPTO;
    }
    const char *cert_digest = my_b64_sha256(a, der, der_len);
    if (v.cert_digest == NULL) {
        *code = "DS317";
        *why = "the certificate digest is missing";
        return -EWTP_ECRYPTO;
    }
    if (cert_digest == NULL || strcmp(cert_digest, v.cert_digest) != 0) {
        *code = "DS318";
        *why = "the certificate digest does not match the certificate";
        return -EWTP_ECRYPTO;
    }
    const char *props =
        json ? v.props_text
             : (v.time && v.issuer && v.serial
                    ? my_xml_signed_props(a, v.time, v.cert_digest, v.issuer, v.serial)
                    : NULL);
    if (v.props_ref == NULL || props == NULL) {
        *code = "DS319";
        *why = "the signed properties or their digest are missing";
        return -EWTP_ECRYPTO;
    }
    const char *props_digest = my_b64_sha256(a, props, strlen(props));
    if (props_digest == NULL || strcmp(props_digest, v.props_ref) != 0) {
        *code = "DS320";
        *why = ewtp_arena_printf(a, "signed properties digest: computed %s, the document says %s",
                                 props_digest ? props_digest : "?", v.props_ref);
        return -EWTP_ECRYPTO;
    }
    if (v.sigval == NULL || v.sigval[0] == '\0') {
        *code = "DS332";
        *why = "the signature value is empty";
        return -EWTP_ECRYPTO;
    }
    /* MyInvois' RSA signature covers the transformed document itself, not SignedInfo. */
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (ewtp_base64_decode(a, v.sigval, strlen(v.sigval), EWTP_BASE64_ALLOW_WS, &sig, &sig_len) !=
        0) {
        *code = "DS333";
        *why = "the signature value is not Base64";
        return -EWTP_ECRYPTO;
    }
    rc = ewtp_sig_verify(der, der_len, EWTP_SIGN_RSA_SHA256, tr, tr_len, sig, sig_len);
    if (rc == -EWTP_EFORMAT) {
        *code = "DS305";
        *why = "the certificate cannot be read";
        return -EWTP_ECRYPTO;
    }
    if (rc != 0) {
        *code = "DS333";
        *why = rc == -EWTP_EUNSUPP
                   ? "the certificate's key is not RSA (MyInvois signs with RSA-SHA256)"
                   : "the signature value does not verify with the certificate's key over the "
                     "transformed document";
        return -EWTP_ECRYPTO;
    }
    return 0;
}
