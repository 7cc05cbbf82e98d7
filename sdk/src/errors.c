/* errors.c — return-code names and the list of input errors (ewtp/errors.h). */
#include <ewtp/errors.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ewtp_errors {
    struct ewtp_error *v; /* entries own their strings (malloc'd) */
    size_t n, cap;
    bool oom;
};

const char *ewtp_strerror(int rc)
{
    if (rc < 0)
        rc = -rc;
    switch (rc) {
    case EWTP_OK:
        return "success";
    case EWTP_ENOMEM:
        return "out of memory";
    case EWTP_EINVAL:
        return "invalid argument or input";
    case EWTP_ERANGE:
        return "value out of range";
    case EWTP_EFORMAT:
        return "malformed text";
    case EWTP_EIO:
        return "file or system error";
    case EWTP_ENOTFOUND:
        return "not found";
    case EWTP_EUNSUPP:
        return "not supported";
    case EWTP_ECRYPTO:
        return "cryptographic failure";
    default:
        return "unknown error";
    }
}

struct ewtp_errors *ewtp_errors_new(void)
{
    return calloc(1, sizeof(struct ewtp_errors));
}

static void entry_free(struct ewtp_error *x)
{
    free((char *)x->pointer);
    free((char *)x->code);
    free((char *)x->message);
}

void ewtp_errors_clear(struct ewtp_errors *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        entry_free(&e->v[i]);
    e->n = 0;
    e->oom = false;
}

void ewtp_errors_free(struct ewtp_errors *e)
{
    if (!e)
        return;
    ewtp_errors_clear(e);
    free(e->v);
    free(e);
}

