/* Round-trips the IDMS-H7 notifications and Peppol MLS receipts of tests/answers/ through the
 * built plugin's receive(), and synthetic EONGW / access point answers through interpret():
 * each must map to the right verdict, code, reference and pointer, and nothing may crash
 * (malformed and truncated answers included). Usage: test_be_answers PLUGIN.so SOURCE_DIR */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/plugin.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[*len] = '\0';
    return buf;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

struct want {
    const char *file;
    enum ewtp_verdict verdict;
    const char *code, *message_id, *corr_ref, *outcome_ref, *pointer;
};

static void check_receive(const struct ewtp_plugin *p, void *st, const char *dir,
                          const struct want *w)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/plugins/be/tests/answers/%s", dir, w->file);
    size_t len = 0;
    char *body = slurp(path, &len);
    CHECK(body != NULL, "cannot read %s", path);
    if (body == NULL)
        return;
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_inbound in = {.size = sizeof(in),
                              .source = "http",
                              .name = "/v1/inbound/be",
                              .body = body,
                              .body_len = len,
                              .arena = a};
    struct ewtp_correlation to = EWTP_CORRELATION_INIT();
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    int rc = p->receive(st, &in, &to, &o);
    CHECK(rc == 0, "%s: receive rc %d", w->file, rc);
    if (rc == 0) {
        CHECK(o.verdict == w->verdict, "%s: verdict %s", w->file, ewtp_verdict_name(o.verdict));
        CHECK(streq(o.code, w->code), "%s: code %s", w->file, o.code ? o.code : "(null)");
        CHECK(w->message_id ? streq(to.message_id, w->message_id) : to.message_id == NULL,
              "%s: message_id %s", w->file, to.message_id ? to.message_id : "(null)");
        CHECK(w->corr_ref ? streq(to.authority_ref, w->corr_ref) : to.authority_ref == NULL,
              "%s: correlation ref %s", w->file, to.authority_ref ? to.authority_ref : "(null)");
        CHECK(w->outcome_ref ? streq(o.authority_ref, w->outcome_ref) : o.authority_ref == NULL,
              "%s: outcome ref %s", w->file, o.authority_ref ? o.authority_ref : "(null)");
        CHECK(w->pointer ? streq(o.pointer, w->pointer) : o.pointer == NULL, "%s: pointer %s",
              w->file, o.pointer ? o.pointer : "(null)");
        if (streq(w->code, "IE451/CTRL"))
            CHECK(o.message && strstr(o.message, "physical control"), "%s: message %s", w->file,
                  o.message ? o.message : "(null)");
    }
    /* Every truncation of a valid answer is refused or read, never a crash. */
    for (size_t cut = 0; cut < len; cut += 7) {
        struct ewtp_inbound t = in;
        t.body_len = cut;
        p->receive(st, &t, &to, &o);
    }
    ewtp_arena_free(a);
    free(body);
}

static struct ewtp_message *load_msg(const char *dir, const char *vector)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/plugins/be/vectors/%s/input.json", dir, vector);
    size_t len = 0;
    char *data = slurp(path, &len);
    struct ewtp_message *m = NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    const char *const extra[] = {NULL};
    struct ewtp_parse_opts opts = {.size = sizeof(struct ewtp_parse_opts),
                                   .extra_destinations = extra};
    if (data == NULL || ewtp_message_parse(data, len, &opts, &m, errs) != 0 ||
        ewtp_errors_blocking(errs) > 0) {
        printf("FAIL cannot load %s\n", path);
        failures++;
    }
    ewtp_errors_free(errs);
    free(data);
    return m;
}

