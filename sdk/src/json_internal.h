/* json_internal.h — libewtp-private: jansson trees seen through ewtp/json.h (not exported). */
#ifndef EWTP_JSON_INTERNAL_H
#define EWTP_JSON_INTERNAL_H

#include <stddef.h>

#include <ewtp/json.h>
#include <jansson.h>

/* Builds the reader's nodes for a jansson tree into the arena, in one pass (O(size)). The
 * nodes borrow jansson's keys and strings: root must outlive the arena's use of them.
 * Numbers keep no source text (ewtp_json_number_text gives NULL for them). NULL on OOM. */
const struct ewtp_json *ewtp_json_from_jansson_(struct ewtp_arena *a, const json_t *root);

/* json_fast.c (issue 20). The tree json_loadb(data, len, flags) would build (flags 0 or
 * JSON_REJECT_DUPLICATES; an object or array at the top), or NULL when this reader gave up:
 * the text is not valid JSON or holds something it leaves to jansson. On NULL call
 * json_loadb, which gives the tree or the exact error. A tree returned means the text is
 * UTF-8 without NUL bytes; *depth (when given) is its deepest nesting of objects and arrays
 * (1 for a flat object). */
json_t *ewtp_json_load_fast_(const char *data, size_t len, size_t flags, unsigned *depth);
/* json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT), byte for byte, for an object or array
 * whose strings are valid UTF-8 (as parsed); *len (when given) its length. NULL on OOM. */
char *ewtp_json_dump_canonical_(const json_t *root, size_t *len);

/* Length (1..4) of the valid UTF-8 sequence at p, of which avail bytes are readable, or 0
 * when it is not one: the rules of jansson's utf8_check_first / utf8_check_full (no overlong
 * forms, surrogates or code points above U+10FFFF). message.c's prescan and json_fast.c's
 * reader both use it, so the two agree on what UTF-8 is. */
size_t ewtp_utf8_seq_(const unsigned char *p, size_t avail);

#endif
