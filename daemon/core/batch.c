/* batch.c — batching rules: maximum wait, limits after translation, splitting. See batch.h. */
#include "batch.h"

size_t ewtp_batch_max(const struct ewtp_batch_limits *l)
{
    return l && l->max_documents > 0 ? l->max_documents : 1;
}

int64_t ewtp_batch_wait(const struct ewtp_batch_limits *l, size_t n, int64_t since_ms, int64_t now,
                        int64_t lease_ms)
{
    if (l == NULL || n >= ewtp_batch_max(l) || l->max_wait_ms <= 0)
        return 0;
    int64_t wait = l->max_wait_ms;
    if (lease_ms > 0 && wait > lease_ms / 4)
        wait = lease_ms / 4;
    int64_t left = since_ms + wait - now;
    return left > 0 ? left : 0;
}

/* ceil(total / limit), at least 2 and at most n. */
static size_t pieces_for(size_t n, size_t total, size_t limit)
{
    size_t k = limit > 0 ? total / limit + (total % limit != 0) : 2;
    /* Request envelopes do not shrink with the split: one piece more leaves room for them. */
    if (k < 2)
        k = 2;
    else
        k++;
    return k > n ? n : k;
}

enum ewtp_batch_fit ewtp_batch_fit(const struct ewtp_batch_limits *l, size_t n,
                                   const size_t *request_bytes, size_t n_requests,
                                   const size_t *doc_bytes, size_t n_docs, size_t *pieces,
                                   const char **what, size_t *size, size_t *limit)
{
    *pieces = 1;
    *what = NULL;
    *size = 0;
    *limit = 0;
    if (l == NULL)
        return EWTP_BATCH_FITS;
    /* A document over the per-document limit cannot be helped by splitting: only its own
     * batch of one is rejected; halving finds it. */
    for (size_t i = 0; l->max_document_bytes > 0 && i < n_docs; i++) {
        if (doc_bytes[i] > l->max_document_bytes) {
            *what = "document";
            *size = doc_bytes[i];
            *limit = l->max_document_bytes;
            if (n <= 1)
                return EWTP_BATCH_TOO_BIG;
            *pieces = 2;
            return EWTP_BATCH_SPLIT;
        }
    }
    for (size_t i = 0; l->max_request_bytes > 0 && i < n_requests; i++) {
        if (request_bytes[i] > l->max_request_bytes) {
            *what = "request";
            *size = request_bytes[i];
            *limit = l->max_request_bytes;
            if (n <= 1)
                return EWTP_BATCH_TOO_BIG;
            *pieces = pieces_for(n, request_bytes[i], l->max_request_bytes);
            return EWTP_BATCH_SPLIT;
        }
    }
    return EWTP_BATCH_FITS;
}

size_t ewtp_batch_piece(size_t n, size_t k, size_t i, size_t *start)
{
    if (k == 0 || i >= k) {
        *start = n;
        return 0;
    }
    size_t base = n / k, extra = n % k;
    *start = i * base + (i < extra ? i : extra);
    return base + (i < extra ? 1 : 0);
}
