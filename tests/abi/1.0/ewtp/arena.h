/* ewtp/arena.h — per-call allocation.
 *
 * Everything a plugin callback returns (strings, documents, requests, outcomes) is allocated
 * in the call's arena. The host creates the arena before the call and frees it, with all it
 * holds, after it has used the results: a plugin never frees what it allocated here, and
 * never keeps a pointer into an arena past the call. Allocation failure returns NULL.
 * Not thread-safe: one arena belongs to one call on one thread.
 */
#ifndef EWTP_ARENA_H
#define EWTP_ARENA_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ewtp_arena;

/* New arena; caller frees with ewtp_arena_free(). NULL when out of memory. */
struct ewtp_arena *ewtp_arena_new(void);
/* Frees the arena and everything allocated in it. NULL is a no-op. */
void ewtp_arena_free(struct ewtp_arena *a);

/* Zeroed memory aligned for any type, valid until the arena is freed. */
void *ewtp_arena_alloc(struct ewtp_arena *a, size_t size);
/* Copies of bytes and strings; ewtp_arena_memdup adds a NUL after the copy. */
void *ewtp_arena_memdup(struct ewtp_arena *a, const void *p, size_t size);
char *ewtp_arena_strdup(struct ewtp_arena *a, const char *s); /* NULL s gives NULL. */
char *ewtp_arena_strndup(struct ewtp_arena *a, const char *s, size_t n);
char *ewtp_arena_printf(struct ewtp_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *ewtp_arena_vprintf(struct ewtp_arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Bytes currently held (for limits and tests). */
size_t ewtp_arena_used(const struct ewtp_arena *a);

#ifdef __cplusplus
}
#endif
#endif
