/* Unit tests for sdk/src/errors.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <ewtp/errors.h>

static void test_add_and_query(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    assert_int_equal(ewtp_errors_count(e), 0);
    ewtp_errors_add(e, "/a", "required", "member %s is required", "a");
    ewtp_errors_warn(e, "/b", "rule", "soft %d", 2);
    ewtp_errors_add_sev(e, EWTP_SEV_WARNING, "/c", "format", "x");
    assert_int_equal(ewtp_errors_count(e), 3);
    assert_int_equal(ewtp_errors_blocking(e), 1);
    assert_string_equal(ewtp_errors_at(e, 0)->message, "member a is required");
    assert_string_equal(ewtp_errors_at(e, 1)->message, "soft 2");
    assert_int_equal(ewtp_errors_at(e, 1)->severity, EWTP_SEV_WARNING);
    assert_null(ewtp_errors_at(e, 3));
    assert_true(ewtp_errors_has(e, "/a", "required"));
    assert_true(ewtp_errors_has(e, "/a", NULL));
    assert_false(ewtp_errors_has(e, "/a", "rule"));
    assert_false(ewtp_errors_has(e, "/z", NULL));
    assert_false(ewtp_errors_oom(e));
    ewtp_errors_clear(e);
    assert_int_equal(ewtp_errors_count(e), 0);
    assert_int_equal(ewtp_errors_blocking(e), 0);
    ewtp_errors_free(e);
}

static void test_copies(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    char ptr[16] = "/x", code[16] = "rule";
    ewtp_errors_add(e, ptr, code, "m");
    strcpy(ptr, "/changed");
    strcpy(code, "other");
    assert_string_equal(ewtp_errors_at(e, 0)->pointer, "/x");
    assert_string_equal(ewtp_errors_at(e, 0)->code, "rule");
    ewtp_errors_free(e);
}

static void test_to_json(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    char *j = ewtp_errors_to_json(e);
    assert_string_equal(j, "{\"errors\":[]}");
    free(j);
    ewtp_errors_add(e, "/a", "rule", "...");
    ewtp_errors_warn(e, "/b~1c", "format", "say \"hi\"\\ \n\t\x01 caf\xc3\xa9 bad\xff");
    j = ewtp_errors_to_json(e);
    assert_string_equal(j,
                        "{\"errors\":[{\"pointer\":\"/a\",\"code\":\"rule\",\"message\":\"...\"},"
                        "{\"pointer\":\"/b~1c\",\"code\":\"format\",\"message\":"
                        "\"say \\\"hi\\\"\\\\ \\n\\t\\u0001 caf\xc3\xa9 bad\xef\xbf\xbd\","
                        "\"severity\":\"warning\"}]}");
    free(j);
    ewtp_errors_free(e);
}

static void test_append_prefix(void **state)
{
    (void)state;
    struct ewtp_errors *src = ewtp_errors_new(), *dst = ewtp_errors_new();
    ewtp_errors_add(src, "/x", "format", "bad");
    ewtp_errors_warn(src, "", "rule", "whole");
    ewtp_errors_add(dst, "/first", "required", "r");
    ewtp_errors_append(dst, src, "/ext/cn");
    assert_int_equal(ewtp_errors_count(dst), 3);
    assert_string_equal(ewtp_errors_at(dst, 1)->pointer, "/ext/cn/x");
    assert_string_equal(ewtp_errors_at(dst, 2)->pointer, "/ext/cn");
    assert_int_equal(ewtp_errors_at(dst, 2)->severity, EWTP_SEV_WARNING);
    assert_int_equal(ewtp_errors_blocking(dst), 2);
    ewtp_errors_append(dst, src, NULL);
    assert_string_equal(ewtp_errors_at(dst, 3)->pointer, "/x");
    ewtp_errors_free(src);
    ewtp_errors_free(dst);
}

static void test_pointer_truncation(void **state)
{
    (void)state;
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[0] = '/';
    big[sizeof big - 1] = 0;
    struct ewtp_errors *e = ewtp_errors_new();
    ewtp_errors_add(e, big, "size", "long");
    const char *p = ewtp_errors_at(e, 0)->pointer;
    assert_int_equal(strlen(p), EWTP_POINTER_MAX - 1);
    assert_string_equal(p + strlen(p) - 3, "...");
    ewtp_errors_free(e);
    char buf[EWTP_POINTER_MAX];
    assert_string_equal(ewtp_pointer(buf, "/lines/%zu/%s", (size_t)3, "qty"), "/lines/3/qty");
    assert_int_equal(strlen(ewtp_pointer(buf, "%s", big)), EWTP_POINTER_MAX - 1);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(ewtp_strerror(-EWTP_ENOMEM), "out of memory");
    assert_string_equal(ewtp_strerror(EWTP_ENOMEM), "out of memory");
    assert_string_equal(ewtp_strerror(0), "success");
    assert_non_null(ewtp_strerror(-9999));
    assert_string_not_equal(ewtp_strerror(-EWTP_ERANGE), ewtp_strerror(-EWTP_EFORMAT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_query),
        cmocka_unit_test(test_copies),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_append_prefix),
        cmocka_unit_test(test_pointer_truncation),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
