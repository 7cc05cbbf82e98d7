/* Builders and helpers of ewtp/plugin.h that plugins and hosts share: translate's output,
 * response headers, verdict names. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/plugin.h>

struct item_array {
    void *items;
    size_t n, cap, width;
};

struct ewtp_out {
    struct ewtp_arena *arena;
    struct item_array docs;
    struct item_array reqs;
};

/* Grows an arena-backed array by doubling; the old block stays in the arena until it is
 * freed, which is fine for the handful of documents a message becomes. */
static void *array_push(struct ewtp_arena *a, struct item_array *arr)
{
    if (arr->n == arr->cap) {
        size_t cap = arr->cap ? arr->cap * 2 : 4;
        void *grown = ewtp_arena_alloc(a, cap * arr->width);
        if (grown == NULL)
            return NULL;
        if (arr->n)
            memcpy(grown, arr->items, arr->n * arr->width);
        arr->items = grown;
        arr->cap = cap;
    }
    return (char *)arr->items + arr->n++ * arr->width;
}

struct ewtp_out *ewtp_out_new(struct ewtp_arena *a)
{
    struct ewtp_out *out = ewtp_arena_alloc(a, sizeof(*out));
    if (out == NULL)
        return NULL;
    out->arena = a;
    out->docs.width = sizeof(struct ewtp_document);
    out->reqs.width = sizeof(struct ewtp_request);
    return out;
}

int ewtp_out_add_document(struct ewtp_out *out, const struct ewtp_document *doc)
{
    if (out == NULL || doc == NULL || doc->name == NULL || doc->data == NULL)
        return -EWTP_EINVAL;
    struct ewtp_document *slot = array_push(out->arena, &out->docs);
    if (slot == NULL)
        return -EWTP_ENOMEM;
    *slot = *doc;
    return 0;
}

int ewtp_out_add_request(struct ewtp_out *out, const struct ewtp_request *req)
{
    if (out == NULL || req == NULL || req->method == NULL || req->path == NULL)
        return -EWTP_EINVAL;
    struct ewtp_request *slot = array_push(out->arena, &out->reqs);
    if (slot == NULL)
        return -EWTP_ENOMEM;
    *slot = *req;
    return 0;
}

size_t ewtp_out_documents(const struct ewtp_out *out, const struct ewtp_document **docs)
{
    if (docs)
        *docs = out ? out->docs.items : NULL;
    return out ? out->docs.n : 0;
}

size_t ewtp_out_requests(const struct ewtp_out *out, const struct ewtp_request **reqs)
{
    if (reqs)
        *reqs = out ? out->reqs.items : NULL;
    return out ? out->reqs.n : 0;
}

const char *ewtp_response_header(const struct ewtp_response *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

const char *ewtp_verdict_name(enum ewtp_verdict v)
{
    switch (v) {
    case EWTP_V_SUBMITTED:
        return "submitted";
    case EWTP_V_APPROVED:
        return "approved";
    case EWTP_V_REJECTED:
        return "rejected";
    case EWTP_V_RETRY:
        return "retry";
    case EWTP_V_CANCELLED:
        return "cancelled";
    case EWTP_V_INFO:
        return "info";
    }
    return "unknown";
}
