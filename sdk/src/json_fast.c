/* json_fast.c — the accept path's JSON reading and canonical writing (issue 20), exact to
 * jansson's.
 *
 * Under callgrind, jansson's json_loadb took 280,000 instructions for a 1.6 KB China order
 * and json_dumps(JSON_SORT_KEYS | JSON_COMPACT) 160,000: together 45 % of an accepted
 * message. jansson reads a byte at a time through a callback, copies every token into a
 * buffer before converting it, and its dump checks each container for cycles through a
 * hash table and sends each piece through a callback. The two functions here do the same
 * work in one pass over contiguous memory and build or read the same jansson trees.
 *
 * Exactness is by construction, not by a second grammar: the reader accepts a subset of
 * what json_loadb accepts and gives up (NULL) on everything else, after which the caller
 * runs json_loadb itself, which produces the tree or the exact error text and position
 * (the 400 answers stay byte for byte as they were). Given up on: invalid UTF-8, control
 * characters in strings, \u0000, lone surrogates, integers beyond 64 bits, every real
 * (sdk/ holds no binary reals), nesting deeper than FAST_MAX_DEPTH, and anything that is
 * not JSON. What it accepts it
 * builds with the calls jansson's parser makes (json_object_setn_new_nocheck in document
 * order, duplicates refused, integers as json_integer), so the two trees are equal, member
 * order included.
 * tests/unit/test_json_fast.c compares both on the vectors and on crafted inputs.
 */
#include "json_internal.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FAST_MAX_DEPTH 256

struct reader {
    const unsigned char *p, *end;
    size_t flags;
    unsigned depth, max_depth;
    char *scratch; /* decoded strings with escapes */
    size_t scratch_cap;
};

