/* Generations: built from a real configuration with the template plugin (content-named
 * copy, keys, instances), routes and tenant restrictions, token and subject lookups, refusal
 * of a broken plugin or bad settings with file, line and reason, and reference counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include <ewtp/message.h>

#include "gen.h"
#include "loader.h"

struct fx {
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (test_tmpdir_make(f->dir, sizeof(f->dir), "ewtp-gen") != 0)
        return -1;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "'%s/scripts/dev-keys.sh' '%s'", EWTP_SOURCE_DIR, f->dir);
    if (system(cmd) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc = test_tmpdir_remove(f->dir);
    free(f);
    return rc;
}

/* A configuration with two tenants and the template plugin; extra replaces the plugin
 * instance's settings group body, plugin_file its file (NULL: plugin = "zz"). */
static char *write_conf(const struct fx *f, const char *settings, const char *plugin_file,
                        const char *routes)
{
    test_write_file(f->dir, "a.token", "token-a\n");
    test_write_file(f->dir, "b.token", "token-b\n");
    /* Tenant b's own client CA (issue 19): any PEM certificate will do here. */
    char cp[600];
    snprintf(cp, sizeof(cp), "cd '%s' && cp -n var/dev-keys/zz-test.crt b-ca.crt", f->dir);
    assert_int_equal(system(cp), 0);
    char *text = NULL;
    assert_true(asprintf(&text,
                         "plugin_dir = \"%s/plugins\";\n"                            /* 1 */
                         "state_dir = \"run\"; dev_mode = true;\n"                   /* 2 */
                         "listeners = ( { address = \"127.0.0.1\"; port = 0; } );\n" /* 3 */
                         "tenants = (\n"                                             /* 4 */
                         "  { id = \"a\"; token_file = \"a.token\"; destinations = [ \"ZZ\" ];\n"
                         "    kinds = [ \"order\", \"payment\" ]; },\n" /* 6 */
                         "  { id = \"b\"; token_file = \"b.token\"; cert_subject = "
                         "\"CN=b.example,O=B,C=BE\"; cert_ca_file = \"b-ca.crt\";"
                         " destinations = [ \"CN\" ]; }\n" /* 7 */
                         ");\n"                            /* 8 */
                         "keys = ( { name = \"zz-test\"; key = \"var/dev-keys/zz-test.key\"; "
                         "cert = \"var/dev-keys/zz-test.crt\"; } );\n"         /* 9 */
                         "plugins = (\n"                                       /* 10 */
                         "  { name = \"zz-one\"; %s%s%s; settings = { %s };\n" /* 11 */
                         "    endpoint = \"http://127.0.0.1:8490\"; }\n"       /* 12 */
                         ");\n"                                                /* 13 */
                         "routes = ( %s );\n",                                 /* 14 */
                         EWTP_BUILD_DIR, plugin_file ? "file = \"" : "plugin = \"zz",
                         plugin_file ? plugin_file : "", "\"", settings, routes) > 0);
    test_write_file(f->dir, "gen.conf", text);
    free(text);
    char *p = NULL;
    assert_true(asprintf(&p, "%s/gen.conf", f->dir) > 0);
    return p;
}

static void expect_error(const struct ewtp_errors *why, const char *a, const char *b)
{
    for (size_t i = 0; i < ewtp_errors_count(why); i++) {
        const char *m = ewtp_errors_at(why, i)->message;
        if (strstr(m, a) && (b == NULL || strstr(m, b)))
            return;
    }
    char *json = ewtp_errors_to_json(why);
    fail_msg("no error with \"%s\" \"%s\" in %s", a, b ? b : "", json);
    free(json);
}

static struct ewtp_gen *build_ok(const char *path, uint64_t id)
{
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_gen *g = NULL;
    int rc = ewtp_gen_build(path, id, &g, why);
    if (rc != 0) {
        char *json = ewtp_errors_to_json(why);
        fail_msg("generation refused: %s", json);
        free(json);
    }
    ewtp_errors_free(why);
    return g;
}

