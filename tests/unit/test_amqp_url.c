/* Unit tests for daemon/amqp_url.c (AMQP URIs, credentials files) and the "amqp" transport
 * settings of daemon/config.c. The broker side is tested by tests/integration/amqp_cn.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/errors.h>

#include "amqp_transport.h"
#include "config.h"

static void test_url_ok(void **state)
{
    (void)state;
    struct ewtp_amqp_url u;
    const char *why = NULL;
    assert_int_equal(ewtp_amqp_url_parse("amqp://127.0.0.1:5673/%2f", &u, &why), 0);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 5673);
    assert_string_equal(u.vhost, "/");
    assert_null(u.user);
    ewtp_amqp_url_clear(&u);

    assert_int_equal(ewtp_amqp_url_parse("amqps://hub%40x@mq.example.cn/ceb", &u, &why), 0);
    assert_true(u.tls);
    assert_int_equal(u.port, 5671);
    assert_string_equal(u.user, "hub@x");
    assert_string_equal(u.host, "mq.example.cn");
    assert_string_equal(u.vhost, "ceb");
    ewtp_amqp_url_clear(&u);

    assert_int_equal(ewtp_amqp_url_parse("AMQP://[::1]:15672", &u, &why), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 15672);
    assert_string_equal(u.vhost, "/");
    ewtp_amqp_url_clear(&u);

    assert_int_equal(ewtp_amqp_url_parse("amqp://localhost/", &u, &why), 0);
    assert_int_equal(u.port, 5672);
    assert_string_equal(u.vhost, "/");
    ewtp_amqp_url_clear(&u);
}

static void test_url_bad(void **state)
{
    (void)state;
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"http://127.0.0.1/", "amqp://"},
        {"amqp://u:p@127.0.0.1/", "password"},
        {"amqp://127.0.0.1:0/", "port"},
        {"amqp://127.0.0.1:70000/", "port"},
        {"amqp://127.0.0.1:/", "port"},
        {"amqp://127.0.0.1:5x/", "port"},
        {"amqp:///vh", "host"},
        {"amqp://[::1/", "'['"},
        {"amqp://h/a/b", "one path segment"},
        {"amqp://h/%zz", "percent"},
        {"amqp://h/%00", "percent"},
        {"amqp://h/?heartbeat=5", "query"},
        {NULL, "URL"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ewtp_amqp_url u;
        const char *why = NULL;
        assert_int_equal(ewtp_amqp_url_parse(bad[i].url, &u, &why), -EWTP_EINVAL);
        assert_non_null(why);
        if (strstr(why, bad[i].why) == NULL)
            fail_msg("%s: \"%s\" does not say %s", bad[i].url ? bad[i].url : "(null)", why,
                     bad[i].why);
        assert_null(u.host);
    }
}

static void test_credentials(void **state)
{
    (void)state;
    char *user = NULL, *pw = NULL;
    const char *why = NULL;
    const char *good = "hub:pa:ss word\n";
    assert_int_equal(ewtp_amqp_credentials_parse(good, strlen(good), &user, &pw, &why), 0);
    assert_string_equal(user, "hub");
    assert_string_equal(pw, "pa:ss word");
    free(user);
    free(pw);
    static const char *const bad[] = {"", "\n\n", "nocolon\n", ":pw\n", "a:b\nc:d\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(ewtp_amqp_credentials_parse(bad[i], strlen(bad[i]), &user, &pw, &why),
                         -EWTP_EINVAL);
        assert_non_null(why);
        assert_null(user);
        assert_null(pw);
    }
}

/* ---- config ------------------------------------------------------------------------------- */

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ewtp-amqp-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, 0600);
}

static int load(const char *plugin, struct ewtp_config **c, struct ewtp_errors *why)
{
    char *text = NULL;
    assert_true(asprintf(&text,
                         "listeners = ( { address = \"127.0.0.1\"; port = 0; } );\n"
                         "plugins = ( { name = \"cn-mq\"; file = \"creds\";\n%s\n} );\n",
                         plugin) > 0);
    write_file("t.conf", text);
    free(text);
    char path[256];
    snprintf(path, sizeof(path), "%s/t.conf", dir);
    return ewtp_config_load(path, c, why);
}

static void expect(const struct ewtp_errors *why, const char *a, const char *b)
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

static void test_config(void **state)
{
    (void)state;
    write_file("creds", "hub:secret\n");
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_config *c = NULL;
    assert_int_equal(load("transport = \"amqp\";\n"
                          "amqp = { url = \"amqp://127.0.0.1:5672/%2f\"; credentials_file = "
                          "\"creds\";\n"
                          "  exchange = \"ceb\"; routing_key = \"import\"; receipt_queue = "
                          "\"receipts\"; heartbeat_s = 15; };",
                          &c, why),
                     0);
    const struct ewtp_instance_conf *in = &c->instances[0];
    assert_int_equal(in->transport, EWTP_TRANSPORT_AMQP);
    assert_string_equal(in->amqp.url, "amqp://127.0.0.1:5672/%2f");
    assert_non_null(strstr(in->amqp.credentials_file, "/creds"));
    assert_string_equal(in->amqp.exchange, "ceb");
    assert_string_equal(in->amqp.routing_key, "import");
    assert_string_equal(in->amqp.receipt_queue, "receipts");
    assert_string_equal(in->amqp.content_type, "application/xml");
    assert_int_equal(in->amqp.heartbeat_s, 15);
    assert_int_equal(in->amqp.connect_timeout_ms, 10000);
    ewtp_config_free(c);
    c = NULL;
    ewtp_errors_free(why);

    /* Every problem at once, each with file:line and the setting. */
    why = ewtp_errors_new();
    assert_int_not_equal(load("transport = \"amqp\";\n"
                              "amqp = { url = \"amqp://mq.example.cn/\"; credentials_file = "
                              "\"missing\";\n  heartbeat_s = -1; colour = \"red\"; };",
                              &c, why),
                         0);
    assert_null(c);
    expect(why, "t.conf:4: plugins[0].amqp.url", "use amqps://");
    expect(why, "plugins[0].amqp.credentials_file", "missing");
    expect(why, "plugins[0].amqp.routing_key", "required");
    expect(why, "plugins[0].amqp.heartbeat_s", "out of range");
    expect(why, "plugins[0].amqp.colour", NULL);
    ewtp_errors_free(why);

    why = ewtp_errors_new();
    assert_int_not_equal(load("transport = \"amqp\";", &c, why), 0);
    expect(why, "plugins[0].amqp", "required with transport \"amqp\"");
    ewtp_errors_free(why);

    why = ewtp_errors_new();
    assert_int_not_equal(load("transport = \"amqp\"; amqp = { url = \"amqp://u:p@localhost/\"; "
                              "exchange = \"x\"; };",
                              &c, why),
                         0);
    expect(why, "plugins[0].amqp.url", "credentials_file");
    ewtp_errors_free(why);

    why = ewtp_errors_new();
    assert_int_not_equal(load("transport = \"carrier-pigeon\";", &c, why), 0);
    expect(why, "plugins[0].transport", "\"amqp\"");
    ewtp_errors_free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_ok),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
