/* fuzz_plugin.c — libFuzzer target for a plugin's interpret, interpret_batch and receive
 * (STYLE §6): what an authority or anyone on the network sends back is the input. Built and
 * run by tests/fuzz/run.sh, once per plugin: EWTP_FUZZ_PLUGIN=cn|be|my|rw|et|zz.
 *
 * The plugin is dlopened from EWTP_FUZZ_PLUGIN_DIR (build-fuzz/plugins) through the
 * offline runner (daemon/host/runner.h -> loader.h), exactly as ewtpctl does, with empty
 * settings and test identities; the messages are fixed valid golden vectors of that plugin
 * (plugins/<dir>/vectors/<case>/input.json, with call.json's op / authority_ref / chain /
 * key_state).
 *
 * Input (text, so seeds are readable and tests/fuzz/seeds.py can write them):
 *   line 1   "<mode> <case> <status> <request_index>"
 *            mode I = interpret, B = interpret_batch (case's call 1 + status%3 times),
 *            R = receive (source by status % 3: spool, http, amqp); case picks a vector;
 *            a negative status means a transport error ("timeout", status 0)
 *   lines    "Name: value" headers, up to an empty line
 *   rest     the body, in its own exact-size allocation (no NUL after it: plugins must
 *            honour body_len)
 * Every answer must give 0 or a negative code, a verdict in range and readable strings;
 * never a crash, leak, hang or sanitizer report. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/message.h>
#include <ewtp/plugin.h>

#include "loader.h"
#include "runner.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef EWTP_FUZZ_SOURCE_DIR
#error "build with -DEWTP_FUZZ_SOURCE_DIR=\"/path/to/ewtp\" (tests/fuzz/run.sh does)"
#endif

#define MAX_CASES 4
#define MAX_HEADERS 16

struct fuzz_case {
    struct ewtp_message *msg;
    struct ewtp_runner_call rc;
    json_t *call_json; /* owns rc's strings */
    char *key_state;   /* call.json's key_state as bytes (rc.key_state) */
};

static struct ewtp_runner *runner;
static struct ewtp_instance *inst;
static const struct ewtp_plugin *plugin;
static struct fuzz_case cases[MAX_CASES];
static size_t n_cases;

/* Golden vectors per plugin: plugin directory and case folders (valid messages only). */
static const struct {
    const char *name, *dir, *vectors[MAX_CASES];
} table[] = {
    {"cn",
     "cn",
     {"import-order-311", "import-cancel-623", "export-declaration-603", "import-payment-411"}},
    {"be", "be", {"h7-basic", "invoice-standard-21", "invoice-http-access-point", "credit-note"}},
    {"my", "my", {"answers-submit", "answers-poll", "answers-cancel", "invoice-json"}},
    {"rw", "rw", {"answers-sale", "answers-init", "declaration-import-road", "credit-note"}},
    {"et", "et", {"answers-register", "answers-cancel", "answers-verify", "invoice-first-b2c"}},
    {"zz", "template", {"order-basic", "order-cancel", "order-chained", "invoice-vat"}},
};

static char *slurp(const char *path, size_t *len)
{
    char *buf = NULL;
    return ewtp_read_file(path, 1 << 24, &buf, len) == 0 ? buf : NULL;
}

