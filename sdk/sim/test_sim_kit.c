/* The simulator kit of libewtp-sim (sim/kit): the request helpers on hand-made requests, the
 * spool reader, writer and scan on a temporary folder (links refused, size cap, sent/), and
 * scripted receipts on a running simulator (the template's module): delivered, cancelled, and
 * dropped at shutdown without a leak (ASan). Argument: the path of ewtp-sim-zz.so. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ewtp/json.h>
#include <ewtp/sim.h>
#include <ewtp/xml.h>

static int failed;

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("ok   %s\n", what);                                                             \
        } else {                                                                                   \
            printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__);                                 \
            failed++;                                                                              \
        }                                                                                          \
    } while (0)

static const char *header(const struct ewtp_sim_response *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static bool body_has(const struct ewtp_sim_response *r, const char *text)
{
    return r->body && strstr((const char *)r->body, text) != NULL;
}

static void requests(void)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_sim_header h[2] = {{"authorization", "bearer tok-1"}, {"X", "y"}};
    struct ewtp_sim_request req = {
        .method = "POST", .path = "/x", .headers = h, .n_headers = 2, .body = "", .arena = a};
    struct ewtp_sim_response resp = {0};

    CHECK(ewtp_sim_bearer(&req) && strcmp(ewtp_sim_bearer(&req), "tok-1") == 0,
          "bearer: the scheme in any case");
    CHECK(ewtp_sim_require_bearer(&req, &resp, "tok-1", "qq", "QQ-401") && resp.status == 0,
          "require_bearer: the expected token passes");
    CHECK(ewtp_sim_require_bearer(&req, &resp, NULL, "qq", "QQ-401") && resp.status == 0,
          "require_bearer: any token without an expected one");
    CHECK(ewtp_sim_require_bearer(&req, &resp, "tok-2", "qq", "QQ-401") == NULL &&
              resp.status == 401 && body_has(&resp, "QQ-401") &&
              strcmp(header(&resp, "WWW-Authenticate"),
                     "Bearer realm=\"qq\", error=\"invalid_token\"") == 0,
          "require_bearer: another token is a 401 with error=\"invalid_token\"");
    memset(&resp, 0, sizeof(resp));
    h[0].value = "Bearer ";
    CHECK(ewtp_sim_require_bearer(&req, &resp, NULL, NULL, "QQ-401") == NULL &&
              resp.status == 401 && strcmp(header(&resp, "WWW-Authenticate"), "Bearer") == 0,
          "require_bearer: an empty token is a 401");
    memset(&resp, 0, sizeof(resp));

    req.body = "[1]";
    req.body_len = 3;
    CHECK(ewtp_sim_body_json(&req, &resp, NULL) == NULL && resp.status == 0,
          "body_json: an array is not an object; code NULL leaves the answer alone");
    CHECK(ewtp_sim_body_json(&req, &resp, "QQ-400") == NULL && resp.status == 400 &&
              body_has(&resp, "QQ-400"),
          "body_json: with a code, a 400");
    memset(&resp, 0, sizeof(resp));
    req.body = "{\"a\":\"b\"}";
    req.body_len = strlen(req.body);
    const struct ewtp_json *j = ewtp_sim_body_json(&req, &resp, "QQ-400");
    CHECK(j && strcmp(ewtp_json_get_string(j, "a"), "b") == 0, "body_json: an object");

    req.body = "<a><b></a>";
    req.body_len = strlen(req.body);
    struct ewtp_errors *errs = ewtp_errors_new();
    CHECK(ewtp_sim_body_xml(&req, &resp, NULL, "QQ-100", errs) == NULL && resp.status == 400 &&
              ewtp_errors_count(errs) > 0 && body_has(&resp, "QQ-100"),
          "body_xml: not well-formed is a 400 listing the errors");
    ewtp_errors_free(errs);
    memset(&resp, 0, sizeof(resp));
    req.body = "<a><b/></a>";
    req.body_len = strlen(req.body);
    struct ewtp_xml_doc *doc = ewtp_sim_body_xml(&req, &resp, NULL, "QQ-100", NULL);
    CHECK(doc && resp.status == 0, "body_xml: a document");
    ewtp_xml_free(doc);

    req.body = "grant_type=client_credentials&client_id=a%2Bb+c&x=%zz";
    const char *v = ewtp_sim_form_field(&req, "client_id");
    CHECK(v && strcmp(v, "a+b c") == 0, "form_field: + and %XX decoded");
    v = ewtp_sim_form_field(&req, "x");
    CHECK(v && strcmp(v, "%zz") == 0, "form_field: a bad escape stays as it is");
    CHECK(ewtp_sim_form_field(&req, "client") == NULL, "form_field: absent");

    errs = ewtp_errors_new();
    ewtp_errors_add(errs, "/a", "rule", "first");
    ewtp_errors_add(errs, "/b", "rule", "second");
    ewtp_sim_reply_errors(&req, &resp, 422, "QQ-1", errs);
    CHECK(resp.status == 422 && body_has(&resp, "\"first\"") && body_has(&resp, "\"second\""),
          "reply_errors: every entry");
    ewtp_errors_free(errs);
    ewtp_arena_free(a);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static bool exists(const char *dir, const char *name)
{
    char path[512];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return lstat(path, &sb) == 0;
}

struct seen {
    int n;
    char names[8][64];
};

static void take(void *arg, const char *name, const char *data, size_t len, struct ewtp_arena *a)
{
    (void)a;
    struct seen *s = arg;
    if (s->n < 8 && strlen(data) == len)
        snprintf(s->names[s->n++], 64, "%s", name);
}

static void spool(const char *dir)
{
    struct ewtp_arena *a = ewtp_arena_new();
    char *data = NULL;
    size_t len = 0;
    CHECK(ewtp_sim_spool_write(NULL, dir, "one.xml", "<one/>", 6) == 0 &&
              ewtp_sim_spool_read(dir, "one.xml", 100, a, &data, &len) == 0 && len == 6 &&
              strcmp(data, "<one/>") == 0,
          "spool_write then spool_read");
    CHECK(ewtp_sim_spool_write(NULL, dir, "one.xml", "<two/>", 6) == 0 &&
              ewtp_sim_spool_read(dir, "one.xml", 100, a, &data, &len) == 0 &&
              strcmp(data, "<two/>") == 0,
          "spool_write replaces a file atomically");
    CHECK(ewtp_sim_spool_write(NULL, dir, "../x", "x", 1) == -EWTP_EINVAL &&
              ewtp_sim_spool_write(NULL, dir, ".hidden", "x", 1) == -EWTP_EINVAL,
          "spool_write refuses '/' and hidden names");
    CHECK(ewtp_sim_spool_read(dir, "one.xml", 5, a, &data, &len) == -EWTP_EINVAL,
          "spool_read: larger than the cap is refused");
    char target[512];
    snprintf(target, sizeof(target), "%s/one.xml", dir);
    char link[512];
    snprintf(link, sizeof(link), "%s/link.xml", dir);
    CHECK(symlink(target, link) == 0 &&
              ewtp_sim_spool_read(dir, "link.xml", 100, a, &data, &len) != 0,
          "spool_read: a link is not followed");
    write_file(dir, ".partial.tmp", "half");
    write_file(dir, "big.xml", "0123456789");
    mkdir(strcat(strcpy(target, dir), "/folder"), 0750);
    struct seen s = {0};
    int n = ewtp_sim_spool_scan(NULL, dir, 10, 8, take, &s);
    CHECK(n == 3, "spool_scan: one.xml, big.xml and link.xml taken (not the temporary, not the "
                  "folder)");
    CHECK(s.n == 1 && strcmp(s.names[0], "one.xml") == 0,
          "spool_scan: only one.xml read (the link refused, big.xml over the cap)");
    CHECK(exists(dir, "sent/one.xml") && exists(dir, "sent/big.xml") &&
              exists(dir, "sent/link.xml") && !exists(dir, "one.xml") &&
              exists(dir, ".partial.tmp") && exists(dir, "folder"),
          "spool_scan: the files moved into sent/, the rest left alone");
    CHECK(ewtp_sim_spool_scan(NULL, "/nonexistent/spool", 10, 8, take, &s) == -EWTP_EIO,
          "spool_scan: a missing folder");
    ewtp_arena_free(a);
}

static void stop(struct ewtp_sim *sim, void *arg)
{
    (void)arg;
    ewtp_sim_stop(sim);
}

static void receipts(const char *module, const char *dir)
{
    struct ewtp_sim_options opt = {.listen = "127.0.0.1:0"};
    struct ewtp_sim *sim = NULL;
    char *why = NULL;
    int rc = ewtp_sim_new(module, &opt, &sim, &why);
    CHECK(rc == 0, "a simulator with the template's module");
    if (rc != 0) {
        printf("     %s\n", why ? why : "?");
        free(why);
        return;
    }
    struct ewtp_sim_deliver_to to = {.spool_in = dir};
    CHECK(ewtp_sim_deliver(sim, &to, "now.json", "application/json", "{}", 2) == 0 &&
              exists(dir, "now.json"),
          "deliver: written at once");
    struct ewtp_sim_timer *t1 =
        ewtp_sim_deliver_later(sim, 50, &to, "later.json", "application/json", "{\"a\":1}", 7);
    struct ewtp_sim_timer *t2 =
        ewtp_sim_deliver_later(sim, 50, &to, "cancelled.json", "application/json", "{}", 2);
    struct ewtp_sim_timer *t3 =
        ewtp_sim_deliver_later(sim, 600000, &to, "never.json", "application/json", "{}", 2);
    CHECK(t1 && t2 && t3 && !exists(dir, "later.json"), "deliver_later: not yet");
    ewtp_sim_timer_cancel(sim, t2);
    char out[600];
    snprintf(out, sizeof(out), "%s/../out", dir);
    mkdir(out, 0750);
    write_file(out, "declaration.xml", "<d/>");
    struct seen s = {0};
    struct ewtp_sim_spool_watch *w = ewtp_sim_spool_watch(sim, out, 20, 10, 100, take, &s);
    struct ewtp_sim_spool_watch *w2 = ewtp_sim_spool_watch(sim, out, 600000, 10, 100, take, &s);
    ewtp_sim_timer_add(sim, 300, stop, NULL);
    ewtp_sim_run(sim, false);
    CHECK(w && s.n == 1 && strcmp(s.names[0], "declaration.xml") == 0 &&
              exists(out, "sent/declaration.xml"),
          "spool_watch: a file of the watched folder taken once and moved into sent/");
    ewtp_sim_spool_unwatch(w);
    ewtp_sim_spool_unwatch(w2);
    CHECK(exists(dir, "later.json"), "deliver_later: written when its timer fired");
    CHECK(!exists(dir, "cancelled.json"), "deliver_later: a cancelled receipt is never written");
    ewtp_sim_free(sim); /* never.json's copies are freed here (ASan would say otherwise) */
    CHECK(!exists(dir, "never.json"), "deliver_later: dropped at shutdown");
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/ewtp-sim-kit-XXXXXX";
    if (argc < 2 || mkdtemp(dir) == NULL) {
        fprintf(stderr, "usage: test_sim_kit PATH/ewtp-sim-zz.so\n");
        return 2;
    }
    requests();
    spool(dir);
    char in[600];
    snprintf(in, sizeof(in), "%s/in", dir);
    mkdir(in, 0750);
    receipts(argv[1], in);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        failed++;
    printf("%s\n", failed ? "FAILED" : "all passed");
    return failed ? 1 : 0;
}
