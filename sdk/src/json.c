/* json.c — JSON reading on jansson and exact JSON writing (ewtp/json.h).
 *
 * struct ewtp_json is jansson's json_t under another name, so trees built elsewhere in
 * libewtp with jansson (the message) can be handed out through the same accessors.
 *
 * Exact number text. jansson keeps a number as a 64-bit integer or a binary real, which
 * loses the text ("87.630" -> 87.63). ewtp_json_parse therefore (1) scans the source once,
 * recording every number token in document order, (2) lets jansson parse it, then (3) walks
 * jansson's tree once in document order (objects in insertion order, which jansson keeps and
 * which is document order because duplicate keys are rejected) and builds our own nodes in
 * the arena, each number with its token's text. Objects keep their members in arrays, so
 * indexed access (ewtp_json_member) is O(1) and lookups by key use a per-object hash table:
 * no accessor walks a list. jansson's tree stays alive until the arena is freed (an arena
 * cleanup hook decrefs it): the nodes borrow its keys and strings. The message (message.c)
 * builds the same nodes for its own jansson tree through ewtp_json_from_jansson_.
 */
#include <ewtp/json.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_internal.h"
#include "json_internal.h"

#define MAX_DEPTH 64

/* ---- Reader ---------------------------------------------------------------------------- */

/* Our own immutable node, built once from jansson's tree into the arena. An object keeps its
 * members in document order in two arrays (so ewtp_json_member(obj, i) is O(1)) and, past
 * SMALL_OBJECT members, an open-addressing table of member indexes for ewtp_json_get. */
struct ewtp_json {
    enum ewtp_json_type type;
    size_t n;                            /* members, elements, or string bytes */
    const char *s;                       /* string; a number's source text (NULL: none) */
    const char *alt;                     /* a real without source text: jansson's rendering */
    int64_t i;                           /* integer value */
    const char *const *keys;             /* object: n keys in document order */
    const struct ewtp_json *const *vals; /* object values, array elements */
    const uint32_t *slots;               /* object > SMALL_OBJECT: member index + 1, or 0 */
    size_t nslots;                       /* power of two >= 2n, or 0 */
    uint64_t seed;                       /* hash seed of this object's table */
};

#define SMALL_OBJECT 8

struct token {
    size_t off, len;
};

struct scan {
    struct token *tok;
    size_t n, cap;
};