static void load_case(const char *dir, const char *vector)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/plugins/%s/vectors/%s/input.json", EWTP_FUZZ_SOURCE_DIR, dir,
             vector);
    size_t len = 0;
    char *text = slurp(path, &len);
    if (text == NULL) {
        fprintf(stderr, "fuzz_plugin: cannot read %s\n", path);
        exit(1);
    }
    struct ewtp_errors *errs = ewtp_errors_new();
    struct fuzz_case *fc = &cases[n_cases];
    if (ewtp_runner_parse(runner, text, len, &fc->msg, errs) != 0) {
        fprintf(stderr, "fuzz_plugin: %s does not parse\n", path);
        exit(1);
    }
    free(text);
    snprintf(path, sizeof(path), "%s/plugins/%s/vectors/%s/call.json", EWTP_FUZZ_SOURCE_DIR, dir,
             vector);
    fc->call_json = json_load_file(path, 0, NULL); /* optional */
    if (fc->call_json) {
        const char *op = json_string_value(json_object_get(fc->call_json, "op"));
        fc->rc.op = op && strcmp(op, "cancel") == 0 ? EWTP_OP_CANCEL : EWTP_OP_SUBMIT;
        fc->rc.authority_ref = json_string_value(json_object_get(fc->call_json, "authority_ref"));
        fc->rc.cancel_reason = json_string_value(json_object_get(fc->call_json, "reason"));
        const char *chain = json_string_value(json_object_get(fc->call_json, "chain"));
        if (chain) {
            char *end = NULL;
            fc->rc.has_chain = true;
            fc->rc.chain.number = strtoull(chain, &end, 10);
            fc->rc.chain.prev_ref = end && *end == ':' && end[1] ? end + 1 : NULL;
        }
        const json_t *ks = json_object_get(fc->call_json, "key_state");
        if (ks && !json_is_null(ks)) {
            fc->key_state = json_is_string(ks) ? strdup(json_string_value(ks))
                                               : json_dumps(ks, JSON_COMPACT | JSON_PRESERVE_ORDER);
            fc->rc.key_state = fc->key_state;
            fc->rc.key_state_len = fc->key_state ? strlen(fc->key_state) : 0;
        }
    }
    fc->rc.unsigned_ = true; /* interpret never signs; keeps calls independent of keys */
    if (inst == NULL) {
        inst = ewtp_runner_instance(runner, fc->msg, errs);
        if (inst == NULL) {
            fprintf(stderr, "fuzz_plugin: no instance for %s\n", path);
            exit(1);
        }
        plugin = ewtp_instance_plugin(inst);
    }
    ewtp_errors_free(errs);
    n_cases++;
}

static void cleanup(void)
{
    for (size_t i = 0; i < n_cases; i++) {
        ewtp_message_free(cases[i].msg);
        json_decref(cases[i].call_json);
        free(cases[i].key_state);
    }
    ewtp_runner_free(runner);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *name = getenv("EWTP_FUZZ_PLUGIN");
    const char *pdir = getenv("EWTP_FUZZ_PLUGIN_DIR");
    if (name == NULL || pdir == NULL) {
        fprintf(stderr, "fuzz_plugin: set EWTP_FUZZ_PLUGIN (cn|be|my|rw|et|zz) and "
                        "EWTP_FUZZ_PLUGIN_DIR (build-fuzz/plugins)\n");
        exit(1);
    }
    size_t t = 0;
    while (t < sizeof(table) / sizeof(table[0]) && strcmp(table[t].name, name) != 0)
        t++;
    if (t == sizeof(table) / sizeof(table[0])) {
        fprintf(stderr, "fuzz_plugin: unknown plugin %s\n", name);
        exit(1);
    }
    struct ewtp_runner_opts o = {.plugin_dir = pdir, .tenant = "fuzz"};
    ewtp_time_parse("2026-11-22T12:00:00Z", &o.now_ms);
    struct ewtp_errors *why = ewtp_errors_new();
    if (ewtp_runner_open(&o, &runner, why) != 0) {
        fprintf(stderr, "fuzz_plugin: cannot open the runner on %s\n", pdir);
        exit(1);
    }
    ewtp_errors_free(why);
    for (size_t i = 0; i < MAX_CASES && table[t].vectors[i]; i++)
        load_case(table[t].dir, table[t].vectors[i]);
    atexit(cleanup);
    return 0;
}

/* Touches every byte of a returned string, so a dangling or unterminated one is reported. */
static void check_str(const char *s)
{
    if (s)
        (void)strlen(s);
}

