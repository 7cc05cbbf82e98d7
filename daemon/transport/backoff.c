/* Retry timing and verdict mapping; see backoff.h. */
#include "backoff.h"

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

int64_t ewtp_backoff_delay(const struct ewtp_backoff_policy *p, unsigned attempt,
                           int64_t retry_after_ms, uint64_t rnd)
{
    int64_t base = p->base_ms > 0 ? p->base_ms : 1;
    int64_t cap = p->max_ms > 0 ? p->max_ms : base;
    int64_t ceil = base;
    /* base * 2^(attempt-1) without overflow: stop doubling once past the cap. */
    for (unsigned i = 1; i < attempt && ceil < cap; i++)
        ceil = ceil > INT64_MAX / 2 ? INT64_MAX : ceil * 2;
    if (ceil > cap)
        ceil = cap;
    int64_t d = (int64_t)(rnd % ((uint64_t)ceil + 1));
    if (retry_after_ms > d)
        d = retry_after_ms;
    return d < 0 ? 0 : d;
}

enum ewtp_store_state ewtp_backoff_decide(const struct ewtp_backoff_policy *p, unsigned attempt,
                                          int64_t created_at, int64_t now, int64_t retry_after_ms,
                                          uint64_t rnd, int64_t *next_at)
{
    *next_at = 0;
    if (p->max_attempts > 0 && attempt >= p->max_attempts)
        return EWTP_STORE_DEAD;
    if (p->max_age_ms > 0 && now - created_at >= p->max_age_ms)
        return EWTP_STORE_DEAD;
    int64_t at = now + ewtp_backoff_delay(p, attempt, retry_after_ms, rnd);
    /* Trying again after the age limit would only find the message dead then. */
    if (p->max_age_ms > 0 && at - created_at > p->max_age_ms)
        at = created_at + p->max_age_ms;
    *next_at = at;
    return EWTP_STORE_RETRYING;
}

bool ewtp_backoff_verdict_state(enum ewtp_verdict v, enum ewtp_op op, enum ewtp_store_state *out)
{
    switch (v) {
    case EWTP_V_SUBMITTED:
        *out = EWTP_STORE_SUBMITTED;
        return true;
    case EWTP_V_APPROVED:
        *out = EWTP_STORE_APPROVED;
        return true;
    case EWTP_V_REJECTED:
        *out = EWTP_STORE_REJECTED;
        return true;
    case EWTP_V_RETRY:
        *out = EWTP_STORE_RETRYING;
        return true;
    case EWTP_V_CANCELLED:
        if (op != EWTP_OP_CANCEL)
            return false;
        *out = EWTP_STORE_CANCELLED;
        return true;
    case EWTP_V_INFO:
    default:
        return false;
    }
}
