/* arena.c — chunked bump allocator (ewtp/arena.h). */
#include <ewtp/arena.h>
#include <ewtp/errors.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_internal.h"

/* Regular chunks hold this many bytes of payload; requests larger than a quarter of it get a
 * chunk of their own, so a big allocation never wastes the tail of the current chunk. */
#define CHUNK_SIZE 8192
#define LARGE_LIMIT (CHUNK_SIZE / 4)
#define ALIGN _Alignof(max_align_t)

struct chunk {
    struct chunk *next;
    size_t size; /* payload bytes */
    size_t used;
    _Alignas(max_align_t) unsigned char data[];
};

struct hook {
    struct hook *next;
    void (*fn)(void *);
    void *p;
};

struct ewtp_arena {
    struct chunk *cur;   /* chunk bump allocations come from */
    struct chunk *large; /* dedicated chunks of large allocations */
    struct hook *hooks;  /* most recent first */
    size_t held;         /* bytes malloc'd for chunks */
};

static struct chunk *chunk_new(struct ewtp_arena *a, size_t size)
{
    if (size > SIZE_MAX - sizeof(struct chunk))
        return NULL;
    struct chunk *c = malloc(sizeof(struct chunk) + size);
    if (!c)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    a->held += sizeof(struct chunk) + size;
    return c;
}

struct ewtp_arena *ewtp_arena_new(void)
{
    struct ewtp_arena *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cur = chunk_new(a, CHUNK_SIZE);
    if (!a->cur) {
        free(a);
        return NULL;
    }
    return a;
}

static void chunks_free(struct chunk *c)
{
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
}

void ewtp_arena_free(struct ewtp_arena *a)
{
    if (!a)
        return;
    /* Hooks first: they may read memory held by the arena. */
    for (struct hook *h = a->hooks; h; h = h->next)
        h->fn(h->p);
    chunks_free(a->cur);
    chunks_free(a->large);
    free(a);
}

void *ewtp_arena_alloc(struct ewtp_arena *a, size_t size)
{
    if (!a)
        return NULL;
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ALIGN)
        return NULL;
    size_t rounded = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (rounded > LARGE_LIMIT) {
        struct chunk *c = chunk_new(a, rounded);
        if (!c)
            return NULL;
        c->used = rounded;
        c->next = a->large;
        a->large = c;
        memset(c->data, 0, rounded);
        return c->data;
    }
    if (a->cur->size - a->cur->used < rounded) {
        struct chunk *c = chunk_new(a, CHUNK_SIZE);
        if (!c)
            return NULL;
        c->next = a->cur;
        a->cur = c;
    }
    void *p = a->cur->data + a->cur->used;
    a->cur->used += rounded;
    memset(p, 0, rounded);
    return p;
}

void *ewtp_arena_memdup(struct ewtp_arena *a, const void *p, size_t size)
{
    if (size == SIZE_MAX)
        return NULL;
    unsigned char *d = ewtp_arena_alloc(a, size + 1);
    if (!d)
        return NULL;
    if (size)
        memcpy(d, p, size);
    d[size] = 0;
    return d;
}

char *ewtp_arena_strdup(struct ewtp_arena *a, const char *s)
{
    if (!s)
        return NULL;
    return ewtp_arena_memdup(a, s, strlen(s));
}

char *ewtp_arena_strndup(struct ewtp_arena *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    return ewtp_arena_memdup(a, s, strnlen(s, n));
}

char *ewtp_arena_vprintf(struct ewtp_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = ewtp_arena_alloc(a, (size_t)n + 1);
    if (!s)
        return NULL;
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *ewtp_arena_printf(struct ewtp_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ewtp_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return s;
}

size_t ewtp_arena_used(const struct ewtp_arena *a)
{
    return a ? a->held : 0;
}

int ewtp_arena_on_free(struct ewtp_arena *a, void (*fn)(void *), void *p)
{
    if (!a || !fn)
        return -EWTP_EINVAL;
    struct hook *h = ewtp_arena_alloc(a, sizeof(*h));
    if (!h)
        return -EWTP_ENOMEM;
    h->fn = fn;
    h->p = p;
    h->next = a->hooks;
    a->hooks = h;
    return 0;
}