static void check_outcome(int rc, const struct ewtp_outcome *o)
{
    if (rc > 0)
        abort(); /* 0 or a negative EWTP_E* */
    if (rc != 0)
        return;
    if ((unsigned)o->verdict > EWTP_V_INFO || o->retry_after_ms < 0)
        abort();
    check_str(o->code);
    check_str(o->message);
    check_str(o->authority_ref);
    check_str(o->pointer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Line 1 and the headers are copied NUL-terminated into text; the body gets its own
     * exact-size buffer. */
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = memchr(text, '\n', size);
    if (nl == NULL) {
        free(text);
        return 0;
    }
    *nl = '\0';
    char mode = 0;
    unsigned ci = 0, req = 0;
    int status = 0;
    if (sscanf(text, "%c %u %d %u", &mode, &ci, &status, &req) < 3) {
        free(text);
        return 0;
    }
    struct ewtp_header hdrs[MAX_HEADERS];
    const struct ewtp_header *hp[MAX_HEADERS]; /* the plugin ABI's array of pointers */
    size_t nh = 0;
    char *p = nl + 1, *end = text + size;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        *eol = '\0';
        char *line = p;
        p = eol + 1;
        if (line[0] == '\0')
            break;
        char *colon = strchr(line, ':');
        if (colon == NULL || nh == MAX_HEADERS)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        hdrs[nh] = (struct ewtp_header)EWTP_HEADER_INIT(.name = line, .value = v);
        hp[nh] = &hdrs[nh];
        nh++;
    }
    size_t body_len = p < end ? (size_t)(end - p) : 0;
    char *body = malloc(body_len ? body_len : 1);
    if (body == NULL) {
        free(text);
        return 0;
    }
    memcpy(body, data + (p - text), body_len);

    struct ewtp_arena *a = ewtp_arena_new();
    const struct fuzz_case *fc = &cases[ci % n_cases];
    const void *st = ewtp_instance_state(inst);
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    if (a && (mode == 'I' || (mode == 'B' && plugin->interpret_batch))) {
        struct ewtp_call c;
        ewtp_runner_call_init(runner, fc->msg, &fc->rc, a, &c);
        struct ewtp_response r = {.size = sizeof(struct ewtp_response),
                                  .status = status < 0 ? 0 : status,
                                  .headers = hp,
                                  .n_headers = nh,
                                  .body = body,
                                  .body_len = body_len,
                                  .request_index = req % 8,
                                  .transport_error = status < 0 ? "timeout" : NULL};
        if (mode == 'I') {
            check_outcome(plugin->interpret(st, &c, &r, &o), &o);
        } else {
            /* The same call one to three times: the batch answer lists documents by id. */
            const struct ewtp_call *calls[3] = {&c, &c, &c};
            struct ewtp_outcome os[3] = {EWTP_OUTCOME_INIT(), EWTP_OUTCOME_INIT(),
                                         EWTP_OUTCOME_INIT()};
            struct ewtp_outcome *const op[3] = {&os[0], &os[1], &os[2]};
            size_t n = 1 + (unsigned)(status < 0 ? -status : status) % 3;
            int rc = plugin->interpret_batch(st, calls, n, &r, op);
            for (size_t k = 0; k < n; k++)
                check_outcome(rc, &os[k]);
        }
    } else if (a && mode == 'R' && plugin->receive) {
        static const char *const sources[] = {"spool", "http", "amqp"};
        struct ewtp_inbound in = {.size = sizeof(in),
                                  .source = sources[(unsigned)(status < 0 ? -status : status) % 3],
                                  .name = nh ? hdrs[0].value : "fuzz.xml",
                                  .headers = hp,
                                  .n_headers = nh,
                                  .body = body,
                                  .body_len = body_len,
                                  .now_ms = ewtp_runner_now(runner),
                                  .arena = a,
                                  .host = ewtp_runner_host(runner)};
        struct ewtp_correlation to = EWTP_CORRELATION_INIT();
        int rc = plugin->receive(st, &in, &to, &o);
        if (rc == -EWTP_ENOTFOUND || rc < 0) {
            /* not ours, or refused */
        } else {
            check_outcome(rc, &o);
            if (to.message_id == NULL && to.authority_ref == NULL)
                abort(); /* a correlation names the message one way or the other */
            check_str(to.message_id);
            check_str(to.authority_ref);
            check_str(to.tenant);
        }
    }
    ewtp_arena_free(a);
    free(body);
    free(text);
    return 0;
}
