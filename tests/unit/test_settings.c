/* Unit tests for sdk/src/settings.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <ewtp/settings.h>

static void test_build_and_read(void **state)
{
    (void)state;
    struct ewtp_settings *s = ewtp_settings_new();
    assert_int_equal(ewtp_settings_set_string(s, "dxp.sender_id", "ABC"), 0);
    assert_int_equal(ewtp_settings_set_int(s, "dxp.timeout_ms", 1500), 0);
    assert_int_equal(ewtp_settings_set_bool(s, "sandbox", true), 0);
    assert_int_equal(ewtp_settings_list_append_string(s, "dxp.ports", "CNSHA"), 0);
    assert_int_equal(ewtp_settings_list_append_string(s, "dxp.ports", "CNNGB"), 0);
    bool ok = false;
    assert_string_equal(ewtp_settings_string(s, "dxp.sender_id", "def", &ok), "ABC");
    assert_true(ok);
    assert_int_equal(ewtp_settings_int(s, "dxp.timeout_ms", 0, &ok), 1500);
    assert_true(ok);
    assert_true(ewtp_settings_bool(s, "sandbox", false, &ok));
    /* Absent: default and ok. */
    assert_string_equal(ewtp_settings_string(s, "dxp.nope", "def", &ok), "def");
    assert_true(ok);
    assert_int_equal(ewtp_settings_int(s, "a.b.c", -3, &ok), -3);
    assert_true(ok);
    /* Present with another type: default and not ok. */
    assert_string_equal(ewtp_settings_string(s, "dxp.timeout_ms", "def", &ok), "def");
    assert_false(ok);
    assert_int_equal(ewtp_settings_int(s, "dxp.sender_id", 7, &ok), 7);
    assert_false(ok);
    assert_false(ewtp_settings_bool(s, "dxp", false, &ok));
    assert_false(ok);
    assert_int_equal(ewtp_settings_type(s, "dxp"), EWTP_SET_GROUP);
    assert_int_equal(ewtp_settings_type(s, "dxp.ports"), EWTP_SET_LIST);
    assert_int_equal(ewtp_settings_type(s, "dxp.sender_id.x"), EWTP_SET_NONE);
    assert_int_equal(ewtp_settings_type(s, "missing"), EWTP_SET_NONE);
    const struct ewtp_settings *dxp = ewtp_settings_child(s, "dxp");
    assert_non_null(dxp);
    assert_int_equal(ewtp_settings_count(dxp), 3);
    const char *name = NULL;
    assert_non_null(ewtp_settings_index(dxp, 0, &name));
    assert_string_equal(name, "sender_id");
    assert_null(ewtp_settings_index(dxp, 3, &name));
    const struct ewtp_settings *ports = ewtp_settings_child(s, "dxp.ports");
    assert_int_equal(ewtp_settings_count(ports), 2);
    assert_string_equal(ewtp_settings_value_string(ewtp_settings_index(ports, 1, &name)), "CNNGB");
    assert_null(name);
    /* Overwrite a scalar; paths through a scalar and bad paths fail. */
    assert_int_equal(ewtp_settings_set_string(s, "dxp.timeout_ms", "x"), 0);
    assert_string_equal(ewtp_settings_string(s, "dxp.timeout_ms", NULL, NULL), "x");
    assert_int_equal(ewtp_settings_set_int(s, "sandbox.x", 1), -EWTP_EINVAL);
    assert_int_equal(ewtp_settings_set_int(s, "a..b", 1), -EWTP_EINVAL);
    assert_int_equal(ewtp_settings_set_int(s, "", 1), -EWTP_EINVAL);
    assert_int_equal(ewtp_settings_list_append_string(s, "sandbox", "x"), -EWTP_EINVAL);
    ewtp_settings_free(s);
}

static void test_null_tree(void **state)
{
    (void)state;
    bool ok = false;
    assert_string_equal(ewtp_settings_string(NULL, "a", "d", &ok), "d");
    assert_true(ok);
    assert_int_equal(ewtp_settings_int(NULL, "a", 5, NULL), 5);
    assert_int_equal(ewtp_settings_type(NULL, "a"), EWTP_SET_NONE);
    assert_int_equal(ewtp_settings_count(NULL), 0);
    assert_null(ewtp_settings_child(NULL, "a"));
    assert_int_equal(ewtp_settings_check_known(NULL, "", NULL, NULL), 0);
    ewtp_settings_free(NULL);
}

