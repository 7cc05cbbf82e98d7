/* arena_internal.h — libewtp-private arena extensions (not part of the public SDK).
 *
 * Cleanup hooks let an arena own objects that live outside it (a jansson tree parsed by
 * ewtp_json_parse). Hooks run in reverse order of registration when the arena is freed,
 * before its memory is released, so a hook may still read arena memory.
 * Not exported: libewtp.map lists the public API only (tests/unit/test_arena.c compiles
 * arena.c itself to reach it).
 */
#ifndef EWTP_ARENA_INTERNAL_H
#define EWTP_ARENA_INTERNAL_H

#include <ewtp/arena.h>

/* Registers fn(p) to run at ewtp_arena_free(a). Returns 0, or -EWTP_ENOMEM (fn is then not
 * registered and not called: the caller still owns p and must release it itself). */
int ewtp_arena_on_free(struct ewtp_arena *a, void (*fn)(void *), void *p);

#endif
