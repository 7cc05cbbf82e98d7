/* The template plugin's interpret and receive against every answer shape the ZZ simulator
 * (plugins/template/zz_sim.c, ewtp-sim's SIM-* faults) produces: the two sides of the ZZ
 * protocol must agree. Loads build/plugins/ewtp-zz.so as the daemon does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loader.h"

struct fixture {
    struct ewtp_plugin_handle *h;
    struct ewtp_instance *inst;
    struct ewtp_arena *arena;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    char *why = NULL;
    int rc = ewtp_plugin_load(EWTP_BUILD_DIR "/plugins/ewtp-zz.so", NULL, &f->h, &why);
    if (rc != 0)
        fail_msg("cannot load ewtp-zz.so: %s", why ? why : "?");
    struct ewtp_errors *errs = ewtp_errors_new();
    assert_int_equal(ewtp_instance_create(f->h, "zz", NULL, NULL, &f->inst, errs), 0);
    ewtp_errors_free(errs);
    f->arena = ewtp_arena_new();
    assert_non_null(f->arena);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ewtp_instance_unref(f->inst);
    ewtp_plugin_unref(f->h);
    ewtp_arena_free(f->arena);
    free(f);
    return 0;
}

/* interpret() of one answer; retry_after NULL sends no Retry-After header. */
static struct ewtp_outcome answer(struct fixture *f, enum ewtp_op op, int status,
                                  const char *retry_after, const char *body)
{
    struct ewtp_header hdr[2] = {
        EWTP_HEADER_INIT(.name = "Content-Type", .value = "application/json"),
        EWTP_HEADER_INIT(.name = "Retry-After", .value = retry_after)};
    const struct ewtp_header *const hp[2] = {&hdr[0], &hdr[1]};
    struct ewtp_response r = {.size = sizeof(r),
                              .status = status,
                              .headers = hp,
                              .n_headers = retry_after ? 2 : 1,
                              .body = body,
                              .body_len = body ? strlen(body) : 0};
    struct ewtp_call c = {.size = sizeof(c),
                          .tenant = "t1",
                          .op = op,
                          .attempt = 1,
                          .arena = f->arena,
                          .authority_ref = op == EWTP_OP_CANCEL ? "ZZ-1" : NULL};
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    const struct ewtp_plugin *p = ewtp_instance_plugin(f->inst);
    assert_int_equal(p->interpret(ewtp_instance_state(f->inst), &c, &r, &o), 0);
    return o;
}

static void test_received(void **state)
{
    struct ewtp_outcome o = answer(*state, EWTP_OP_SUBMIT, 202, NULL,
                                   "{\"reference\":\"ZZ-1\",\"status\":\"received\"}");
    assert_int_equal(o.verdict, EWTP_V_SUBMITTED);
    assert_true(o.poll);
    assert_string_equal(o.authority_ref, "ZZ-1");
}

static void test_accepted(void **state)
{
    struct ewtp_outcome o =
        answer(*state, EWTP_OP_SUBMIT, 200, NULL,
               "{\"reference\":\"ZZ-1\",\"status\":\"accepted\",\"errors\":[]}");
    assert_int_equal(o.verdict, EWTP_V_APPROVED);
    assert_string_equal(o.authority_ref, "ZZ-1");
}

static void test_rejected(void **state)
{
    struct ewtp_outcome o =
        answer(*state, EWTP_OP_SUBMIT, 200, NULL,
               "{\"reference\":\"ZZ-2\",\"status\":\"rejected\",\"errors\":[{\"code\":\"ZZ-150\","
               "\"message\":\"the declared invoice value exceeds the limit for this procedure\","
               "\"path\":\"/declaration/invoice_value\"}]}");
    assert_int_equal(o.verdict, EWTP_V_REJECTED);
    assert_string_equal(o.code, "ZZ-150");
    assert_string_equal(o.pointer, "/declaration/invoice_value");
    assert_non_null(o.message);
}

static void test_duplicate(void **state)
{
    struct ewtp_outcome o =
        answer(*state, EWTP_OP_SUBMIT, 409, NULL,
               "{\"reference\":\"ZZ-1\",\"status\":\"received\",\"errors\":[{\"code\":\"ZZ-409\","
               "\"message\":\"duplicate X-Request-Id: already received\"}]}");
    assert_int_equal(o.verdict, EWTP_V_SUBMITTED);
    assert_true(o.poll);
    assert_string_equal(o.authority_ref, "ZZ-1");
}

static void test_invalid_document(void **state)
{
    struct ewtp_outcome o =
        answer(*state, EWTP_OP_SUBMIT, 400, NULL,
               "{\"errors\":[{\"code\":\"ZZ-101\",\"message\":\"line 12: Element "
               "'{urn:ewtp:template:zz:1}OrderedAt': This element is not expected.\"}]}");
    assert_int_equal(o.verdict, EWTP_V_REJECTED);
    assert_string_equal(o.code, "ZZ-101");
    assert_null(o.pointer);
}