static void skip_ws(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

size_t ewtp_utf8_seq_(const unsigned char *p, size_t avail)
{
    unsigned char b = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        n = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        n = 4;
    else
        return 0;
    if (b == 0xE0)
        lo = 0xA0; /* no overlong forms */
    else if (b == 0xED)
        hi = 0x9F; /* no UTF-16 surrogates */
    else if (b == 0xF0)
        lo = 0x90;
    else if (b == 0xF4)
        hi = 0x8F; /* nothing above U+10FFFF */
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v += c - '0';
        else if (c >= 'a' && c <= 'f')
            v += c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v += c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static bool scratch_fit(struct reader *r, size_t n)
{
    if (n <= r->scratch_cap)
        return true;
    size_t cap = r->scratch_cap ? r->scratch_cap : 256;
    while (cap < n)
        cap *= 2;
    char *s = realloc(r->scratch, cap);
    if (!s)
        return false;
    r->scratch = s;
    r->scratch_cap = cap;
    return true;
}

/* The string whose opening quote is at r->p: *s and *len point into the input when it has no
 * escape, else into r->scratch. false: give up. */
static bool read_string(struct reader *r, const char **s, size_t *len)
{
    const unsigned char *start = ++r->p, *q = start;
    while (q < r->end) {
        unsigned char c = *q;
        if (c == '"') {
            *s = (const char *)start;
            *len = (size_t)(q - start);
            r->p = q + 1;
            return true;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t k = ewtp_utf8_seq_(q, (size_t)(r->end - q));
            if (!k)
                return false;
            q += k;
        } else {
            q++;
        }
    }
    if (q >= r->end)
        return false;
    /* Escapes: decoded into scratch (never longer than the source, as in jansson). */
    size_t done = (size_t)(q - start);
    if (!scratch_fit(r, (size_t)(r->end - start)))
        return false;
    char *t = r->scratch;
    memcpy(t, start, done);
    t += done;
    while (q < r->end) {
        unsigned char c = *q;
        if (c == '"') {
            *s = r->scratch;
            *len = (size_t)(t - r->scratch);
            r->p = q + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t k = ewtp_utf8_seq_(q, (size_t)(r->end - q));
            if (!k)
                return false;
            memcpy(t, q, k);
            t += k;
            q += k;
            continue;
        }
        if (c != '\\') {
            *t++ = (char)c;
            q++;
            continue;
        }
        if (r->end - q < 2)
            return false;
        c = q[1];
        q += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            *t++ = (char)c;
            continue;
        case 'b':
            *t++ = '\b';
            continue;
        case 'f':
            *t++ = '\f';
            continue;
        case 'n':
            *t++ = '\n';
            continue;
        case 'r':
            *t++ = '\r';
            continue;
        case 't':
            *t++ = '\t';
            continue;
        case 'u':
            break;
        default:
            return false;
        }
        if (r->end - q < 4)
            return false;
        long v = hex4(q);
        q += 4;
        if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
            return false; /* bad hex, \u0000, or a lone low surrogate */
        if (v >= 0xD800 && v <= 0xDBFF) {
            if (r->end - q < 6 || q[0] != '\\' || q[1] != 'u')
                return false;
            long v2 = hex4(q + 2);
            if (v2 < 0xDC00 || v2 > 0xDFFF)
                return false;
            q += 6;
            v = ((v - 0xD800) << 10) + (v2 - 0xDC00) + 0x10000;
        }
        if (v < 0x80) {
            *t++ = (char)v;
        } else if (v < 0x800) {
            *t++ = (char)(0xC0 | (v >> 6));
            *t++ = (char)(0x80 | (v & 0x3F));
        } else if (v < 0x10000) {
            *t++ = (char)(0xE0 | (v >> 12));
            *t++ = (char)(0x80 | ((v >> 6) & 0x3F));
            *t++ = (char)(0x80 | (v & 0x3F));
        } else {
            *t++ = (char)(0xF0 | (v >> 18));
            *t++ = (char)(0x80 | ((v >> 12) & 0x3F));
            *t++ = (char)(0x80 | ((v >> 6) & 0x3F));
            *t++ = (char)(0x80 | (v & 0x3F));
        }
    }
    return false;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A number as jansson's lex_scan_number reads it; NULL: give up. */
static json_t *read_number(struct reader *r)
{
    const unsigned char *start = r->p, *q = r->p;
    bool neg = false;
    if (*q == '-') {
        neg = true;
        q++;
    }
    if (q >= r->end || !is_digit(*q))
        return NULL;
    if (*q == '0') {
        q++;
        if (q < r->end && is_digit(*q))
            return NULL; /* leading zero */
    } else {
        while (q < r->end && is_digit(*q))
            q++;
    }
    if (q >= r->end || (*q != '.' && *q != 'e' && *q != 'E')) {
        /* An integer: strtoll's value, or give up where it would say ERANGE. */
        uint64_t v = 0;
        for (const unsigned char *d = start + neg; d < q; d++) {
            if (v > (UINT64_MAX - 9) / 10)
                return NULL;
            v = v * 10 + (uint64_t)(*d - '0');
        }
        if (neg ? v > (uint64_t)LLONG_MAX + 1 : v > (uint64_t)LLONG_MAX)
            return NULL;
        json_int_t i =
            neg ? (v == (uint64_t)LLONG_MAX + 1 ? LLONG_MIN : -(json_int_t)v) : (json_int_t)v;
        r->p = q;
        return json_integer(i);
    }
    /* A real (a fraction or an exponent): given up, so json_loadb reads it. sdk/ holds no
     * binary reals (a build check refuses them), and the common message has none: money and
     * quantities are decimal strings, so a real is an error the schema reports anyway. */
    return NULL;
}

static json_t *read_value(struct reader *r);

static json_t *read_object(struct reader *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t klen;
        if (r->p >= r->end || *r->p != '"' || !read_string(r, &k, &klen))
            goto fail;
        if ((r->flags & JSON_REJECT_DUPLICATES) && json_object_getn(o, k, klen))
            goto fail;
        /* The key may sit in scratch, which the value's own strings reuse: keep a copy. */
        char small[64];
        char *kcopy = NULL;
        if (k == r->scratch) {
            kcopy = klen < sizeof(small) ? small : malloc(klen + 1);
            if (!kcopy)
                goto fail;
            memcpy(kcopy, k, klen);
            k = kcopy;
        }
        skip_ws(r);
        json_t *v = NULL;
        if (r->p < r->end && *r->p == ':') {
            r->p++;
            skip_ws(r);
            v = read_value(r);
        }
        int bad = !v || json_object_setn_new_nocheck(o, k, klen, v) != 0;
        if (kcopy && kcopy != small)
            free(kcopy);
        if (bad)
            goto fail;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return o;
        }
        goto fail;
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *read_array(struct reader *r)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        json_t *v = read_value(r);
        if (!v || json_array_append_new(a, v) != 0)
            goto fail;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return a;
        }
        goto fail;
    }
fail:
    json_decref(a);
    return NULL;
}

/* A literal: the whole identifier must be it (jansson reads all letters, then compares). */
static json_t *read_literal(struct reader *r, const char *word, json_t *value)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0 ||
        (r->p + n < r->end && is_alpha(r->p[n])))
        return NULL;
    r->p += n;
    return value;
}

static json_t *read_value(struct reader *r)
{
    if (r->p >= r->end)
        return NULL;
    unsigned char c = *r->p;
    if (c == '{' || c == '[') {
        if (++r->depth > FAST_MAX_DEPTH)
            return NULL;
        if (r->depth > r->max_depth)
            r->max_depth = r->depth;
        json_t *v = c == '{' ? read_object(r) : read_array(r);
        r->depth--;
        return v;
    }
    if (c == '"') {
        const char *s;
        size_t len;
        return read_string(r, &s, &len) ? json_stringn_nocheck(s, len) : NULL;
    }
    if (c == '-' || is_digit(c))
        return read_number(r);
    if (c == 't')
        return read_literal(r, "true", json_true());
    if (c == 'f')
        return read_literal(r, "false", json_false());
    if (c == 'n')
        return read_literal(r, "null", json_null());
    return NULL;
}

