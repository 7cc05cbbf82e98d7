/* ewtp/abi.h — the ABI version and the rule by which public structs grow.
 *
 * Version: EWTP_ABI_MAJOR.EWTP_ABI_MINOR is the version of the headers a plugin or host is
 * compiled with; ewtp_abi_major()/ewtp_abi_minor() give the version of the libewtp actually
 * loaded, and struct ewtp_host carries the host's (abi_major, abi_minor). A host loads a plugin
 * when the majors are equal and the plugin's minor is not newer than the host's (which is never
 * newer than its libewtp's), so a plugin always runs on headers at least as new as its own.
 *
 * Growth rule (major 1). Everything that may grow is reachable only through a pointer, and
 * every such struct begins with `size_t size`: the sizeof of the struct as compiled by whoever
 * allocated that instance (the host for call, related, chain, route info, response, outcome,
 * inbound, correlation, the host table and the parsed message model; the plugin for its
 * descriptor, documents, requests, headers and batch limits, which it fills with the
 * EWTP_*_INIT(...) macros so that size is right).
 *   - A minor version may only append members at the end of such a struct (and append
 *     functions to ewtp_host, new functions to libewtp in a new symbol node EWTP_1.<minor>, new
 *     enum values, new kinds of things with their own struct). A new member's zero value must
 *     mean "as before", because an older peer leaves it zero.
 *   - Arrays of such structs cross the boundary as arrays of pointers (const struct ewtp_line
 *     *const *lines), never as arrays of structs, so nobody indexes with a sizeof that is not
 *     the allocator's.
 *   - Whoever reads or writes a member newer than 1.0 in an instance it did not allocate
 *     tests EWTP_HAS(ptr, struct type, member) first. In particular a plugin writing into a
 *     host-allocated struct (outcome, route info, correlation) must test EWTP_HAS before
 *     writing any member added after 1.0, and must never clear such a struct with its own
 *     sizeof (use ewtp_outcome_clear()). A host reading a plugin-allocated struct tests
 *     EWTP_HAS, or copies it with ewtp_sized_copy() (the smaller of the two sizes, the rest
 *     zeroed), as libewtp does for documents and requests.
 *   - Small pure value types that will never grow (struct ewtp_dec, struct ewtp_num) are
 *     frozen for major 1: they may be embedded and passed by value, and a _Static_assert pins
 *     their size. Everything else is growable or opaque (accessor functions only).
 *   - Removing, reordering, retyping a member or changing what a member or a function means
 *     bumps EWTP_ABI_MAJOR (and the plugin symbol ewtp_plugin_v<major>). A stricter variant of
 *     a function is a new function; the old one keeps its documented meaning.
 *   - Every change adds a History line in plugin.h (and host.h for the host table).
 *
 * Test hook: EWTP_ABI_TEST_GROWN is defined only by the compatibility test (tests/abi, ctest
 * abi/compat). It makes these headers a pretend next minor: every growable struct gets an extra
 * trailing member abi_test_grown and EWTP_ABI_MINOR becomes the next minor. Never define it
 * elsewhere.
 */
#ifndef EWTP_ABI_H
#define EWTP_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EWTP_ABI_MAJOR 1
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi): a pretend next minor */
#define EWTP_ABI_MINOR 8
#else
#define EWTP_ABI_MINOR 7
#endif

#ifdef __cplusplus
#define EWTP_STATIC_ASSERT static_assert
#else
#define EWTP_STATIC_ASSERT _Static_assert
#endif

/* True when the instance *ptr (whose first member is size_t size) was allocated with a
 * struct type that covers member: use before touching a member added after 1.0 in an instance
 * someone else allocated. ptr is evaluated more than once. */
#define EWTP_HAS(ptr, type, member)                                                                \
    ((ptr) != NULL && (ptr)->size >= offsetof(type, member) + sizeof(((const type *)0)->member))

/* The ABI version of the loaded libewtp (not of the headers one was compiled with). */
unsigned ewtp_abi_major(void);
unsigned ewtp_abi_minor(void);

/* Copies a struct that starts with size_t size, allocated by someone else, into dst of
 * dst_size bytes: the smaller of the two sizes is copied, the rest of dst is zeroed and
 * dst's size member is set to dst_size. src's size below sizeof(size_t) copies nothing. */
void ewtp_sized_copy(void *dst, size_t dst_size, const void *src);
/* Zeroes every member but size of a struct that starts with size_t size, over its size bytes
 * (the allocator's): how a plugin resets a host-allocated struct (never memset with its own
 * sizeof, which would also clear size). */
void ewtp_sized_clear(void *obj);

#ifdef __cplusplus
}
#endif
#endif