static void test_unavailable_retry_after(void **state)
{
    struct ewtp_outcome o =
        answer(*state, EWTP_OP_SUBMIT, 503, "7",
               "{\"errors\":[{\"code\":\"SIM-503\",\"message\":\"forced by the simulator\"}]}");
    assert_int_equal(o.verdict, EWTP_V_RETRY);
    assert_int_equal(o.retry_after_ms, 7000);
    o = answer(*state, EWTP_OP_SUBMIT, 429, "1",
               "{\"errors\":[{\"code\":\"SIM-429\",\"message\":\"rate limit exceeded\"}]}");
    assert_int_equal(o.verdict, EWTP_V_RETRY);
    assert_int_equal(o.retry_after_ms, 1000);
    o = answer(*state, EWTP_OP_SUBMIT, 401, NULL,
               "{\"errors\":[{\"code\":\"ZZ-401\",\"message\":\"a bearer token is required\"}]}");
    assert_int_equal(o.verdict, EWTP_V_RETRY);
}

static void test_malformed(void **state)
{
    struct ewtp_outcome o = answer(*state, EWTP_OP_SUBMIT, 202, NULL, "<html>oops</html>");
    assert_int_equal(o.verdict, EWTP_V_RETRY);
    o = answer(*state, EWTP_OP_SUBMIT, 400, NULL, "not json");
    assert_int_equal(o.verdict, EWTP_V_REJECTED);
    o = answer(*state, EWTP_OP_SUBMIT, 200, NULL, "{\"reference\":\"ZZ-1\",\"status\":\"odd\"}");
    assert_int_equal(o.verdict, EWTP_V_RETRY);
    o = answer(*state, EWTP_OP_SUBMIT, 202, NULL, "{\"status\":\"received\"}");
    assert_int_equal(o.verdict, EWTP_V_RETRY);
}

static void test_transport_error(void **state)
{
    struct fixture *f = *state;
    struct ewtp_response r = {
        .size = sizeof(r), .status = 0, .transport_error = "connection refused"};
    struct ewtp_call c = {.size = sizeof(c), .op = EWTP_OP_SUBMIT, .arena = f->arena};
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    const struct ewtp_plugin *p = ewtp_instance_plugin(f->inst);
    assert_int_equal(p->interpret(ewtp_instance_state(f->inst), &c, &r, &o), 0);
    assert_int_equal(o.verdict, EWTP_V_RETRY);
}

static void test_cancel(void **state)
{
    struct ewtp_outcome o = answer(*state, EWTP_OP_CANCEL, 200, NULL,
                                   "{\"reference\":\"ZZ-1\",\"status\":\"cancelled\"}");
    assert_int_equal(o.verdict, EWTP_V_CANCELLED);
    /* A refused cancellation is a rejection of the cancel (the message stays as it was)... */
    o = answer(*state, EWTP_OP_CANCEL, 409, NULL,
               "{\"reference\":\"ZZ-1\",\"status\":\"rejected\",\"errors\":[{\"code\":\"ZZ-409\","
               "\"message\":\"already rejected\"}]}");
    assert_int_equal(o.verdict, EWTP_V_REJECTED);
    assert_string_equal(o.code, "ZZ-409");
    assert_string_equal(o.authority_ref, "ZZ-1");
    /* ...and a resent one that finds it cancelled is the confirmation. */
    o = answer(*state, EWTP_OP_CANCEL, 409, NULL,
               "{\"reference\":\"ZZ-1\",\"status\":\"cancelled\",\"errors\":[{\"code\":\"ZZ-409\","
               "\"message\":\"already cancelled\"}]}");
    assert_int_equal(o.verdict, EWTP_V_CANCELLED);
}

/* The receipt the simulator POSTs to /v1/inbound/zz and writes into spool_in. */
static void test_receive(void **state)
{
    struct fixture *f = *state;
    const struct ewtp_plugin *p = ewtp_instance_plugin(f->inst);
    assert_non_null(p->receive);
    const char *body = "{\"reference\":\"ZZ-2\",\"status\":\"rejected\",\"code\":\"ZZ-150\","
                       "\"message\":\"the declared invoice value exceeds the limit\"}";
    struct ewtp_inbound in = {.size = sizeof(in),
                              .source = "http",
                              .name = "/v1/inbound/zz",
                              .body = body,
                              .body_len = strlen(body),
                              .arena = f->arena};
    struct ewtp_correlation to = EWTP_CORRELATION_INIT();
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    assert_int_equal(p->receive(ewtp_instance_state(f->inst), &in, &to, &o), 0);
    assert_string_equal(to.authority_ref, "ZZ-2");
    assert_int_equal(o.verdict, EWTP_V_REJECTED);
    assert_string_equal(o.code, "ZZ-150");
    body = "{\"reference\":\"ZZ-3\",\"status\":\"accepted\",\"code\":\"ZZ-000\",\"message\":"
           "\"accepted\"}";
    in.source = "spool";
    in.name = "ZZ-3-accepted.json";
    in.body = body;
    in.body_len = strlen(body);
    assert_int_equal(p->receive(ewtp_instance_state(f->inst), &in, &to, &o), 0);
    assert_string_equal(to.authority_ref, "ZZ-3");
    assert_int_equal(o.verdict, EWTP_V_APPROVED);
    in.body = "{\"hello\":1}";
    in.body_len = strlen(in.body);
    assert_int_equal(p->receive(ewtp_instance_state(f->inst), &in, &to, &o), -EWTP_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_received),         cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_rejected),         cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_invalid_document), cmocka_unit_test(test_unavailable_retry_after),
        cmocka_unit_test(test_malformed),        cmocka_unit_test(test_transport_error),
        cmocka_unit_test(test_cancel),           cmocka_unit_test(test_receive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
