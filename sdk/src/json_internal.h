/* json_internal.h — libewtp-private: jansson trees seen through ewtp/json.h (not exported). */
#ifndef EWTP_JSON_INTERNAL_H
#define EWTP_JSON_INTERNAL_H

#include <ewtp/json.h>
#include <jansson.h>

/* Builds the reader's nodes for a jansson tree into the arena, in one pass (O(size)). The
 * nodes borrow jansson's keys and strings: root must outlive the arena's use of them.
 * Numbers keep no source text (ewtp_json_number_text gives NULL for them). NULL on OOM. */
const struct ewtp_json *ewtp_json_from_jansson_(struct ewtp_arena *a, const json_t *root);

#endif