static void check_interpret(const struct ewtp_plugin *p, void *st, const struct ewtp_message *m,
                            int status, const char *body, const char *header,
                            enum ewtp_verdict want, const char *want_ref, const char *want_code)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_call c = {.size = sizeof(c), .tenant = "t1", .msg = m, .attempt = 1, .arena = a};
    struct ewtp_header h = EWTP_HEADER_INIT(.name = "Retry-After", .value = header);
    const struct ewtp_header *const hp[1] = {&h};
    struct ewtp_response r = {.size = sizeof(struct ewtp_response),
                              .status = status,
                              .headers = header ? hp : NULL,
                              .n_headers = header ? 1 : 0,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .transport_error = status == 0 ? "connection refused" : NULL};
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    int rc = p->interpret(st, &c, &r, &o);
    CHECK(rc == 0, "interpret %d rc %d", status, rc);
    CHECK(o.verdict == want, "interpret %s %d: verdict %s, want %s", m->id, status,
          ewtp_verdict_name(o.verdict), ewtp_verdict_name(want));
    if (want_ref)
        CHECK(streq(o.authority_ref, want_ref), "interpret %d: ref %s", status,
              o.authority_ref ? o.authority_ref : "(null)");
    if (want_code)
        CHECK(streq(o.code, want_code), "interpret %d: code %s", status,
              o.code ? o.code : "(null)");
    if (header)
        CHECK(o.retry_after_ms == 30000, "Retry-After not honoured");
    ewtp_arena_free(a);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PLUGIN.so SOURCE_DIR\n", argv[0]);
        return 2;
    }
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    const struct ewtp_plugin *p = so ? dlsym(so, EWTP_PLUGIN_SYMBOL) : NULL;
    if (p == NULL) {
        printf("FAIL cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    struct ewtp_host host = {.size = sizeof(host)};
    struct ewtp_settings *s = ewtp_settings_new();
    struct ewtp_errors *why = ewtp_errors_new();
    void *st = NULL;
    if (p->create(&host, s, &st, why) != 0) {
        printf("FAIL create\n");
        return 1;
    }
    const char *dir = argv[2];
    const char *mrn = "26BE000000001234R7";
    const struct want answers[] = {
        {"IE928-received.xml", EWTP_V_SUBMITTED, "IE928", "be-h7-0001", "be-h7-0001", "be-h7-0001",
         NULL},
        {"IE428-accepted.xml", EWTP_V_SUBMITTED, "IE428", "be-h7-0001", "be-h7-0001", mrn, NULL},
        {"IE429-released.xml", EWTP_V_APPROVED, "IE429", "be-h7-0001", mrn, mrn, NULL},
        {"IE451-not-released.xml", EWTP_V_REJECTED, "IE451", "be-h7-0001", mrn, mrn, NULL},
        {"IE451-not-released-ctrl.xml", EWTP_V_REJECTED, "IE451/CTRL", "be-h7-0001", mrn, mrn,
         NULL},
        {"IE906-rejected.xml", EWTP_V_REJECTED, "IE906/H7-150", "be-h7-x01", "be-h7-x01", NULL,
         "/declaration/lines/0/amount"},
        {"IE416-refused.xml", EWTP_V_REJECTED, "IE416/FRCT", NULL, "EWTPH0123456789abcdef0", NULL,
         NULL},
        {"mls-accepted.xml", EWTP_V_APPROVED, "AP", "be-inv-0001", "be-inv-0001", NULL, NULL},
        {"mls-rejected.xml", EWTP_V_REJECTED, "RE/BV", "be-inv-0001", "be-inv-0001", NULL,
         "/invoice/totals/gross"},
    };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
        check_receive(p, st, dir, &answers[i]);

    /* Not ours: refused with ENOTFOUND, never a crash. */
    struct ewtp_arena *a = ewtp_arena_new();
    const char *junk[] = {"", "{\"status\":\"ok\"}", "<a/>",
                          "<h7:IE999 xmlns:h7=\"urn:ewtp:be:idms-h7:1\"/>",
                          "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"e\">]><x>&e;</x>"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        struct ewtp_inbound in = {.size = sizeof(in),
                                  .source = "http",
                                  .body = junk[i],
                                  .body_len = strlen(junk[i]),
                                  .arena = a};
        struct ewtp_correlation to = EWTP_CORRELATION_INIT();
        struct ewtp_outcome o = EWTP_OUTCOME_INIT();
        CHECK(p->receive(st, &in, &to, &o) == -EWTP_ENOTFOUND, "junk %zu accepted", i);
    }
    ewtp_arena_free(a);

    struct ewtp_message *h7 = load_msg(dir, "h7-basic");
    struct ewtp_message *inv = load_msg(dir, "invoice-http-access-point");
    if (h7 && inv) {
        check_interpret(p, st, h7, 0, NULL, NULL, EWTP_V_RETRY, NULL, "transport");
        check_interpret(p, st, h7, 503, "", "30", EWTP_V_RETRY, NULL, "HTTP 503");
        check_interpret(p, st, h7, 401, "", NULL, EWTP_V_RETRY, NULL, "HTTP 401");
        check_interpret(p, st, h7, 202, "", NULL, EWTP_V_SUBMITTED, "be-h7-0001", "HTTP 202");
        /* An unreadable acknowledgement proves nothing: sent again (a resend answers 409). */
        check_interpret(p, st, h7, 200, "not xml at all", NULL, EWTP_V_RETRY, NULL, "HTTP 200");
        check_interpret(p, st, h7, 409, "", NULL, EWTP_V_SUBMITTED, "be-h7-0001", "duplicate");
        check_interpret(p, st, h7, 400, "<garbage", NULL, EWTP_V_REJECTED, NULL, "HTTP 400");
        check_interpret(p, st, h7, 200,
                        "<h7:IE928 xmlns:h7=\"urn:ewtp:be:idms-h7:1\"><h7:LRN>be-h7-0001</h7:LRN>"
                        "</h7:IE928>",
                        NULL, EWTP_V_SUBMITTED, "be-h7-0001", "IE928");
        check_interpret(p, st, inv, 202, "{\"id\":\"ap-778\",\"status\":\"queued\"}", NULL,
                        EWTP_V_SUBMITTED, "ap-778", NULL);
        check_interpret(p, st, inv, 200, "{\"id\":\"ap-779\",\"status\":\"delivered\"}", NULL,
                        EWTP_V_APPROVED, "ap-779", NULL);
        check_interpret(p, st, inv, 422,
                        "{\"errors\":[{\"code\":\"BR-CO-15\",\"message\":\"totals\"}]}", NULL,
                        EWTP_V_REJECTED, NULL, "BR-CO-15");
        check_interpret(p, st, inv, 200, "\xff\xfe", NULL, EWTP_V_RETRY, NULL, "HTTP 200");
    }
    ewtp_message_free(h7);
    ewtp_message_free(inv);
    p->destroy(st);
    ewtp_settings_free(s);
    ewtp_errors_free(why);
    dlclose(so);
    printf("%s: %d failure(s)\n", argv[0], failures);
    return failures ? 1 : 0;
}