/* Copies a pointer, truncating past EWTP_POINTER_MAX - 1 bytes with "...". */
static char *pointer_dup(const char *prefix, const char *p)
{
    size_t lp = prefix ? strlen(prefix) : 0, l = p ? strlen(p) : 0;
    size_t total = lp + l, keep = total;
    if (keep > EWTP_POINTER_MAX - 1)
        keep = EWTP_POINTER_MAX - 4;
    char *s = malloc(keep + 4);
    if (!s)
        return NULL;
    size_t a = lp < keep ? lp : keep;
    if (a)
        memcpy(s, prefix, a);
    if (keep > a)
        memcpy(s + a, p, keep - a);
    if (keep < total) {
        memcpy(s + keep, "...", 3);
        keep += 3;
    }
    s[keep] = 0;
    return s;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void push(struct ewtp_errors *e, enum ewtp_severity sev, char *pointer, char *code,
                 char *message)
{
    if (!pointer || !code || !message)
        goto fail;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        struct ewtp_error *v = realloc(e->v, cap * sizeof(*v));
        if (!v)
            goto fail;
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = (struct ewtp_error){.size = sizeof(struct ewtp_error),
                                       .pointer = pointer,
                                       .code = code,
                                       .message = message,
                                       .severity = sev};
    return;
fail:
    free(pointer);
    free(code);
    free(message);
    e->oom = true;
}

static void vadd(struct ewtp_errors *e, enum ewtp_severity sev, const char *pointer,
                 const char *code, const char *fmt, va_list ap)
{
    if (!e)
        return;
    char *msg = NULL;
    if (!fmt)
        msg = strdup("");
    else if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL; /* its contents are undefined on failure */
    push(e, sev, pointer_dup(NULL, pointer), dup_or_empty(code), msg);
}

void ewtp_errors_add(struct ewtp_errors *e, const char *pointer, const char *code, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(e, EWTP_SEV_ERROR, pointer, code, fmt, ap);
    va_end(ap);
}

void ewtp_errors_warn(struct ewtp_errors *e, const char *pointer, const char *code, const char *fmt,
                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(e, EWTP_SEV_WARNING, pointer, code, fmt, ap);
    va_end(ap);
}

void ewtp_errors_add_sev(struct ewtp_errors *e, enum ewtp_severity sev, const char *pointer,
                         const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(e, sev == EWTP_SEV_WARNING ? EWTP_SEV_WARNING : EWTP_SEV_ERROR, pointer, code, fmt, ap);
    va_end(ap);
}

void ewtp_errors_append(struct ewtp_errors *dst, const struct ewtp_errors *src, const char *prefix)
{
    if (!dst || !src || dst == src)
        return;
    for (size_t i = 0; i < src->n; i++) {
        const struct ewtp_error *x = &src->v[i];
        push(dst, x->severity, pointer_dup(prefix, x->pointer), dup_or_empty(x->code),
             dup_or_empty(x->message));
    }
    if (src->oom)
        dst->oom = true;
}

size_t ewtp_errors_count(const struct ewtp_errors *e)
{
    return e ? e->n : 0;
}

size_t ewtp_errors_blocking(const struct ewtp_errors *e)
{
    size_t n = 0;
    for (size_t i = 0; e && i < e->n; i++)
        if (e->v[i].severity == EWTP_SEV_ERROR)
            n++;
    return n;
}

const struct ewtp_error *ewtp_errors_at(const struct ewtp_errors *e, size_t i)
{
    return e && i < e->n ? &e->v[i] : NULL;
}

bool ewtp_errors_oom(const struct ewtp_errors *e)
{
    return e && e->oom;
}

bool ewtp_errors_has(const struct ewtp_errors *e, const char *pointer, const char *code)
{
    for (size_t i = 0; e && i < e->n; i++) {
        if (pointer && strcmp(e->v[i].pointer, pointer) != 0)
            continue;
        if (code && strcmp(e->v[i].code, code) != 0)
            continue;
        return true;
    }
    return false;
}

/* Growable string for ewtp_errors_to_json. */
struct buf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* A JSON string per RFC 8259; invalid UTF-8 bytes become U+FFFD so the output is always
 * valid JSON (messages may quote bytes from the input). */
static void buf_string(struct buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    buf_put(b, "\"", 1);
    while (*s) {
        unsigned c = *s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_put(b, esc, 2);
            s++;
        } else if (c < 0x20) {
            char esc[8];
            const char *named = c == '\n'   ? "\\n"
                                : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t"
                                : c == '\b' ? "\\b"
                                : c == '\f' ? "\\f"
                                            : NULL;
            if (named)
                buf_puts(b, named);
            else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                buf_puts(b, esc);
            }
            s++;
        } else {
            size_t l = utf8_len(s);
            if (l == 0) {
                buf_puts(b, "\xEF\xBF\xBD");
                s++;
            } else {
                buf_put(b, (const char *)s, l);
                s += l;
            }
        }
    }
    buf_put(b, "\"", 1);
}

char *ewtp_errors_to_json(const struct ewtp_errors *e)
{
    struct buf b = {0};
    buf_puts(&b, "{\"errors\":[");
    for (size_t i = 0; e && i < e->n; i++) {
        const struct ewtp_error *x = &e->v[i];
        buf_puts(&b, i ? ",{\"pointer\":" : "{\"pointer\":");
        buf_string(&b, x->pointer);
        buf_puts(&b, ",\"code\":");
        buf_string(&b, x->code);
        buf_puts(&b, ",\"message\":");
        buf_string(&b, x->message);
        if (x->severity == EWTP_SEV_WARNING)
            buf_puts(&b, ",\"severity\":\"warning\"");
        buf_puts(&b, "}");
    }
    buf_puts(&b, "]}");
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

const char *ewtp_pointer(char buf[EWTP_POINTER_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, EWTP_POINTER_MAX, fmt, ap);
    va_end(ap);
    if (n < 0)
        buf[0] = 0;
    else if (n >= EWTP_POINTER_MAX)
        memcpy(buf + EWTP_POINTER_MAX - 4, "...", 4);
    return buf;
}
