/* Unit tests of the dispatcher's pure parts: backoff (full jitter, Retry-After, dead),
 * verdict -> state mapping, the Standard Webhooks signature, and the store's receipt
 * polling additions (claim_poll, poll_schedule). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ewtp/errors.h>

#include "backoff.h"
#include "api_json.h"
#include "store.h"
#include "whsig.h"

static const struct ewtp_backoff_policy pol = {
    .max_attempts = 5, .max_age_ms = 60000, .base_ms = 100, .max_ms = 1000};

static void test_delay_bounds(void **state)
{
    (void)state;
    /* rnd = max value picks the ceiling: base * 2^(attempt-1), capped. */
    assert_int_equal(ewtp_backoff_delay(&pol, 1, 0, 100), 100);
    assert_int_equal(ewtp_backoff_delay(&pol, 2, 0, 200), 200);
    assert_int_equal(ewtp_backoff_delay(&pol, 3, 0, 400), 400);
    assert_int_equal(ewtp_backoff_delay(&pol, 5, 0, 1000), 1000);
    assert_int_equal(ewtp_backoff_delay(&pol, 60, 0, 1000), 1000); /* no overflow */
    assert_int_equal(ewtp_backoff_delay(&pol, 1000000, 0, 1000), 1000);
    /* Full jitter: anything in [0, ceiling]. */
    assert_int_equal(ewtp_backoff_delay(&pol, 3, 0, 0), 0);
    for (uint64_t r = 0; r < 5000; r += 7) {
        int64_t d = ewtp_backoff_delay(&pol, 4, 0, r * 2654435761u);
        assert_true(d >= 0 && d <= 800);
    }
    /* Retry-After is a floor, even above the cap. */
    assert_int_equal(ewtp_backoff_delay(&pol, 1, 5000, 3), 5000);
    assert_int_equal(ewtp_backoff_delay(&pol, 1, 50, 100), 100);
}

static void test_decide(void **state)
{
    (void)state;
    int64_t next = -1;
    assert_int_equal(ewtp_backoff_decide(&pol, 1, 1000, 2000, 0, 50, &next), EWTP_STORE_RETRYING);
    assert_int_equal(next, 2050);
    assert_int_equal(ewtp_backoff_decide(&pol, 2, 1000, 2000, 3000, 0, &next), EWTP_STORE_RETRYING);
    assert_int_equal(next, 5000);
    /* attempts used up */
    assert_int_equal(ewtp_backoff_decide(&pol, 5, 1000, 2000, 0, 0, &next), EWTP_STORE_DEAD);
    assert_int_equal(next, 0);
    /* too old */
    assert_int_equal(ewtp_backoff_decide(&pol, 1, 0, 60000, 0, 0, &next), EWTP_STORE_DEAD);
    /* a retry is never planned past the age limit */
    assert_int_equal(ewtp_backoff_decide(&pol, 1, 0, 59990, 5000, 0, &next), EWTP_STORE_RETRYING);
    assert_int_equal(next, 60000);
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(ewtp_retry_after_ms(NULL, 0), 0);
    assert_int_equal(ewtp_retry_after_ms("2", 0), 2000);
    assert_int_equal(ewtp_retry_after_ms(" 0 ", 0), 0);
    assert_int_equal(ewtp_retry_after_ms("-3", 0), 0);
    assert_int_equal(ewtp_retry_after_ms("2x", 0), 0);
    assert_int_equal(ewtp_retry_after_ms("999999999", 0), 86400000);
    /* 1994-11-06T08:49:37Z = 784111777 s */
    int64_t now = 784111777LL * 1000 - 5000;
    assert_int_equal(ewtp_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now), 5000);
    assert_int_equal(ewtp_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now + 9000), 0);
    assert_int_equal(ewtp_retry_after_ms("Sun, 06 Nov 1994 08:49:37 CET", now), 0);
    assert_int_equal(ewtp_retry_after_ms("Sun, 06 Foo 1994 08:49:37 GMT", now), 0);
}

static void test_verdict_state(void **state)
{
    (void)state;
    enum ewtp_store_state s;
    assert_true(ewtp_backoff_verdict_state(EWTP_V_SUBMITTED, EWTP_OP_SUBMIT, &s));
    assert_int_equal(s, EWTP_STORE_SUBMITTED);
    assert_true(ewtp_backoff_verdict_state(EWTP_V_APPROVED, EWTP_OP_SUBMIT, &s));
    assert_int_equal(s, EWTP_STORE_APPROVED);
    assert_true(ewtp_backoff_verdict_state(EWTP_V_REJECTED, EWTP_OP_SUBMIT, &s));
    assert_int_equal(s, EWTP_STORE_REJECTED);
    assert_true(ewtp_backoff_verdict_state(EWTP_V_RETRY, EWTP_OP_SUBMIT, &s));
    assert_int_equal(s, EWTP_STORE_RETRYING);
    assert_false(ewtp_backoff_verdict_state(EWTP_V_CANCELLED, EWTP_OP_SUBMIT, &s));
    assert_true(ewtp_backoff_verdict_state(EWTP_V_CANCELLED, EWTP_OP_CANCEL, &s));
    assert_int_equal(s, EWTP_STORE_CANCELLED);
    assert_false(ewtp_backoff_verdict_state(EWTP_V_INFO, EWTP_OP_SUBMIT, &s));
}

