/* Loader: each broken fixture plugin is refused with a sentence that names the file, what
 * was wanted and what to do; the good one loads, creates, and loads side by side from a
 * content-named copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loader.h"

static char *fixture(const char *name)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/tests/fixtures/%s.so", EWTP_BUILD_DIR, name) > 0);
    return path;
}

/* Loads a fixture that must fail and checks that every expected fragment is in the reason. */
static void expect_refusal(const char *name, const char *const *fragments)
{
    char *path = fixture(name);
    struct ewtp_plugin_handle *h = NULL;
    char *why = NULL;
    int rc = ewtp_plugin_load(path, NULL, &h, &why);
    assert_int_not_equal(rc, 0);
    assert_null(h);
    assert_non_null(why);
    assert_non_null(strstr(why, path));
    for (size_t i = 0; fragments[i]; i++) {
        if (strstr(why, fragments[i]) == NULL)
            fail_msg("reason for %s lacks \"%s\": %s", name, fragments[i], why);
    }
    free(why);
    free(path);
}

static void test_missing_descriptor(void **st)
{
    (void)st;
    const char *f[] = {"not an ewtp plugin", "ewtp_plugin_v1", "EWTP_PLUGIN_DESCRIPTOR", NULL};
    expect_refusal("plugin_nodesc", f);
}

static void test_wrong_major(void **st)
{
    (void)st;
    char wanted[32];
    snprintf(wanted, sizeof(wanted), "ABI %d.", EWTP_ABI_MAJOR + 1);
    const char *f[] = {wanted, "rebuild the plugin", NULL};
    expect_refusal("plugin_major", f);
}

static void test_newer_minor(void **st)
{
    (void)st;
    char wanted[32];
    snprintf(wanted, sizeof(wanted), "ABI %d.%d", EWTP_ABI_MAJOR, EWTP_ABI_MINOR + 1);
    const char *f[] = {wanted, "upgrade ewtpd", NULL};
    expect_refusal("plugin_minor", f);
}

static void test_small_descriptor(void **st)
{
    (void)st;
    const char *f[] = {"16 bytes", "EWTP_PLUGIN_DESCRIPTOR", NULL};
    expect_refusal("plugin_small", f);
}

static void test_null_callbacks(void **st)
{
    (void)st;
    const char *f[] = {"translate, interpret", "are NULL", NULL};
    expect_refusal("plugin_nullcb", f);
}

static void test_missing_file(void **st)
{
    (void)st;
    const char *f[] = {"cannot read plugin", NULL};
    expect_refusal("no_such_plugin", f);
}

static void test_create_failure(void **st)
{
    (void)st;
    char *path = fixture("plugin_createfail");
    struct ewtp_plugin_handle *h = NULL;
    char *why = NULL;
    assert_int_equal(ewtp_plugin_load(path, NULL, &h, &why), 0);
    assert_null(why);
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_instance *inst = NULL;
    assert_int_not_equal(ewtp_instance_create(h, "xa-test", NULL, NULL, &inst, errs), 0);
    assert_null(inst);
    assert_true(ewtp_errors_has(errs, "/endpoint", "required"));
    const struct ewtp_error *e = ewtp_errors_at(errs, 0);
    assert_non_null(strstr(e->message, "endpoint is required"));

    /* The same plugin with the setting it wants is created. */
    struct ewtp_settings *s = ewtp_settings_new();
    assert_int_equal(ewtp_settings_set_string(s, "endpoint", "https://127.0.0.1:1/"), 0);
    ewtp_errors_clear(errs);
    assert_int_equal(ewtp_instance_create(h, "xa-test", NULL, s, &inst, errs), 0);
    assert_string_equal(ewtp_instance_name(inst), "xa-test");
    ewtp_plugin_unref(h); /* the instance keeps the handle alive */
    assert_string_equal(ewtp_instance_plugin(inst)->name, "fixture-createfail");
    ewtp_instance_unref(inst);
    ewtp_settings_free(s);
    ewtp_errors_free(errs);
    free(path);
}

static void test_good_plugin_side_by_side(void **st)
{
    (void)st;
    char *path = fixture("plugin_ok");
    char cache[] = "/tmp/ewtp-loader-XXXXXX";
    assert_non_null(mkdtemp(cache));
    struct ewtp_plugin_handle *a = NULL, *b = NULL;
    char *why = NULL;
    assert_int_equal(ewtp_plugin_load(path, cache, &a, &why), 0);
    assert_int_equal(ewtp_plugin_load(path, cache, &b, &why), 0);
    assert_string_equal(ewtp_plugin_descriptor(a)->name, "fixture-ok");
    assert_int_equal(strlen(ewtp_plugin_sha256(a)), 64);
    assert_string_equal(ewtp_plugin_sha256(a), ewtp_plugin_sha256(b));
    /* The copy is content-named: <stem>.<sha256:16>.so in the cache. */
    char copy[512];
    snprintf(copy, sizeof(copy), "%s/plugin_ok.%.16s.so", cache, ewtp_plugin_sha256(a));
    assert_int_equal(access(copy, R_OK), 0);
    struct ewtp_instance *inst = NULL;
    assert_int_equal(ewtp_instance_create(a, NULL, NULL, NULL, &inst, NULL), 0);
    assert_string_equal(ewtp_instance_name(inst), "fixture-ok");
    ewtp_instance_unref(inst);
    ewtp_plugin_unref(a);
    ewtp_plugin_unref(b);
    unlink(copy);
    rmdir(cache);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_descriptor), cmocka_unit_test(test_wrong_major),
        cmocka_unit_test(test_newer_minor),        cmocka_unit_test(test_small_descriptor),
        cmocka_unit_test(test_null_callbacks),     cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_create_failure),     cmocka_unit_test(test_good_plugin_side_by_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