static void test_check_known(void **state)
{
    (void)state;
    struct ewtp_settings *s = ewtp_settings_new();
    ewtp_settings_set_string(s, "url", "u");
    ewtp_settings_set_string(s, "urll", "typo");
    ewtp_settings_set_string(s, "dxp.sender_id", "A");
    ewtp_settings_set_string(s, "dxp.a/b", "B");
    struct ewtp_errors *e = ewtp_errors_new();
    const char *const top[] = {"url", "dxp", NULL};
    assert_int_equal(ewtp_settings_check_known(s, "", top, e), 1);
    assert_true(ewtp_errors_has(e, "/urll", "unknown_member"));
    const char *const inner[] = {"sender_id", NULL};
    assert_int_equal(ewtp_settings_check_known(s, "dxp", inner, e), 1);
    assert_true(ewtp_errors_has(e, "/dxp/a~1b", "unknown_member"));
    assert_non_null(strstr(ewtp_errors_at(e, 1)->message, "dxp.a/b"));
    assert_int_equal(ewtp_errors_count(e), 2);
    ewtp_errors_free(e);
    ewtp_settings_free(s);
}

static void test_from_json(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    const char *js = "{\"url\":\"https://x\",\"n\":-42,\"on\":false,\"g\":{\"h\":{\"i\":\"deep\"}},"
                     "\"l\":[\"a\",2,true],\"empty\":{}}";
    struct ewtp_settings *s = ewtp_settings_from_json(js, strlen(js), e);
    assert_non_null(s);
    assert_int_equal(ewtp_errors_count(e), 0);
    assert_string_equal(ewtp_settings_string(s, "url", NULL, NULL), "https://x");
    assert_int_equal(ewtp_settings_int(s, "n", 0, NULL), -42);
    bool ok;
    assert_false(ewtp_settings_bool(s, "on", true, &ok));
    assert_true(ok);
    assert_string_equal(ewtp_settings_string(s, "g.h.i", NULL, NULL), "deep");
    const struct ewtp_settings *l = ewtp_settings_child(s, "l");
    assert_int_equal(ewtp_settings_count(l), 3);
    assert_string_equal(ewtp_settings_value_string(ewtp_settings_index(l, 1, NULL)), "2");
    assert_string_equal(ewtp_settings_value_string(ewtp_settings_index(l, 2, NULL)), "true");
    assert_int_equal(ewtp_settings_type(s, "empty"), EWTP_SET_GROUP);
    const char *name;
    ewtp_settings_index(s, 5, &name);
    assert_string_equal(name, "empty");
    ewtp_settings_free(s);

    const char *bad = "{\"a\":1.5,\"b\":{\"c\":null},\"l\":[1,2.0]}";
    assert_null(ewtp_settings_from_json(bad, strlen(bad), e));
    assert_int_equal(ewtp_errors_count(e), 3);
    assert_true(ewtp_errors_has(e, "/a", "type"));
    assert_true(ewtp_errors_has(e, "/b/c", "type"));
    assert_true(ewtp_errors_has(e, "/l/1", "type"));
    ewtp_errors_clear(e);
    assert_null(ewtp_settings_from_json("[1]", 3, e));
    assert_true(ewtp_errors_has(e, "", "type"));
    ewtp_errors_clear(e);
    assert_null(ewtp_settings_from_json("{\"a\":1,\"a\":2}", 13, e));
    assert_true(ewtp_errors_has(e, "", "format"));
    ewtp_errors_clear(e);
    assert_null(ewtp_settings_from_json("{", 1, e));
    assert_true(ewtp_errors_has(e, "", "format"));
    ewtp_errors_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_read),
        cmocka_unit_test(test_null_tree),
        cmocka_unit_test(test_check_known),
        cmocka_unit_test(test_from_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
