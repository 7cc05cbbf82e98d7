/* arena_internal.h — libewtp-private arena extensions (not part of the public SDK).
 *
 * Cleanup hooks let an arena own objects that live outside it (a jansson tree parsed by
 * ewtp_json_parse). Hooks run in reverse order of registration when the arena is freed,
 * before its memory is released, so a hook may still read arena memory.
 * The symbol carries the ewtp_ prefix only because libewtp's version script exports
 * ewtp_*; plugins must not call it (it is not in sdk/include).
 */
#ifndef EWTP_ARENA_INTERNAL_H
#define EWTP_ARENA_INTERNAL_H

#include <ewtp/arena.h>

/* Registers fn(p) to run at ewtp_arena_free(a). Returns 0, or -EWTP_ENOMEM (fn is then not
 * registered and not called: the caller still owns p and must release it itself). */
int ewtp_arena_on_free(struct ewtp_arena *a, void (*fn)(void *), void *p);

#endif