/* The example of the Standard Webhooks specification's reference libraries. */
static void test_whsig_known_answer(void **state)
{
    (void)state;
    char *sig = NULL;
    const char *body = "{\"test\": 2432232314}";
    assert_int_equal(ewtp_whsig_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                     &sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    free(sig);
    /* a secret file's trailing newline is not part of the secret */
    assert_int_equal(ewtp_whsig_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                     &sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    free(sig);
    assert_int_equal(ewtp_whsig_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "x", 1, &sig),
                     -EWTP_EFORMAT);
    assert_null(sig);
    assert_int_equal(ewtp_whsig_sign("whsec_!!!", "m", 1, "x", 1, &sig), -EWTP_EFORMAT);
}

/* ---- store: receipt polling ------------------------------------------------------------- */

static char db_path[256];

static struct ewtp_store *open_store(void)
{
    snprintf(db_path, sizeof(db_path), "/tmp/ewtp-test-dispatch-%ld.db", (long)getpid());
    unlink(db_path);
    char side[300];
    snprintf(side, sizeof(side), "%s-wal", db_path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db_path);
    unlink(side);
    struct ewtp_store *st = NULL;
    assert_int_equal(ewtp_store_open_sqlite(db_path, NULL, &st, NULL), 0);
    return st;
}

static void accept_one(struct ewtp_store *st, const char *id, const char *okey, int64_t now)
{
    struct ewtp_store_accept_req r = {.tenant = "t1",
                                      .id = id,
                                      .kind = "order",
                                      .destination = "ZZ",
                                      .plugin = "zz",
                                      .canonical = "{}",
                                      .hash = id,
                                      .ordering_key = okey,
                                      .now = now};
    assert_int_equal(ewtp_store_accept_wait(st, &r, NULL, NULL), 0);
}

static void test_store_poll(void **state)
{
    (void)state;
    struct ewtp_store *st = open_store();
    accept_one(st, "a", NULL, 1000);
    accept_one(st, "b", NULL, 1001);
    struct ewtp_store_msg *m = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(st, 2000, 10, 60000, "me", &m, &n), 0);
    assert_int_equal(n, 2);
    /* a: submitted, polled; b: submitted, decision arrives inbound (never polled) */
    for (size_t i = 0; i < n; i++) {
        struct ewtp_store_outcome o = {.key = m[i].key,
                                       .attempt = m[i].attempts,
                                       .state = EWTP_STORE_SUBMITTED,
                                       .authority_ref = i == 0 ? "REF-A" : "REF-B",
                                       .now = 2100};
        assert_int_equal(ewtp_store_record_outcome(st, &o), 0);
    }
    uint64_t key_a = m[0].key, key_b = m[1].key;
    ewtp_store_msgs_free(m, n);
    assert_int_equal(ewtp_store_poll_schedule(st, key_b, -1), 0);
    assert_int_equal(ewtp_store_poll_schedule(st, key_a, 5000), 0);
    assert_int_equal(ewtp_store_claim_poll(st, 4999, 10, 9000, &m, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ewtp_store_claim_poll(st, 5000, 10, 9000, &m, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].id, "a");
    assert_string_equal(m[0].authority_ref, "REF-A");
    ewtp_store_msgs_free(m, n);
    /* claimed: moved to 9000, so a second poller does not take it */
    assert_int_equal(ewtp_store_claim_poll(st, 6000, 10, 9000, &m, &n), 0);
    assert_int_equal(n, 0);
    /* once decided, a message is neither polled nor schedulable */
    struct ewtp_store_receipt rc = {.state = EWTP_STORE_APPROVED, .code = "accepted"};
    struct ewtp_store_receipt_rec rr = {
        .key = key_a, .set_state = true, .state = EWTP_STORE_APPROVED, .receipt = &rc, .now = 9500};
    assert_int_equal(ewtp_store_record_receipt(st, &rr), 0);
    assert_int_equal(ewtp_store_claim_poll(st, 20000, 10, 30000, &m, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ewtp_store_poll_schedule(st, key_a, 1), -EWTP_EINVAL);
    /* approved -> cancelled only for a confirmed cancellation */
    struct ewtp_store_receipt cr = {.state = EWTP_STORE_CANCELLED, .code = "cancelled"};
    struct ewtp_store_receipt_rec cx = {.key = key_a,
                                        .set_state = true,
                                        .state = EWTP_STORE_CANCELLED,
                                        .receipt = &cr,
                                        .now = 9600};
    assert_int_equal(ewtp_store_record_receipt(st, &cx), 0);
    struct ewtp_store_msg *g = NULL;
    assert_int_equal(ewtp_store_get(st, "t1", "a", &g), 0);
    assert_int_equal(g->state, EWTP_STORE_APPROVED);
    ewtp_store_msgs_free(g, 1);
    cx.cancel_confirmed = true;
    assert_int_equal(ewtp_store_record_receipt(st, &cx), 0);
    assert_int_equal(ewtp_store_get(st, "t1", "a", &g), 0);
    assert_int_equal(g->state, EWTP_STORE_CANCELLED);
    ewtp_store_msgs_free(g, 1);
    /* the status object shows no next attempt for a submitted message */
    char *json = NULL;
    assert_int_equal(ewtp_api_status_json(st, "t1", "b", &json), 0);
    assert_non_null(strstr(json, "\"next_attempt_at\":null"));
    free(json);
    ewtp_store_close(st);
    unlink(db_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_bounds),       cmocka_unit_test(test_decide),
        cmocka_unit_test(test_retry_after),        cmocka_unit_test(test_verdict_state),
        cmocka_unit_test(test_whsig_known_answer), cmocka_unit_test(test_store_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
