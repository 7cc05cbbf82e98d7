/* Builders and helpers of ewtp/plugin.h that plugins and hosts share: translate's output,
 * response headers, verdict names. */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/plugin.h>

struct item_array {
    void *items;
    size_t n, cap, width;
};

/* The copies (libewtp's size each) behind arrays of pointers. */
struct ewtp_out {
    struct ewtp_arena *arena;
    struct item_array docs; /* struct ewtp_document * */
    struct item_array reqs; /* struct ewtp_request * */
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
    out->docs.width = sizeof(struct ewtp_document *);
    out->reqs.width = sizeof(struct ewtp_request *);
    return out;
}

/* A header the host may read: allocated with at least the 1.0 members. */
static bool header_ok(const struct ewtp_header *h)
{
    return EWTP_HAS(h, struct ewtp_header, secret) && h->name != NULL && h->value != NULL;
}

int ewtp_out_add_document(struct ewtp_out *out, const struct ewtp_document *doc)
{
    if (out == NULL || doc == NULL || doc->size < sizeof(size_t))
        return -EWTP_EINVAL;
    struct ewtp_document *copy = ewtp_arena_alloc(out->arena, sizeof(*copy));
    if (copy == NULL)
        return -EWTP_ENOMEM;
    ewtp_sized_copy(copy, sizeof(*copy), doc);
    if (copy->name == NULL || copy->data == NULL)
        return -EWTP_EINVAL;
    struct ewtp_document **slot = array_push(out->arena, &out->docs);
    if (slot == NULL)
        return -EWTP_ENOMEM;
    *slot = copy;
    return 0;
}

int ewtp_out_add_request(struct ewtp_out *out, const struct ewtp_request *req)
{
    if (out == NULL || req == NULL || req->size < sizeof(size_t))
        return -EWTP_EINVAL;
    struct ewtp_request *copy = ewtp_arena_alloc(out->arena, sizeof(*copy));
    if (copy == NULL)
        return -EWTP_ENOMEM;
    ewtp_sized_copy(copy, sizeof(*copy), req);
    if (copy->method == NULL || copy->path == NULL || (copy->n_headers && !copy->headers))
        return -EWTP_EINVAL;
    for (size_t i = 0; i < copy->n_headers; i++)
        if (!header_ok(copy->headers[i]))
            return copy->headers[i] == NULL ? -EWTP_ENOMEM : -EWTP_EINVAL;
    struct ewtp_request **slot = array_push(out->arena, &out->reqs);
    if (slot == NULL)
        return -EWTP_ENOMEM;
    *slot = copy;
    return 0;
}

size_t ewtp_out_documents(const struct ewtp_out *out, const struct ewtp_document *const **docs)
{
    if (docs)
        *docs = out ? out->docs.items : NULL;
    return out ? out->docs.n : 0;
}

size_t ewtp_out_requests(const struct ewtp_out *out, const struct ewtp_request *const **reqs)
{
    if (reqs)
        *reqs = out ? out->reqs.items : NULL;
    return out ? out->reqs.n : 0;
}

const struct ewtp_header *ewtp_header_new(struct ewtp_arena *a, const char *name, const char *value,
                                          bool secret)
{
    struct ewtp_header *h = ewtp_arena_alloc(a, sizeof(*h));
    if (h == NULL)
        return NULL;
    *h = (struct ewtp_header)EWTP_HEADER_INIT(.name = name, .value = value, .secret = secret);
    return h;
}

int ewtp_route_add_relation_key(struct ewtp_route_info *r, struct ewtp_arena *a, const char *key)
{
    if (r == NULL || a == NULL || key == NULL)
        return -EWTP_EINVAL;
    const char **keys = ewtp_arena_alloc(a, (r->n_relation_keys + 1) * sizeof(*keys));
    if (keys == NULL)
        return -EWTP_ENOMEM;
    for (size_t i = 0; i < r->n_relation_keys; i++)
        keys[i] = r->relation_keys[i];
    keys[r->n_relation_keys] = key;
    r->relation_keys = keys;
    r->n_relation_keys++;
    return 0;
}

void ewtp_outcome_clear(struct ewtp_outcome *o)
{
    if (o == NULL || o->size <= sizeof(size_t))
        return;
    memset((char *)o + sizeof(size_t), 0, o->size - sizeof(size_t));
}

void ewtp_outcome_copy(struct ewtp_outcome *dst, const struct ewtp_outcome *src)
{
    if (dst == NULL || src == NULL || dst->size < sizeof(size_t))
        return;
    ewtp_sized_copy(dst, dst->size, src);
}

const char *ewtp_response_header(const struct ewtp_response *r, const char *name)
{
    if (r == NULL || name == NULL || r->headers == NULL)
        return NULL;
    for (size_t i = 0; i < r->n_headers; i++) {
        const struct ewtp_header *h = r->headers[i];
        if (h && h->name && strcasecmp(h->name, name) == 0)
            return h->value;
    }
    return NULL;
}

#define ONE_DAY_MS (86400 * INT64_C(1000))

static int month_of(const char *m)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (strncmp(m, names + 3 * i, 3) == 0)
            return i;
    return -1;
}

int64_t ewtp_retry_after_ms(const char *value, int64_t now)
{
    if (value == NULL)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end = NULL;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end != '\0' || s < 0)
            return 0;
        return s > 86400 ? ONE_DAY_MS : (int64_t)s * 1000;
    }
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
    char wd[4], mon[4], zone[4];
    int day, year, h, mi, sec;
    if (strlen(value) != 29 || value[3] != ',' ||
        sscanf(value, "%3s, %d %3s %d %d:%d:%d %3s", wd, &day, mon, &year, &h, &mi, &sec, zone) !=
            8 ||
        strcmp(zone, "GMT") != 0)
        return 0;
    int m = month_of(mon);
    if (m < 0 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60 || year < 1970)
        return 0;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = m,
                    .tm_mday = day,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    int64_t at = (int64_t)timegm(&tm) * 1000;
    if (at <= now)
        return 0;
    return at - now > ONE_DAY_MS ? ONE_DAY_MS : at - now;
}

int64_t ewtp_response_retry_after_ms(const struct ewtp_response *r, int64_t now_ms)
{
    return ewtp_retry_after_ms(ewtp_response_header(r, "Retry-After"), now_ms);
}

const char *ewtp_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 400 ? "OK" : "Error";
    }
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