static void line_col(const char *s, size_t pos, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Records number tokens and checks the nesting depth. Syntax is left to jansson: the
 * tokens recorded are only used once jansson has accepted the document. Returns 0,
 * -EWTP_ENOMEM, or -EWTP_EFORMAT with *bad set to the offending offset (too deep). */
static int prescan(const char *s, size_t len, struct scan *sc, size_t *bad)
{
    unsigned depth = 0;
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            i++;
        } else if (c == '[' || c == '{') {
            if (++depth > MAX_DEPTH) {
                *bad = i;
                return -EWTP_EFORMAT;
            }
            i++;
        } else if (c == ']' || c == '}') {
            if (depth)
                depth--;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            while (i < len && ((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '+' ||
                               s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
                i++;
            if (sc->n == sc->cap) {
                size_t cap = sc->cap ? sc->cap * 2 : 32;
                struct token *t = realloc(sc->tok, cap * sizeof(*t));
                if (!t)
                    return -EWTP_ENOMEM;
                sc->tok = t;
                sc->cap = cap;
            }
            sc->tok[sc->n++] = (struct token){start, i - start};
        } else {
            i++;
        }
    }
    return 0;
}

struct conv {
    struct ewtp_arena *a;
    const char *src;       /* NULL: numbers keep no source text */
    const struct scan *sc; /* number tokens in document order, with src */
    size_t next;           /* next token to use */
    int rc;
};

static uint64_t key_hash(uint64_t seed, const char *k, size_t len)
{
    uint64_t h = seed ^ 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3u;
    h ^= h >> 33; /* murmur3's finaliser */
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

static struct ewtp_json *conv_node(struct conv *c, const json_t *j);

static void conv_object(struct conv *c, struct ewtp_json *n, const json_t *j)
{
    size_t cnt = json_object_size(j);
    const char **keys = ewtp_arena_alloc(c->a, (cnt ? cnt : 1) * sizeof(*keys));
    const struct ewtp_json **vals = ewtp_arena_alloc(c->a, (cnt ? cnt : 1) * sizeof(*vals));
    if (!keys || !vals) {
        c->rc = -EWTP_ENOMEM;
        return;
    }
    size_t k = 0;
    for (void *it = json_object_iter((json_t *)j); it && k < cnt && c->rc == 0;
         it = json_object_iter_next((json_t *)j, it), k++) {
        keys[k] = json_object_iter_key(it);
        vals[k] = conv_node(c, json_object_iter_value(it));
    }
    n->n = k;
    n->keys = keys;
    n->vals = vals;
    if (c->rc || k <= SMALL_OBJECT)
        return;
    size_t ns = 16;
    while (ns < 2 * k)
        ns *= 2;
    uint32_t *slots = ewtp_arena_alloc(c->a, ns * sizeof(*slots));
    if (!slots || k >= UINT32_MAX) {
        c->rc = -EWTP_ENOMEM;
        return;
    }
    memset(slots, 0, ns * sizeof(*slots));
    /* A seed that differs between objects and runs, so colliding keys cannot be prepared. */
    n->seed = key_hash((uint64_t)(uintptr_t)slots, (const char *)&n, sizeof(n));
    for (size_t m = 0; m < k; m++) {
        size_t s = (size_t)key_hash(n->seed, keys[m], strlen(keys[m])) & (ns - 1);
        while (slots[s])
            s = (s + 1) & (ns - 1);
        slots[s] = (uint32_t)(m + 1);
    }
    n->slots = slots;
    n->nslots = ns;
}

static struct ewtp_json *conv_node(struct conv *c, const json_t *j)
{
    struct ewtp_json *n = ewtp_arena_alloc(c->a, sizeof(*n));
    if (!n) {
        c->rc = -EWTP_ENOMEM;
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        n->type = EWTP_JSON_OBJECT;
        conv_object(c, n, j);
        break;
    case JSON_ARRAY: {
        n->type = EWTP_JSON_ARRAY;
        size_t cnt = json_array_size(j);
        const struct ewtp_json **v = ewtp_arena_alloc(c->a, (cnt ? cnt : 1) * sizeof(*v));
        if (!v) {
            c->rc = -EWTP_ENOMEM;
            break;
        }
        for (size_t i = 0; i < cnt && c->rc == 0; i++)
            v[i] = conv_node(c, json_array_get(j, i));
        n->n = cnt;
        n->vals = v;
        break;
    }
    case JSON_STRING:
        n->type = EWTP_JSON_STRING;
        n->s = json_string_value(j); /* lives as long as jansson's tree, freed with the arena */
        n->n = json_string_length(j);
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        n->type = json_is_integer(j) ? EWTP_JSON_INTEGER : EWTP_JSON_REAL;
        if (json_is_integer(j))
            n->i = (int64_t)json_integer_value(j);
        if (c->src) {
            if (c->next >= c->sc->n) {
                c->rc = -EWTP_EFORMAT; /* cannot happen for a document jansson accepted */
                break;
            }
            const struct token *t = &c->sc->tok[c->next++];
            n->s = ewtp_arena_memdup(c->a, c->src + t->off, t->len);
            if (!n->s)
                c->rc = -EWTP_ENOMEM;
        } else if (!json_is_integer(j)) {
            /* A real from a tree not parsed here: only jansson's rendering is available. */
            char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
            n->alt = s ? ewtp_arena_strdup(c->a, s) : NULL;
            free(s);
            if (!n->alt)
                c->rc = -EWTP_ENOMEM;
        }
        break;
    case JSON_TRUE:
        n->type = EWTP_JSON_TRUE;
        break;
    case JSON_FALSE:
        n->type = EWTP_JSON_FALSE;
        break;
    case JSON_NULL:
        n->type = EWTP_JSON_NULL;
        break;
    }
    return n;
}

const struct ewtp_json *ewtp_json_from_jansson_(struct ewtp_arena *a, const json_t *root)
{
    if (!a || !root)
        return NULL;
    struct conv c = {.a = a};
    const struct ewtp_json *out = conv_node(&c, root);
    return c.rc ? NULL : out;
}

static void tree_free(void *p)
{
    json_decref(p);
}

const struct ewtp_json *ewtp_json_parse(struct ewtp_arena *a, const void *data, size_t len,
                                        struct ewtp_errors *why)
{
    const char *s = data ? data : "";
    if (!data)
        len = 0;
    struct scan sc = {0};
    size_t bad = 0, line, col;
    int rc = prescan(s, len, &sc, &bad);
    if (rc == -EWTP_EFORMAT) {
        line_col(s, bad, &line, &col);
        ewtp_errors_add(why, "", "format",
                        "invalid JSON at line %zu, column %zu: nesting deeper than %d levels", line,
                        col, MAX_DEPTH);
        free(sc.tok);
        return NULL;
    }
    if (rc < 0) {
        ewtp_errors_add(why, "", "format", "out of memory while reading JSON");
        free(sc.tok);
        return NULL;
    }
    json_error_t err;
    json_t *root = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!root) {
        ewtp_errors_add(why, "", "format", "invalid JSON at line %d, column %d: %s", err.line,
                        err.column, err.text);
        free(sc.tok);
        return NULL;
    }
    /* jansson's tree stays until the arena is freed: our string nodes borrow its strings. */
    if (ewtp_arena_on_free(a, tree_free, root) < 0) {
        json_decref(root);
        free(sc.tok);
        ewtp_errors_add(why, "", "format", "out of memory while reading JSON");
        return NULL;
    }
    struct conv c = {.a = a, .src = s, .sc = &sc};
    const struct ewtp_json *out = conv_node(&c, root);
    if (c.rc == 0 && c.next != sc.n)
        c.rc = -EWTP_EFORMAT;
    free(sc.tok);
    if (c.rc < 0) {
        ewtp_errors_add(why, "", "format", "%s while reading JSON",
                        c.rc == -EWTP_ENOMEM ? "out of memory" : "internal error");
        return NULL;
    }
    return out;
}

enum ewtp_json_type ewtp_json_type(const struct ewtp_json *j)
{
    return j ? j->type : EWTP_JSON_NONE;
}

static const struct ewtp_json *get_n(const struct ewtp_json *obj, const char *key, size_t len)
{
    if (!obj || !key || obj->type != EWTP_JSON_OBJECT)
        return NULL;
    if (!obj->slots) {
        for (size_t m = 0; m < obj->n; m++)
            if (strlen(obj->keys[m]) == len && memcmp(obj->keys[m], key, len) == 0)
                return obj->vals[m];
        return NULL;
    }
    size_t mask = obj->nslots - 1;
    for (size_t s = (size_t)key_hash(obj->seed, key, len) & mask; obj->slots[s];
         s = (s + 1) & mask) {
        size_t m = obj->slots[s] - 1;
        if (strlen(obj->keys[m]) == len && memcmp(obj->keys[m], key, len) == 0)
            return obj->vals[m];
    }
    return NULL;
}

const struct ewtp_json *ewtp_json_get(const struct ewtp_json *obj, const char *key)
{
    return key ? get_n(obj, key, strlen(key)) : NULL;
}

/* Array index token per RFC 6901: "0" or digits without a leading zero. */
static bool parse_index(const char *t, size_t *out)
{
    if (!*t || (t[0] == '0' && t[1]))
        return false;
    size_t v = 0;
    for (; *t; t++) {
        if (*t < '0' || *t > '9' || v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(*t - '0');
    }
    *out = v;
    return true;
}

const struct ewtp_json *ewtp_json_at(const struct ewtp_json *j, const char *pointer)
{
    if (!j || !pointer)
        return NULL;
    if (!*pointer)
        return j;
    if (*pointer != '/')
        return NULL;
    char *tok = malloc(strlen(pointer) + 1);
    if (!tok)
        return NULL;
    const char *p = pointer;
    while (j && *p == '/') {
        p++;
        size_t n = 0;
        for (; *p && *p != '/'; p++) {
            if (*p == '~') {
                if (p[1] == '0')
                    tok[n++] = '~';
                else if (p[1] == '1')
                    tok[n++] = '/';
                else {
                    j = NULL; /* "~" must be followed by 0 or 1 */
                    break;
                }
                p++;
            } else {
                tok[n++] = *p;
            }
        }
        tok[n] = 0;
        if (!j)
            break;
        if (j->type == EWTP_JSON_OBJECT) {
            j = get_n(j, tok, n);
        } else if (j->type == EWTP_JSON_ARRAY) {
            size_t i;
            j = parse_index(tok, &i) ? ewtp_json_index(j, i) : NULL;
        } else {
            j = NULL;
        }
    }
    free(tok);
    return j;
}

const char *ewtp_json_string(const struct ewtp_json *j)
{
    return j && j->type == EWTP_JSON_STRING ? j->s : NULL;
}

const char *ewtp_json_get_string(const struct ewtp_json *obj, const char *key)
{
    return ewtp_json_string(ewtp_json_get(obj, key));
}

bool ewtp_json_int(const struct ewtp_json *j, int64_t *out)
{
    if (!j || j->type != EWTP_JSON_INTEGER)
        return false;
    if (out)
        *out = j->i;
    return true;
}

bool ewtp_json_bool(const struct ewtp_json *j, bool *out)
{
    if (!j || (j->type != EWTP_JSON_TRUE && j->type != EWTP_JSON_FALSE))
        return false;
    if (out)
        *out = j->type == EWTP_JSON_TRUE;
    return true;
}

size_t ewtp_json_size(const struct ewtp_json *j)
{
    return j && j->type == EWTP_JSON_ARRAY ? j->n : 0;
}

const struct ewtp_json *ewtp_json_index(const struct ewtp_json *arr, size_t i)
{
    return arr && arr->type == EWTP_JSON_ARRAY && i < arr->n ? arr->vals[i] : NULL;
}

bool ewtp_json_member(const struct ewtp_json *obj, size_t i, const char **key,
                      const struct ewtp_json **value)
{
    if (!obj || obj->type != EWTP_JSON_OBJECT || i >= obj->n)
        return false;
    if (key)
        *key = obj->keys[i];
    if (value)
        *value = obj->vals[i];
    return true;
}

size_t ewtp_json_members(const struct ewtp_json *obj)
{
    return obj && obj->type == EWTP_JSON_OBJECT ? obj->n : 0;
}

const char *ewtp_json_number_text(const struct ewtp_json *j)
{
    if (!j)
        return NULL;
    if (j->type == EWTP_JSON_STRING)
        return j->s;
    if (j->type == EWTP_JSON_INTEGER || j->type == EWTP_JSON_REAL)
        return j->s;
    return NULL;
}

/* ---- Writer ---------------------------------------------------------------------------- */

struct level {
    bool object;
    size_t count; /* members or elements written */
};

struct ewtp_jsonw {
    struct ewtp_arena *a;
    char *buf; /* in the arena; regrown by copying */
    size_t len, cap;
    struct level *stack; /* in the arena; regrown by copying */
    size_t depth, stack_cap;
    bool pretty;
    bool after_key; /* a key was written, its value is due */
    bool done;      /* the top-level value is complete */
    int err;
};

static void put(struct ewtp_jsonw *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (n > SIZE_MAX / 2 - w->len) {
        w->err = -EWTP_ENOMEM;
        return;
    }
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = ewtp_arena_alloc(w->a, cap);
        if (!b) {
            w->err = -EWTP_ENOMEM;
            return;
        }
        if (w->len)
            memcpy(b, w->buf, w->len);
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void puts_(struct ewtp_jsonw *w, const char *s)
{
    put(w, s, strlen(s));
}

static void newline(struct ewtp_jsonw *w, size_t depth)
{
    put(w, "\n", 1);
    for (size_t i = 0; i < depth; i++)
        put(w, "  ", 2);
}

struct ewtp_jsonw *ewtp_jsonw_new(struct ewtp_arena *a, bool pretty)
{
    struct ewtp_jsonw *w = ewtp_arena_alloc(a, sizeof(*w));
    if (!w)
        return NULL;
    w->a = a;
    w->pretty = pretty;
    return w;
}

/* Checks a value may come here and writes what goes before it. */
static bool value_begin(struct ewtp_jsonw *w)
{
    if (!w || w->err)
        return false;
    if (w->depth == 0) {
        if (w->done) {
            w->err = -EWTP_EINVAL; /* a second top-level value */
            return false;
        }
        return true;
    }
    struct level *l = &w->stack[w->depth - 1];
    if (l->object) {
        if (!w->after_key) {
            w->err = -EWTP_EINVAL; /* a member value without its key */
            return false;
        }
        w->after_key = false;
        return true;
    }
    if (l->count)
        put(w, ",", 1);
    if (w->pretty)
        newline(w, w->depth);
    l->count++;
    return !w->err;
}

/* After a complete value: the document is done when it was the top-level one. */
static void value_end(struct ewtp_jsonw *w)
{
    if (w->depth == 0)
        w->done = true;
}

static void begin(struct ewtp_jsonw *w, bool object)
{
    if (!value_begin(w))
        return;
    if (w->depth == w->stack_cap) {
        size_t cap = w->stack_cap ? w->stack_cap * 2 : 16;
        struct level *s = ewtp_arena_alloc(w->a, cap * sizeof(*s));
        if (!s) {
            w->err = -EWTP_ENOMEM;
            return;
        }
        if (w->depth)
            memcpy(s, w->stack, w->depth * sizeof(*s));
        w->stack = s;
        w->stack_cap = cap;
    }
    w->stack[w->depth++] = (struct level){.object = object};
    put(w, object ? "{" : "[", 1);
}

static void end(struct ewtp_jsonw *w, bool object)
{
    if (!w || w->err)
        return;
    if (w->depth == 0 || w->stack[w->depth - 1].object != object || w->after_key) {
        w->err = -EWTP_EINVAL;
        return;
    }
    size_t count = w->stack[--w->depth].count;
    if (w->pretty && count)
        newline(w, w->depth);
    put(w, object ? "}" : "]", 1);
    value_end(w);
}

void ewtp_jsonw_object_begin(struct ewtp_jsonw *w)
{
    begin(w, true);
}

void ewtp_jsonw_object_end(struct ewtp_jsonw *w)
{
    end(w, true);
}

void ewtp_jsonw_array_begin(struct ewtp_jsonw *w)
{
    begin(w, false);
}

void ewtp_jsonw_array_end(struct ewtp_jsonw *w)
{
    end(w, false);
}

/* A JSON string per RFC 8259: quote, backslash and control characters escaped, UTF-8 kept
 * as is; invalid UTF-8 fails the writer with -EWTP_EFORMAT. */
static void put_string(struct ewtp_jsonw *w, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    put(w, "\"", 1);
    size_t i = 0;
    while (i < len && !w->err) {
        size_t run = i;
        /* Copies runs of characters that need no escape in one go. */
        while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            put(w, str + i, run - i);
            i = run;
            continue;
        }
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(w, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[8];
            switch (c) {
            case '\b':
                puts_(w, "\\b");
                break;
            case '\f':
                puts_(w, "\\f");
                break;
            case '\n':
                puts_(w, "\\n");
                break;
            case '\r':
                puts_(w, "\\r");
                break;
            case '\t':
                puts_(w, "\\t");
                break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                puts_(w, esc);
            }
            i++;
        } else {
            size_t l = ewtp_utf8_seq_(s + i, len - i);
            if (!l) {
                w->err = -EWTP_EFORMAT;
                return;
            }
            put(w, str + i, l);
            i += l;
        }
    }
    put(w, "\"", 1);
}

void ewtp_jsonw_key(struct ewtp_jsonw *w, const char *key)
{
    if (!w || w->err)
        return;
    if (w->depth == 0 || !w->stack[w->depth - 1].object || w->after_key || !key) {
        w->err = -EWTP_EINVAL;
        return;
    }
    struct level *l = &w->stack[w->depth - 1];
    if (l->count)
        put(w, ",", 1);
    if (w->pretty)
        newline(w, w->depth);
    l->count++;
    put_string(w, key, strlen(key));
    put(w, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
    w->after_key = true;
}

void ewtp_jsonw_stringn(struct ewtp_jsonw *w, const char *s, size_t len)
{
    if (!s) {
        ewtp_jsonw_null(w);
        return;
    }
    if (!value_begin(w))
        return;
    put_string(w, s, len);
    value_end(w);
}

void ewtp_jsonw_string(struct ewtp_jsonw *w, const char *s)
{
    ewtp_jsonw_stringn(w, s, s ? strlen(s) : 0);
}

static void put_value(struct ewtp_jsonw *w, const char *text)
{
    if (!value_begin(w))
        return;
    puts_(w, text);
    value_end(w);
}

void ewtp_jsonw_int(struct ewtp_jsonw *w, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    put_value(w, b);
}

void ewtp_jsonw_bool(struct ewtp_jsonw *w, bool v)
{
    put_value(w, v ? "true" : "false");
}

void ewtp_jsonw_null(struct ewtp_jsonw *w)
{
    put_value(w, "null");
}

static bool decimal_ok(const char *s)
{
    if (!s)
        return false;
    if (*s == '-')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == 0;
}

void ewtp_jsonw_decimal(struct ewtp_jsonw *w, const char *dec)
{
    if (!w || w->err)
        return;
    if (!decimal_ok(dec)) {
        w->err = -EWTP_EFORMAT;
        return;
    }
    put_value(w, dec);
}

void ewtp_jsonw_raw(struct ewtp_jsonw *w, const char *json)
{
    if (!w || w->err)
        return;
    if (!json) {
        w->err = -EWTP_EINVAL;
        return;
    }
    put_value(w, json);
}

void ewtp_jsonw_kv_string(struct ewtp_jsonw *w, const char *key, const char *s)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_string(w, s);
}

void ewtp_jsonw_kv_string_opt(struct ewtp_jsonw *w, const char *key, const char *s)
{
    if (s)
        ewtp_jsonw_kv_string(w, key, s);
}

void ewtp_jsonw_kv_decimal(struct ewtp_jsonw *w, const char *key, const char *dec)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_decimal(w, dec);
}

void ewtp_jsonw_kv_int(struct ewtp_jsonw *w, const char *key, int64_t v)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_int(w, v);
}

int ewtp_jsonw_finish(struct ewtp_jsonw *w, const char **out, size_t *len)
{
    if (!w)
        return -EWTP_EINVAL;
    if (w->err)
        return w->err;
    if (w->depth || w->after_key || !w->done)
        return -EWTP_EINVAL;
    if (out)
        *out = w->buf;
    if (len)
        *len = w->len;
    return 0;
}

/* ---- Dump ------------------------------------------------------------------------------ */

static void dump_node(struct ewtp_jsonw *w, const struct ewtp_json *j)
{
    if (w->err || !j)
        return;
    switch (j->type) {
    case EWTP_JSON_NONE:
        break;
    case EWTP_JSON_OBJECT:
        ewtp_jsonw_object_begin(w);
        for (size_t m = 0; m < j->n && !w->err; m++) {
            ewtp_jsonw_key(w, j->keys[m]);
            dump_node(w, j->vals[m]);
        }
        ewtp_jsonw_object_end(w);
        break;
    case EWTP_JSON_ARRAY:
        ewtp_jsonw_array_begin(w);
        for (size_t i = 0; i < j->n && !w->err; i++)
            dump_node(w, j->vals[i]);
        ewtp_jsonw_array_end(w);
        break;
    case EWTP_JSON_STRING:
        if (value_begin(w)) {
            put_string(w, j->s, j->n);
            value_end(w);
        }
        break;
    case EWTP_JSON_INTEGER:
    case EWTP_JSON_REAL:
        if (j->s)
            put_value(w, j->s);
        else if (j->type == EWTP_JSON_INTEGER)
            ewtp_jsonw_int(w, j->i);
        else
            put_value(w, j->alt);
        break;
    case EWTP_JSON_TRUE:
        ewtp_jsonw_bool(w, true);
        break;
    case EWTP_JSON_FALSE:
        ewtp_jsonw_bool(w, false);
        break;
    case EWTP_JSON_NULL:
        ewtp_jsonw_null(w);
        break;
    }
}

char *ewtp_json_dump(struct ewtp_arena *a, const struct ewtp_json *j)
{
    if (!a || !j)
        return NULL;
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    if (!w)
        return NULL;
    dump_node(w, j);
    const char *out;
    if (ewtp_jsonw_finish(w, &out, NULL) < 0)
        return NULL;
    return (char *)out;
}