static void test_build_and_lookups(void **state)
{
    struct fx *f = *state;
    char *path = write_conf(f, "sender_id = \"ZZ-UNIT\"; sign_key = \"zz-test\";", NULL,
                            "{ destination = \"ZZ\"; instance = \"zz-one\"; }");
    struct ewtp_gen *g = build_ok(path, 7);
    assert_int_equal(ewtp_gen_id(g), 7);
    assert_string_equal(ewtp_gen_config(g)->path, path);
    assert_non_null(ewtp_gen_host(g));
    assert_int_equal(ewtp_gen_instance_count(g), 1);
    const struct ewtp_gen_instance *gi = ewtp_gen_instance_at(g, 0);
    assert_non_null(gi);
    assert_ptr_equal(gi, ewtp_gen_instance(g, "zz-one"));
    assert_null(ewtp_gen_instance(g, "zz-two"));
    assert_null(ewtp_gen_instance_at(g, 1));
    assert_string_equal(gi->plugin->name, "zz");
    assert_string_equal(gi->plugin->country, "ZZ");
    assert_string_equal(ewtp_instance_name(gi->inst), "zz-one");
    assert_string_equal(gi->conf->endpoint, "http://127.0.0.1:8490");
    const char *const *dest = ewtp_gen_destinations(g);
    assert_string_equal(dest[0], "ZZ");
    assert_null(dest[1]);

    /* The plugin ran from its content-named copy under <state_dir>/plugins. */
    struct ewtp_plugin_handle *h = ewtp_instance_handle(gi->inst);
    char copy[512];
    snprintf(copy, sizeof(copy), "%s/run/plugins/ewtp-zz.%.16s.so", f->dir, ewtp_plugin_sha256(h));
    struct stat st;
    assert_int_equal(stat(copy, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    /* Routes: first match, within the tenant's destinations and kinds. */
    assert_ptr_equal(ewtp_gen_route(g, "a", "ZZ", EWTP_KIND_ORDER), gi);
    assert_ptr_equal(ewtp_gen_route(g, "a", "ZZ", EWTP_KIND_PAYMENT), gi);
    assert_null(ewtp_gen_route(g, "a", "ZZ", EWTP_KIND_WAYBILL)); /* kind not allowed */
    assert_null(ewtp_gen_route(g, "b", "ZZ", EWTP_KIND_ORDER));   /* destination not allowed */
    assert_null(ewtp_gen_route(g, "a", "CN", EWTP_KIND_ORDER));   /* no route */
    assert_null(ewtp_gen_route(g, "nobody", "ZZ", EWTP_KIND_ORDER));
    assert_null(ewtp_gen_route(g, "a", "ZZ", EWTP_KIND_NONE));

    /* Tokens and subjects. */
    const struct ewtp_tenant_conf *t = ewtp_gen_tenant_by_token(g, "token-a");
    assert_non_null(t);
    assert_string_equal(t->id, "a");
    t = ewtp_gen_tenant_by_token(g, "token-b");
    assert_non_null(t);
    assert_string_equal(t->id, "b");
    assert_null(ewtp_gen_tenant_by_token(g, "token-a\n"));
    assert_null(ewtp_gen_tenant_by_token(g, "token-"));
    assert_null(ewtp_gen_tenant_by_token(g, ""));
    assert_null(ewtp_gen_tenant_by_token(g, NULL));
    t = ewtp_gen_tenant_by_subject(g, "CN=b.example,O=B,C=BE");
    assert_non_null(t);
    assert_string_equal(t->id, "b");
    assert_null(ewtp_gen_tenant_by_subject(g, "CN=b.example"));

    /* A reference taken keeps it alive past the builder's unref. */
    ewtp_gen_ref(g);
    ewtp_gen_unref(g);
    assert_int_equal(ewtp_gen_id(g), 7);
    assert_ptr_equal(ewtp_gen_route(g, "a", "ZZ", EWTP_KIND_ORDER), gi);

    /* A second generation of the same file shares the copy and both live side by side. */
    struct ewtp_gen *g2 = build_ok(path, 8);
    assert_int_equal(ewtp_gen_id(g2), 8);
    assert_string_equal(ewtp_plugin_sha256(ewtp_instance_handle(ewtp_gen_instance_at(g2, 0)->inst)),
                        ewtp_plugin_sha256(h));
    ewtp_gen_unref(g);
    assert_non_null(ewtp_gen_route(g2, "a", "ZZ", EWTP_KIND_ORDER));
    ewtp_gen_unref(g2);
    ewtp_gen_unref(NULL); /* no-op */
    free(path);
}

static void test_star_route_and_tenant_route(void **state)
{
    struct fx *f = *state;
    char *path = write_conf(f, "", NULL,
                            "{ tenant = \"b\"; destination = \"*\"; instance = \"zz-one\"; },\n"
                            "  { tenant = \"a\"; destination = \"*\"; kinds = [ \"payment\" ]; "
                            "instance = \"zz-one\"; }");
    struct ewtp_gen *g = build_ok(path, 1);
    const struct ewtp_gen_instance *gi = ewtp_gen_instance(g, "zz-one");
    assert_ptr_equal(ewtp_gen_route(g, "a", "ZZ", EWTP_KIND_PAYMENT), gi);
    assert_null(ewtp_gen_route(g, "a", "ZZ", EWTP_KIND_ORDER)); /* route's kinds */
    /* b may send to CN, and "*" matches, but the instance does not serve CN. */
    assert_null(ewtp_gen_route(g, "b", "CN", EWTP_KIND_ORDER));
    ewtp_gen_unref(g);
    free(path);
}

static void test_bad_settings_refused(void **state)
{
    struct fx *f = *state;
    char *path =
        write_conf(f, "sender_id = 5;", NULL, "{ destination = \"ZZ\"; instance = \"zz-one\"; }");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_gen *g = (struct ewtp_gen *)1;
    int rc = ewtp_gen_build(path, 2, &g, why);
    assert_int_not_equal(rc, 0);
    assert_null(g);
    char loc[600];
    snprintf(loc, sizeof(loc), "%s:11: plugins[0] (zz-one): settings.sender_id", path);
    expect_error(why, loc, "must be a string");
    assert_true(ewtp_errors_has(why, "/plugins/0/settings/sender_id", NULL));
    ewtp_errors_free(why);
    free(path);
}

static void test_broken_plugin_refused(void **state)
{
    struct fx *f = *state;
    test_write_file(f->dir, "ewtp-broken.so", "this is not an ELF file\n");
    char *path =
        write_conf(f, "", "ewtp-broken.so", "{ destination = \"ZZ\"; instance = \"zz-one\"; }");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_gen *g = NULL;
    assert_int_not_equal(ewtp_gen_build(path, 3, &g, why), 0);
    assert_null(g);
    char loc[600];
    snprintf(loc, sizeof(loc), "%s:11: plugins[0] (zz-one): ", path);
    expect_error(why, loc, "cannot load plugin");
    ewtp_errors_free(why);
    free(path);

    /* A file that is not there is found while reading the configuration. */
    path = write_conf(f, "", "/nonexistent/ewtp-zz.so",
                      "{ destination = \"ZZ\"; instance = \"zz-one\"; }");
    why = ewtp_errors_new();
    assert_int_equal(ewtp_gen_build(path, 4, &g, why), -EWTP_EINVAL);
    snprintf(loc, sizeof(loc), "%s:11: plugins[0].file", path);
    expect_error(why, loc, "No such file");
    ewtp_errors_free(why);
    free(path);
}

static void test_route_to_wrong_destination_refused(void **state)
{
    struct fx *f = *state;
    char *path = write_conf(f, "", NULL, "{ destination = \"CN\"; instance = \"zz-one\"; }");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_gen *g = NULL;
    assert_int_equal(ewtp_gen_build(path, 5, &g, why), -EWTP_EINVAL);
    char loc[600];
    snprintf(loc, sizeof(loc), "%s:14: routes[0]", path);
    expect_error(why, loc, "serves destination ZZ, not CN");
    ewtp_errors_free(why);
    free(path);
}

static void test_bad_key_refused(void **state)
{
    struct fx *f = *state;
    char *path = write_conf(f, "", NULL, "{ destination = \"ZZ\"; instance = \"zz-one\"; }");
    /* A certificate that is not PEM: the key store refuses it, the line is the key's. */
    test_write_file(f->dir, "var/dev-keys/zz-test.crt", "garbage\n");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_gen *g = NULL;
    assert_int_not_equal(ewtp_gen_build(path, 6, &g, why), 0);
    assert_null(g);
    char loc[600];
    snprintf(loc, sizeof(loc), "%s:9: keys[0] (zz-test): ", path);
    expect_error(why, loc, NULL);
    ewtp_errors_free(why);
    free(path);
}

static void test_state_dir_unusable(void **state)
{
    struct fx *f = *state;
    char *path = write_conf(f, "", NULL, "{ destination = \"ZZ\"; instance = \"zz-one\"; }");
    test_write_file(f->dir, "run", "a file where the state directory should be\n");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_gen *g = NULL;
    assert_int_equal(ewtp_gen_build(path, 9, &g, why), -EWTP_EIO);
    char loc[600];
    snprintf(loc, sizeof(loc), "%s:2: state_dir: cannot create", path);
    expect_error(why, loc, "/run/plugins");
    ewtp_errors_free(why);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_and_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_star_route_and_tenant_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_settings_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_plugin_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_to_wrong_destination_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_dir_unusable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