json_t *ewtp_json_load_fast_(const char *data, size_t len, size_t flags, unsigned *depth)
{
    if (!data || (flags & ~(size_t)JSON_REJECT_DUPLICATES) != 0)
        return NULL;
    struct reader r = {
        .p = (const unsigned char *)data, .end = (const unsigned char *)data + len, .flags = flags};
    skip_ws(&r);
    json_t *root = NULL;
    if (r.p < r.end && (*r.p == '{' || *r.p == '['))
        root = read_value(&r);
    free(r.scratch);
    if (root) {
        skip_ws(&r);
        if (r.p != r.end) {
            json_decref(root);
            root = NULL;
        }
    }
    if (root && depth)
        *depth = r.max_depth;
    return root;
}

/* ---- canonical writing -------------------------------------------------------------------- */

struct out {
    char *buf;
    size_t len, cap;
    bool failed;
};

static bool out_room(struct out *o, size_t n)
{
    if (o->failed)
        return false;
    if (o->len + n + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 1024;
    while (cap < o->len + n + 1)
        cap *= 2;
    char *b = realloc(o->buf, cap);
    if (!b) {
        o->failed = true;
        return false;
    }
    o->buf = b;
    o->cap = cap;
    return true;
}

static void put(struct out *o, const char *s, size_t n)
{
    if (out_room(o, n)) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}

static void put_char(struct out *o, char c)
{
    if (out_room(o, 1))
        o->buf[o->len++] = c;
}

/* As jansson's dump_string without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH: '"', '\\' and
 * control characters escaped (the short forms, else \u00XX in upper case), the rest as is. */
static void put_string(struct out *o, const char *s, size_t n)
{
    put_char(o, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            put(o, "\\\"", 2);
            break;
        case '\\':
            put(o, "\\\\", 2);
            break;
        case '\b':
            put(o, "\\b", 2);
            break;
        case '\f':
            put(o, "\\f", 2);
            break;
        case '\n':
            put(o, "\\n", 2);
            break;
        case '\r':
            put(o, "\\r", 2);
            break;
        case '\t':
            put(o, "\\t", 2);
            break;
        default: {
            static const char hex[] = "0123456789ABCDEF";
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, u, 6);
        }
        }
    }
    put(o, s + run, n - run);
    put_char(o, '"');
}

struct member {
    const char *key;
    size_t len;
    const json_t *value;
};

/* jansson's compare_keys: bytes, then the shorter first. */
static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static void put_value(struct out *o, const json_t *j, unsigned depth)
{
    if (o->failed)
        return;
    if (depth > 2048) { /* jansson's own limit for what it parsed; never cycles here */
        o->failed = true;
        return;
    }
    switch (json_typeof(j)) {
    case JSON_NULL:
        put(o, "null", 4);
        return;
    case JSON_TRUE:
        put(o, "true", 4);
        return;
    case JSON_FALSE:
        put(o, "false", 5);
        return;
    case JSON_INTEGER: {
        char num[32];
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        put(o, num, (size_t)n);
        return;
    }
    case JSON_REAL: {
        /* jansson's own rendering (jsonp_dtostr, 17 digits): rare in messages. */
        char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s) {
            o->failed = true;
            return;
        }
        put(o, s, strlen(s));
        free(s);
        return;
    }
    case JSON_STRING:
        put_string(o, json_string_value(j), json_string_length(j));
        return;
    case JSON_ARRAY: {
        put_char(o, '[');
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n; i++) {
            if (i)
                put_char(o, ',');
            put_value(o, json_array_get(j, i), depth + 1);
        }
        put_char(o, ']');
        return;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j);
        struct member small[16];
        struct member *m = n <= 16 ? small : malloc(n * sizeof(*m));
        if (!m) {
            o->failed = true;
            return;
        }
        size_t k = 0;
        for (void *it = json_object_iter((json_t *)j); it && k < n;
             it = json_object_iter_next((json_t *)j, it), k++) {
            m[k].key = json_object_iter_key(it);
            m[k].len = json_object_iter_key_len(it);
            m[k].value = json_object_iter_value(it);
        }
        if (k < 16) {
            for (size_t i = 1; i < k; i++) /* insertion sort: objects are small */
                for (size_t x = i; x > 0 && member_cmp(&m[x - 1], &m[x]) > 0; x--) {
                    struct member t = m[x];
                    m[x] = m[x - 1];
                    m[x - 1] = t;
                }
        } else {
            qsort(m, k, sizeof(*m), member_cmp);
        }
        put_char(o, '{');
        for (size_t i = 0; i < k; i++) {
            if (i)
                put_char(o, ',');
            put_string(o, m[i].key, m[i].len);
            put_char(o, ':');
            put_value(o, m[i].value, depth + 1);
        }
        put_char(o, '}');
        if (m != small)
            free(m);
        return;
    }
    default:
        o->failed = true;
    }
}

char *ewtp_json_dump_canonical_(const json_t *root, size_t *len)
{
    if (!root || (!json_is_object(root) && !json_is_array(root)))
        return NULL;
    struct out o = {0};
    put_value(&o, root, 0);
    if (o.failed || !out_room(&o, 0)) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    if (len)
        *len = o.len;
    return o.buf;
}
