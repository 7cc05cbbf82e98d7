/* api_json.h — the JSON of the HTTP API and the admin socket, rendered from store rows.
 *
 * The one place that knows how a message's status, its events and a listing look on the
 * wire (the spec's Status object, DESIGN.md "HTTP API", sdk/schema/openapi.json). Store
 * backends return rows (store.h) and never render; GET /v1/messages…, `ewtpctl messages`
 * and the admin socket all come through here, so a second backend answers byte for byte
 * the same.
 *
 * Texts are compact JSON, members in the order below, times RFC 3339 UTC with ms.
 * Thread-safe; the fetching forms read the store and may be called on any worker thread.
 * Errors: 0, -EWTP_ENOMEM, or the store's code (-EWTP_ENOTFOUND, -EWTP_EINVAL, -EWTP_EIO).
 */
#ifndef EWTP_API_JSON_H
#define EWTP_API_JSON_H

#include "store.h"

#include <jansson.h>

/* {"id","tenant","kind","destination","plugin","state","attempts","next_attempt_at" (time,
 * or null unless accepted/retrying),"authority_ref" (or null),"receipts":[{"at","state",
 * "code","message"}],"errors":[warnings given at accept, then the last outcome's errors],
 * "created_at","updated_at"}. New reference, or NULL when out of memory. */
json_t *ewtp_api_status_obj(const struct ewtp_store_status *s);
/* {"events":[{"at","type","state","attempt","detail" (object or null)}...]}. */
json_t *ewtp_api_events_obj(const struct ewtp_store_event *e, size_t n);
/* {"items":[status objects],"next":cursor or null}. */
json_t *ewtp_api_list_obj(const struct ewtp_store_page *p);

/* Compact text of obj (taken: decref'd here) into *json (malloc'd; caller frees). */
int ewtp_api_dump_take(json_t *obj, char **json);

/* Read from the store and render: the Status object of tenant/id, its events, one page of a
 * listing (*json malloc'd, caller frees). */
int ewtp_api_status_json(struct ewtp_store *st, const char *tenant, const char *id, char **json);
int ewtp_api_events_json(struct ewtp_store *st, const char *tenant, const char *id, char **json);
int ewtp_api_list_json(struct ewtp_store *st, const struct ewtp_store_filter *f, char **json);

#endif
