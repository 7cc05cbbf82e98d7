/* Configuration: the dev config loads with the values it states; broken files are refused
 * with every problem named by file, line and setting; relative paths follow the file. */
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

#include "config.h"

struct fx {
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (test_tmpdir_make(f->dir, sizeof(f->dir), "ewtp-config") != 0)
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

static char *path_in(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* Fails unless some entry of why contains every fragment. */
static void expect_error(const struct ewtp_errors *why, const char *a, const char *b, const char *c)
{
    for (size_t i = 0; i < ewtp_errors_count(why); i++) {
        const char *m = ewtp_errors_at(why, i)->message;
        if (strstr(m, a) && (b == NULL || strstr(m, b)) && (c == NULL || strstr(m, c)))
            return;
    }
    char *json = ewtp_errors_to_json(why);
    fail_msg("no error with \"%s\" \"%s\" \"%s\" in %s", a, b ? b : "", c ? c : "", json);
    free(json);
}

/* Loads text as dir/name.conf: the rc, errors in why, the config in *out when 0. */
static int load_text(const char *dir, const char *text, struct ewtp_config **out,
                     struct ewtp_errors *why)
{
    test_write_file(dir, "t.conf", text);
    char *p = path_in(dir, "t.conf");
    int rc = ewtp_config_load(p, out, why);
    free(p);
    return rc;
}

#define MINIMAL_LISTENER "listeners = ( { address = \"127.0.0.1\"; port = 0; } );\n"

static void test_dev_conf_loads(void **state)
{
    struct fx *f = *state;
    /* A copy laid out like the checkout, so ../var stays in the temp dir; all of conf/, so
     * the dev secrets dev.conf names (dev-token, be-inbound-token ...) come along. */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s/conf' && cp '%s/conf/'* '%s/conf/' && '%s/scripts/dev-keys.sh' '%s'",
             f->dir, EWTP_SOURCE_DIR, f->dir, EWTP_SOURCE_DIR, f->dir);
    assert_int_equal(system(cmd), 0);
    char *p = path_in(f->dir, "conf/dev.conf");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    int rc = ewtp_config_load(p, &c, why);
    if (rc != 0) {
        char *json = ewtp_errors_to_json(why);
        fail_msg("dev.conf refused: %s", json);
        free(json);
    }
    assert_non_null(c);
    assert_string_equal(c->path, p);
    assert_int_equal(c->n_listeners, 1);
    assert_string_equal(c->listeners[0].address, "127.0.0.1");
    assert_int_equal(c->listeners[0].port, 8480);
    assert_false(c->listeners[0].tls);
    assert_false(c->listeners[0].admin);

    assert_int_equal(c->n_tenants, 1);
    const struct ewtp_tenant_conf *t = ewtp_config_tenant(c, "dev");
    assert_non_null(t);
    /* sha256("dev-token"): the token file's newline is not part of the token. */
    assert_string_equal(t->token_sha256,
                        "c91cbbedf8c712e8e2b7517ddeca8fe4fde839ebd8339e0b2001363002b37712");
    assert_non_null(strstr(t->token_file, "/conf/dev-token"));
    assert_int_equal(t->n_destinations, 1);
    assert_string_equal(t->destinations[0], "*");
    assert_int_equal(t->kinds, EWTP_KINDS_ALL);
    assert_null(t->webhook_url);

    char *expect = NULL;
    char *real_dir = realpath(f->dir, NULL);
    assert_non_null(real_dir);
    assert_true(asprintf(&expect, "%s/conf/../var/ewtpd.sqlite", real_dir) > 0);
    assert_string_equal(c->store.backend, "sqlite");
    assert_string_equal(c->store.path, expect);
    free(expect);
    assert_true(asprintf(&expect, "%s/conf/../var/run", real_dir) > 0);
    assert_string_equal(c->state_dir, expect);
    free(expect);
    free(real_dir);
    assert_non_null(c->plugin_dir);

    /* The country instances come and go with the plugins built: zz-test is always first. */
    assert_true(c->n_instances >= 1);
    const struct ewtp_instance_conf *in = ewtp_config_instance(c, "zz-test");
    assert_non_null(in);
    assert_string_equal(in->plugin, "zz");
    assert_int_equal(in->transport, EWTP_TRANSPORT_HTTPS);
    assert_string_equal(in->endpoint, "http://127.0.0.1:8490");
    assert_non_null(strstr(in->file, "/ewtp-zz.so"));
    assert_string_equal(ewtp_settings_string(in->settings, "sign_key", NULL, NULL), "zz-test");
    assert_int_equal(in->auth.kind, EWTP_AUTH_NONE);

    assert_true(c->n_routes >= 1);
    assert_string_equal(c->routes[0].tenant, "*");
    assert_string_equal(c->routes[0].destination, "ZZ");
    assert_int_equal(c->routes[0].kinds, EWTP_KINDS_ALL);
    assert_string_equal(c->routes[0].instance, "zz-test");
    assert_true(c->n_keys >= 1);
    const struct ewtp_key_conf *zz_key = NULL;
    for (size_t i = 0; i < c->n_keys; i++)
        if (strcmp(c->keys[i].name, "zz-test") == 0)
            zz_key = &c->keys[i];
    assert_non_null(zz_key);
    assert_non_null(strstr(zz_key->key_file, "/var/dev-keys/zz-test.key"));
    /* Belgium: the simulator's callbacks authenticate with conf/be-inbound-token. */
    const struct ewtp_instance_conf *be = ewtp_config_instance(c, "be-liege");
    assert_non_null(be);
    assert_string_equal(be->endpoint, "http://127.0.0.1:8492");
    /* sha256("be-inbound-dev-token") */
    assert_string_equal(be->inbound_token_sha256,
                        "e90290def99b6f8462caccd0063aa7b32f7e40bb7346f1678d623dd11918dcea");

    /* Settings dev.conf leaves out keep the documented defaults. */
    assert_int_equal(c->delivery.max_attempts, 5);
    assert_int_equal(c->delivery.max_in_flight, 64);
    assert_int_equal(c->limits.max_body_bytes, 1 << 20);
    assert_int_equal(c->limits.max_connections, 1024);
    assert_true(ewtp_config_line(c, "plugins[0]") > 0);
    ewtp_config_free(c);
    ewtp_errors_free(why);
    free(p);
}

static void test_defaults(void **state)
{
    struct fx *f = *state;
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    assert_int_equal(load_text(f->dir, MINIMAL_LISTENER, &c, why), 0);
    assert_string_equal(c->state_dir, "/run/ewtpd");
    assert_string_equal(c->admin_socket, "/run/ewtpd/ewtpd.sock");
    assert_string_equal(c->store.backend, "sqlite");
    assert_string_equal(c->store.path, "/var/lib/ewtpd/ewtpd.sqlite");
    assert_int_equal(c->delivery.max_attempts, 10);
    assert_int_equal(c->delivery.max_age_ms, 24LL * 3600 * 1000);
    assert_int_equal(c->delivery.base_delay_ms, 1000);
    assert_int_equal(c->delivery.max_delay_ms, 600000);
    assert_int_equal(c->delivery.request_timeout_ms, 30000);
    assert_int_equal(c->delivery.lease_ms, 300000);
    assert_int_equal(c->delivery.poll_interval_ms, 30000);
    assert_int_equal(c->delivery.scan_interval_ms, 200);
    assert_int_equal(c->delivery.workers, 8);
    assert_int_equal(c->delivery.nice, 10);
    assert_int_equal(c->limits.max_header_bytes, 16384);
    assert_int_equal(c->limits.timeout_ms, 30000);
    assert_int_equal(c->limits.header_timeout_ms, 10000);
    assert_int_equal(c->limits.max_pending, 10000);
    assert_int_equal(ewtp_errors_count(why), 0);
    ewtp_config_free(c);
    ewtp_errors_free(why);
}

static void test_many_errors_each_with_file_line(void **state)
{
    struct fx *f = *state;
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    const char *text = "listeners = ( { address = \"127.0.0.1\"; port = 70000; } );\n"  /* 1 */
                       "tenants = (\n"                                                  /* 2 */
                       "  { id = \"a\"; token_file = \"missing.token\"; },\n"           /* 3 */
                       "  { id = \"b\"; tokne_file = \"x\"; }\n"                        /* 4 */
                       ");\n"                                                           /* 5 */
                       "delivery = { workers = \"two\"; nice = 20; };\n"                /* 6 */
                       "routes = ( { destination = \"ZZ\"; instance = \"nope\"; } );\n" /* 7 */
                       "bogus = 1;\n";                                                  /* 8 */
    int rc = load_text(f->dir, text, &c, why);
    assert_int_equal(rc, -EWTP_EINVAL);
    assert_null(c);
    char *p = path_in(f->dir, "t.conf");
    char loc[600];
    snprintf(loc, sizeof(loc), "%s:1: listeners[0].port", p);
    expect_error(why, loc, "70000 is out of range", NULL);
    snprintf(loc, sizeof(loc), "%s:3: tenants[0].token_file", p);
    expect_error(why, loc, "cannot read", "missing.token: No such file or directory");
    snprintf(loc, sizeof(loc), "%s:4: unknown setting tenants[1].tokne_file", p);
    expect_error(why, loc, NULL, NULL);
    /* tenants[1] then has no credentials at all. */
    snprintf(loc, sizeof(loc), "%s:4: tenants[1]", p);
    expect_error(why, loc, "no credentials", NULL);
    snprintf(loc, sizeof(loc), "%s:6: delivery.workers", p);
    expect_error(why, loc, "must be an integer", NULL);
    snprintf(loc, sizeof(loc), "%s:6: delivery.nice", p);
    expect_error(why, loc, "20 is out of range", NULL);
    snprintf(loc, sizeof(loc), "%s:7: routes[0].instance", p);
    expect_error(why, loc, "no plugin instance is named \"nope\"", NULL);
    snprintf(loc, sizeof(loc), "%s:8: unknown setting bogus", p);
    expect_error(why, loc, NULL, NULL);
    assert_true(ewtp_errors_has(why, "/tenants/1/tokne_file", "config"));
    assert_true(ewtp_errors_count(why) >= 7);
    free(p);
    ewtp_errors_free(why);
}

static void test_syntax_error(void **state)
{
    struct fx *f = *state;
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    int rc = load_text(f->dir, MINIMAL_LISTENER "\nstate_dir = ;\nstore = { };\n", &c, why);
    assert_int_equal(rc, -EWTP_EINVAL);
    char *p = path_in(f->dir, "t.conf");
    char loc[600];
    snprintf(loc, sizeof(loc), "%s:3: ", p);
    expect_error(why, loc, "syntax error", NULL);
    free(p);
    ewtp_errors_clear(why);
    assert_int_equal(ewtp_config_load("/nonexistent/ewtpd.conf", &c, why), -EWTP_EIO);
    expect_error(why, "/nonexistent/ewtpd.conf", "No such file", NULL);

    /* An @include of a directory makes libconfig exit() the process (found by fuzzing): it is
     * refused before libconfig sees it, with file and line, and a missing include too. */
    ewtp_errors_clear(why);
    rc = load_text(f->dir, MINIMAL_LISTENER "\n@include \".\"\n", &c, why);
    assert_int_equal(rc, -EWTP_EINVAL);
    p = path_in(f->dir, "t.conf");
    snprintf(loc, sizeof(loc), "%s:3: @include \".\"", p);
    expect_error(why, loc, "not a readable regular file", NULL);
    ewtp_errors_clear(why);
    rc = load_text(f->dir, MINIMAL_LISTENER "\n  @include \"nope.conf\"\n", &c, why);
    assert_int_equal(rc, -EWTP_EINVAL);
    snprintf(loc, sizeof(loc), "%s:3: @include \"nope.conf\"", p);
    expect_error(why, loc, "no such file", NULL);
    /* A good include still works (tenants kept in a file of their own, say). */
    ewtp_errors_clear(why);
    test_write_file(f->dir, "listeners.inc", MINIMAL_LISTENER);
    rc = load_text(f->dir, "@include \"listeners.inc\"\n", &c, why);
    if (rc != 0) {
        char *json = ewtp_errors_to_json(why);
        fail_msg("a good @include was refused: %s", json);
        free(json);
    }
    assert_int_equal(c->n_listeners, 1);
    ewtp_config_free(c);
    free(p);
    ewtp_errors_free(why);
}

static void test_relative_paths_and_tokens(void **state)
{
    struct fx *f = *state;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/etc", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    test_write_file(sub, "a.token", "  secret-a \r\n");
    test_write_file(sub, "in.token", "inbound\n");
    test_write_file(sub, "empty.token", "\n");
    test_write_file(sub, "ewtp-fake.so", "not really");
    test_write_file(sub, "t.conf",
                    MINIMAL_LISTENER
                    "state_dir = \"run\"; dev_mode = true;\n"
                    "store = { path = \"db/x.sqlite\"; };\n"
                    "tenants = ( { id = \"a\"; token_file = \"a.token\"; kinds = \"order\"; "
                    "destinations = [ \"CN\", \"BE\" ]; } );\n"
                    "plugins = ( { name = \"p\"; file = \"ewtp-fake.so\"; endpoint = "
                    "\"https://authority.example/api\"; inbound_token_file = \"in.token\"; "
                    "auth = { kind = \"json_login\"; token_url = \"https://a.example/login\"; "
                    "client_id = \"hub\"; secret_file = \"a.token\"; }; } );\n");
    char *p = path_in(sub, "t.conf");
    char *real = realpath(sub, NULL);
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    int rc = ewtp_config_load(p, &c, why);
    if (rc != 0) {
        char *json = ewtp_errors_to_json(why);
        fail_msg("refused: %s", json);
        free(json);
    }
    char want[512];
    snprintf(want, sizeof(want), "%s/run", real);
    assert_string_equal(c->state_dir, want);
    snprintf(want, sizeof(want), "%s/run/ewtpd.sock", real);
    assert_string_equal(c->admin_socket, want);
    snprintf(want, sizeof(want), "%s/db/x.sqlite", real);
    assert_string_equal(c->store.path, want);
    snprintf(want, sizeof(want), "%s/a.token", real);
    assert_string_equal(c->tenants[0].token_file, want);
    /* sha256("secret-a"): surrounding whitespace is not part of the token. */
    assert_string_equal(c->tenants[0].token_sha256,
                        "8766b9cb08e6040b704f1e3ee1e186efccf2635b1d2634d6525333007e6aeae1");
    assert_int_equal(c->tenants[0].kinds, EWTP_KIND_BIT(EWTP_KIND_ORDER));
    assert_int_equal(c->tenants[0].n_destinations, 2);
    assert_string_equal(c->tenants[0].destinations[1], "BE");
    snprintf(want, sizeof(want), "%s/ewtp-fake.so", real);
    assert_string_equal(c->instances[0].file, want);
    assert_null(c->instances[0].plugin);
    assert_int_equal(c->instances[0].auth.kind, EWTP_AUTH_JSON_LOGIN);
    assert_string_equal(c->instances[0].auth.token_json_pointer, "/token");
    assert_non_null(c->instances[0].inbound_token_sha256);
    assert_int_equal(strlen(c->instances[0].inbound_token_sha256), 64);
    ewtp_config_free(c);

    /* An empty token file is an error, not an empty password. */
    ewtp_errors_clear(why);
    test_write_file(sub, "t2.conf",
                    MINIMAL_LISTENER
                    "tenants = ( { id = \"a\"; token_file = \"empty.token\"; } );\n");
    free(p);
    p = path_in(sub, "t2.conf");
    c = NULL;
    assert_int_equal(ewtp_config_load(p, &c, why), -EWTP_EINVAL);
    expect_error(why, ":2: tenants[0].token_file", "is empty", NULL);
    free(p);
    free(real);
    ewtp_errors_free(why);
}

/* store = { backend = "postgresql"; conninfo_file; pool_size; } (issue 16): the conninfo file
 * is a secret (mode checked), relative to the configuration, and must parse (PQconninfoParse:
 * ewtpd -t needs no server). */
static int load_store_conf(struct fx *f, const char *file, const char *conninfo, mode_t mode,
                           struct ewtp_config **c, char **errors)
{
    test_write_file(f->dir, "ci", conninfo);
    char *ci = path_in(f->dir, "ci");
    chmod(ci, mode);
    free(ci);
    char text[512];
    snprintf(text, sizeof(text),
             MINIMAL_LISTENER "state_dir = \"run\";\n"
                              "store = { backend = \"postgresql\"; conninfo_file = \"%s\";"
                              " pool_size = 3; };\n",
             file);
    test_write_file(f->dir, "pg.conf", text);
    char *p = path_in(f->dir, "pg.conf");
    struct ewtp_errors *why = ewtp_errors_new();
    int rc = ewtp_config_load(p, c, why);
    *errors = ewtp_errors_to_json(why);
    ewtp_errors_free(why);
    free(p);
    return rc;
}

static void test_store_postgresql(void **state)
{
    struct fx *f = *state;
    struct ewtp_config *c = NULL;
    char *errors = NULL;
    assert_int_equal(load_store_conf(f, "ci", "host=db.example dbname=ewtp sslmode=verify-full\n",
                                     0600, &c, &errors),
                     0);
    assert_string_equal(c->store.backend, "postgresql");
    assert_int_equal(c->store.pool_size, 3);
    char *want = path_in(f->dir, "ci");
    char *real = realpath(want, NULL);
    assert_string_equal(c->store.conninfo_file, real);
    free(real);
    free(want);
    ewtp_config_free(c);
    free(errors);

    c = NULL;
    assert_int_not_equal(load_store_conf(f, "ci", "hoost=db.example\n", 0600, &c, &errors), 0);
    assert_non_null(strstr(errors, "not a libpq connection string"));
    free(errors);
    ewtp_config_free(c);
    c = NULL;
    assert_int_not_equal(load_store_conf(f, "ci", "host=db.example\n", 0644, &c, &errors), 0);
    assert_non_null(strstr(errors, "readable by its group or others"));
    free(errors);
    ewtp_config_free(c);
}

static void test_kinds_and_destinations(void **state)
{
    struct fx *f = *state;
    test_write_file(f->dir, "tok", "t\n");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    const char *ok = MINIMAL_LISTENER
        "dev_mode = true; tenants = ( { id = \"x\"; token_file = \"tok\"; kinds = [ \"order\", "
        "\"payment\", "
        "\"declaration\" ]; } );\n"
        "plugins = ( { name = \"i\"; file = \"tok\"; endpoint = \"https://h/\"; } );\n"
        "routes = ( { destination = \"ZZ\"; kinds = [ \"*\" ]; instance = \"i\"; },\n"
        "           { tenant = \"x\"; destination = \"*\"; kinds = ( \"waybill\" ); instance = "
        "\"i\"; } );\n";
    assert_int_equal(load_text(f->dir, ok, &c, why), 0);
    assert_int_equal(c->tenants[0].kinds, EWTP_KIND_BIT(EWTP_KIND_ORDER) |
                                              EWTP_KIND_BIT(EWTP_KIND_PAYMENT) |
                                              EWTP_KIND_BIT(EWTP_KIND_DECLARATION));
    assert_int_equal(c->routes[0].kinds, EWTP_KINDS_ALL);
    assert_int_equal(c->routes[1].kinds, EWTP_KIND_BIT(EWTP_KIND_WAYBILL));
    assert_string_equal(c->routes[1].tenant, "x");
    ewtp_config_free(c);

    const char *bad = MINIMAL_LISTENER
        "tenants = ( { id = \"x\"; token_file = \"tok\"; kinds = [ \"order\", \"parcel\" ];\n"
        "  destinations = [ \"cn\" ]; } );\n"
        "plugins = ( { name = \"i\"; file = \"tok\"; endpoint = \"http://10.0.0.1/\"; } );\n"
        "routes = ( { tenant = \"y\"; destination = \"ZZ\"; kinds = [ ]; instance = \"i\"; } );\n";
    ewtp_errors_clear(why);
    c = NULL;
    assert_int_equal(load_text(f->dir, bad, &c, why), -EWTP_EINVAL);
    expect_error(why, ":2: tenants[0].kinds", "unknown kind \"parcel\"", "order, payment");
    expect_error(why, ":3: tenants[0].destinations", "\"cn\" is not a destination", NULL);
    expect_error(why, ":4: plugins[0].endpoint", "only allowed to a loopback", NULL);
    expect_error(why, ":5: routes[0].tenant", "no tenant has the id \"y\"", NULL);
    expect_error(why, ":5: routes[0].kinds", "is empty", NULL);
    ewtp_errors_free(why);
}

static void test_listener_rules(void **state)
{
    struct fx *f = *state;
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    const char *bad = "listeners = ( { address = \"0.0.0.0\"; port = 8080; },\n"
                      "  { address = \"0.0.0.0\"; port = 8443; tls = true; },\n"
                      "  { address = \"127.0.0.1\"; port = 9000; admin = true; "
                      "cert_file = \"nope.pem\"; key_file = \"nope.key\"; } );\n";
    assert_int_equal(load_text(f->dir, bad, &c, why), -EWTP_EINVAL);
    expect_error(why, ":1: listeners[0].tls", "in clear", NULL);
    expect_error(why, ":2: listeners[1].cert_file", "required when tls = true", NULL);
    expect_error(why, ":3: listeners[2].cert_file", "cannot read", "nope.pem");
    ewtp_errors_clear(why);
    assert_int_equal(load_text(f->dir, "state_dir = \"/x\";\n", &c, why), -EWTP_EINVAL);
    expect_error(why, "listeners", "at least one listener", NULL);
    ewtp_errors_free(why);
}

/* keys[].remote (ewtp-signer): every member read and resolved; one source per key, https only,
 * a certificate and the client key's file required, the timeout in range. */
static void test_remote_key(void **state)
{
    struct fx *f = *state;
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    for (const char *const *n =
             (const char *const[]){"k.crt", "cli.crt", "cli.key", "ca.crt", NULL};
         *n != NULL; n++)
        test_write_file(f->dir, *n, "x\n");
    char *key = path_in(f->dir, "cli.key");
    assert_int_equal(chmod(key, 0600), 0);
    const char *good = MINIMAL_LISTENER
        "keys = ( { name = \"r\"; cert = \"k.crt\";\n"
        "  remote = { url = \"https://127.0.0.1:8790\"; key = \"hsm-rsa\"; client_cert = "
        "\"cli.crt\"; client_key = \"cli.key\"; ca_file = \"ca.crt\"; timeout_ms = 2500; }; } );\n";
    assert_int_equal(load_text(f->dir, good, &c, why), 0);
    const struct ewtp_key_remote_conf *r = c->keys[0].remote;
    assert_non_null(r);
    assert_string_equal(r->url, "https://127.0.0.1:8790");
    assert_string_equal(r->key, "hsm-rsa");
    assert_string_equal(r->client_key, key);
    assert_int_equal(r->timeout_ms, 2500);
    assert_null(c->keys[0].key_file);
    assert_null(c->keys[0].command);
    ewtp_config_free(c);
    c = NULL;
    const char *bad = MINIMAL_LISTENER
        "keys = ( { name = \"a\"; remote = { url = \"http://signer:80\"; key = \"k\"; "
        "client_cert = \"cli.crt\"; client_key = \"cli.key\"; ca_file = \"ca.crt\"; "
        "timeout_ms = 5; }; },\n"
        "  { name = \"b\"; key = \"cli.key\"; cert = \"k.crt\"; remote = { url = \"https://s:1\"; "
        "key = \"k\"; client_cert = \"cli.crt\"; client_key = \"cli.key\"; ca_file = \"ca.crt\"; "
        "}; },\n"
        "  { name = \"c\"; cert = \"k.crt\"; remote = { url = \"https://s:1\"; key = \"k\"; "
        "client_cert = \"cli.crt\"; ca_file = \"ca.crt\"; pin = 1; }; } );\n";
    assert_int_equal(load_text(f->dir, bad, &c, why), -EWTP_EINVAL);
    assert_null(c);
    expect_error(why, ":2: keys[0].remote.url", "https://HOST:PORT", NULL);
    expect_error(why, "keys[0].remote.timeout_ms", "out of range", NULL);
    expect_error(why, "keys[0].cert", "required", NULL);
    expect_error(why, ":3: keys[1]", "set one of key", "remote");
    expect_error(why, "keys[2].remote.client_key", "required", NULL);
    expect_error(why, "keys[2].remote.pin", "unknown setting", NULL);
    free(key);
    ewtp_errors_free(why);
}

/* The production sample documents exactly the settings the loader knows: loading it fails
 * only because its files do not exist here. */
static void test_sample_has_only_known_settings(void **state)
{
    (void)state;
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    int rc = ewtp_config_load(EWTP_SOURCE_DIR "/conf/ewtpd.conf", &c, why);
    assert_null(c);
    assert_int_equal(rc, -EWTP_EINVAL);
    for (size_t i = 0; i < ewtp_errors_count(why); i++) {
        const char *m = ewtp_errors_at(why, i)->message;
        if (strstr(m, "cannot read") == NULL && strstr(m, "cannot use") == NULL)
            fail_msg("conf/ewtpd.conf: unexpected error: %s", m);
        assert_non_null(strstr(m, "conf/ewtpd.conf:"));
    }
    ewtp_errors_free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dev_conf_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_errors_each_with_file_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_paths_and_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds_and_destinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_postgresql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_key, setup, teardown),
        cmocka_unit_test(test_sample_has_only_known_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
