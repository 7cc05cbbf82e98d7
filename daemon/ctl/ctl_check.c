/* ewtpctl plugin check: every plugin of a directory loads, and every golden vector of the
 * given vector folders (plugins/<cc>/vectors, layout in ../shared/spec/plugin-abi.md) holds.
 *
 * A case folder has input.json, optional related/ JSON files, optional settings.conf (a
 * configuration in ewtpd.conf syntax whose plugins list gives the instance settings),
 * optional call.json ({"op","authority_ref","reason","chain":"N:REF","tenant","now",
 * "key_state": the key's state blob, a string as is or any other JSON compact}), and
 * either expected/ (the unsigned documents and requests.json: XML compared after C14N,
 * JSON as JSON values, anything else byte for byte; no document missing or extra) or
 * errors.json ({"errors":[{"pointer","code"}]}: each must be reported, and the message must
 * be refused). Ends with the line "N passed, M failed". */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include <ewtp/xml.h>

#include "ctl.h"
#include "ctl_hostile.h"
#include "config.h"
#include "loader.h"

#define DEFAULT_VECTOR_NOW "2026-11-22T12:00:00Z"
/* A case folder path fits in CASE_DIR_MAX; paths inside it in twice that. */
#define CASE_DIR_MAX 4096
#define CASE_PATH_MAX (2 * CASE_DIR_MAX)

struct check_totals {
    unsigned passed, failed;
    /* PATH.so form: the hostile corpus, once per operation, on the first case that
     * translates; the time translate takes over the vectors. */
    bool hostile;
    bool hostile_done[2][EWTP_KIND_COUNT]; /* by enum ewtp_op and kind */
    unsigned hostile_runs;
    unsigned translated, documents;
    int64_t translate_ns;
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The hostile corpus through interpret (and interpret_batch) with the call of a case that
 * translated, for each of its requests: once per operation and kind. */
static void hostile_on_case(struct ewtp_runner *r, const struct ewtp_call *c,
                            const struct ewtp_out *out, struct check_totals *t)
{
    unsigned op = c->op == EWTP_OP_CANCEL ? 1 : 0;
    unsigned kind = (unsigned)c->msg->kind;
    if (!t->hostile || kind >= EWTP_KIND_COUNT || t->hostile_done[op][kind])
        return;
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_instance *inst = ewtp_runner_instance(r, c->msg, errs);
    ewtp_errors_free(errs);
    if (inst == NULL)
        return;
    t->hostile_done[op][kind] = true;
    t->hostile_runs++;
    char label[64];
    snprintf(label, sizeof(label), "%s %s", op ? "cancel" : "submit", ewtp_kind_name(c->msg->kind));
    const struct ewtp_request *const *reqs = NULL;
    size_t n_reqs = out ? ewtp_out_requests(out, &reqs) : 0;
    struct ctl_tally tally = {0};
    const struct ewtp_plugin *p = ewtp_instance_plugin(inst);
    ctl_hostile_interpret(p, ewtp_instance_state(inst), c, n_reqs, label, &tally);
    if (op == 0)
        ctl_hostile_interpret_batch(p, ewtp_instance_state(inst), c, &tally);
    t->passed += tally.passed;
    t->failed += tally.failed;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory (no dot files); NULL-terminated, caller frees each. */
static char **list_dir(const char *dir, bool want_dirs)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    size_t n = 0, cap = 16;
    char **names = calloc(cap + 1, sizeof(char *));
    struct dirent *e;
    while (names && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || (S_ISDIR(st.st_mode) != want_dirs))
            continue;
        if (n == cap) {
            char **grown = realloc(names, (cap * 2 + 1) * sizeof(char *));
            if (grown == NULL)
                break;
            names = grown;
            cap *= 2;
        }
        names[n++] = strdup(e->d_name);
        names[n] = NULL;
    }
    closedir(d);
    if (names && n)
        qsort(names, n, sizeof(char *), compare_names);
    return names;
}

static void free_list(char **names)
{
    for (size_t i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Canonical XML of bytes into a malloc'd string, or NULL when not well-formed. */
static char *canonical_xml(const void *data, size_t len)
{
    struct ewtp_xml_doc *doc = NULL;
    if (ewtp_xml_parse(data, len, NULL, &doc) != 0)
        return NULL;
    struct ewtp_arena *a = ewtp_arena_new();
    const char *out = NULL;
    size_t out_len = 0;
    char *copy = NULL;
    if (a && ewtp_xml_c14n(doc, NULL, EWTP_C14N_10, false, NULL, a, &out, &out_len) == 0)
        copy = strndup(out, out_len);
    ewtp_arena_free(a);
    ewtp_xml_free(doc);
    return copy;
}

/* Compares produced bytes with the expected file by its kind; NULL when equal, else why. */
static const char *compare_doc(const char *name, const char *want, size_t want_len, const void *got,
                               size_t got_len)
{
    if (has_suffix(name, ".xml")) {
        char *a = canonical_xml(want, want_len), *b = canonical_xml(got, got_len);
        bool same = a && b && strcmp(a, b) == 0;
        const char *why = a == NULL   ? "expected file is not well-formed XML"
                          : b == NULL ? "produced document is not well-formed XML"
                          : same      ? NULL
                                      : "XML differs after canonicalisation";
        free(a);
        free(b);
        return why;
    }
    if (has_suffix(name, ".json")) {
        json_t *a = json_loadb(want, want_len, 0, NULL), *b = json_loadb(got, got_len, 0, NULL);
        bool same = a && b && json_equal(a, b);
        const char *why = a == NULL   ? "expected file is not JSON"
                          : b == NULL ? "produced document is not JSON"
                          : same      ? NULL
                                      : "JSON value differs";
        json_decref(a);
        json_decref(b);
        return why;
    }
    return want_len == got_len && memcmp(want, got, got_len) == 0 ? NULL : "bytes differ";
}

/* Options of a case from call.json. */
struct case_call {
    json_t *root;
    struct ewtp_runner_call rc;
    const char *tenant, *now;
    char *key_state; /* call.json's key_state as bytes (malloc'd) */
};

static int load_call(const char *dir, struct case_call *cc, char *why, size_t why_size)
{
    memset(cc, 0, sizeof(*cc));
    char path[CASE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/call.json", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    json_error_t err;
    cc->root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (cc->root == NULL) {
        snprintf(why, why_size, "call.json:%d: %s", err.line, err.text);
        return -1;
    }
    const char *op = json_string_value(json_object_get(cc->root, "op"));
    cc->rc.op = op && strcmp(op, "cancel") == 0 ? EWTP_OP_CANCEL : EWTP_OP_SUBMIT;
    cc->rc.authority_ref = json_string_value(json_object_get(cc->root, "authority_ref"));
    cc->rc.cancel_reason = json_string_value(json_object_get(cc->root, "reason"));
    cc->tenant = json_string_value(json_object_get(cc->root, "tenant"));
    cc->now = json_string_value(json_object_get(cc->root, "now"));
    const char *chain = json_string_value(json_object_get(cc->root, "chain"));
    if (chain) {
        char *end = NULL;
        cc->rc.has_chain = true;
        cc->rc.chain.number = strtoull(chain, &end, 10);
        cc->rc.chain.prev_ref = end && *end == ':' && end[1] ? end + 1 : NULL;
    }
    const json_t *ks = json_object_get(cc->root, "key_state");
    if (ks && !json_is_null(ks)) {
        cc->key_state = json_is_string(ks) ? strdup(json_string_value(ks))
                                           : json_dumps(ks, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (cc->key_state == NULL) {
            snprintf(why, why_size, "call.json: key_state: out of memory");
            return -1;
        }
        cc->rc.key_state = cc->key_state;
        cc->rc.key_state_len = strlen(cc->key_state);
    }
    return 0;
}

/* True when the errors.json array lists (pointer, code). */
static bool errors_json_lists(json_t *list, const char *pointer, const char *code)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *p = json_string_value(json_object_get(e, "pointer"));
        const char *c = json_string_value(json_object_get(e, "code"));
        if (p && c && strcmp(p, pointer) == 0 && strcmp(c, code) == 0)
            return true;
    }
    return false;
}

/* errors.json is the exact set of (pointer, code) errors the case gets: each one listed is
 * reported, and no error is reported that it does not list (a plugin adding spurious errors
 * fails). Warnings are not errors: they may be reported freely. */
static int check_errors(const char *dir, const struct ewtp_errors *errs, int verdict, char *why,
                        size_t why_size)
{
    char path[CASE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/errors.json", dir);
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    json_t *list = json_object_get(root, "errors");
    int rc = 0;
    if (!json_is_array(list) || json_array_size(list) == 0) {
        snprintf(why, why_size, "errors.json must hold a non-empty \"errors\" array");
        rc = -1;
    } else if (verdict != 1) {
        snprintf(why, why_size, "the message was accepted, but errors.json expects a refusal");
        rc = -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (rc)
            break;
        const char *pointer = json_string_value(json_object_get(e, "pointer"));
        const char *code = json_string_value(json_object_get(e, "code"));
        if (pointer == NULL || !ewtp_errors_has(errs, pointer, code)) {
            char *got = ewtp_errors_to_json(errs);
            snprintf(why, why_size, "expected error %s %s not reported; got %s",
                     pointer ? pointer : "(no pointer)", code ? code : "", got ? got : "");
            free(got);
            rc = -1;
        }
    }
    for (size_t k = 0; rc == 0 && k < ewtp_errors_count(errs); k++) {
        const struct ewtp_error *got = ewtp_errors_at(errs, k);
        if (got->severity != EWTP_SEV_ERROR || errors_json_lists(list, got->pointer, got->code))
            continue;
        snprintf(why, why_size,
                 "unexpected error %s %s reported (%s): errors.json does not list it", got->pointer,
                 got->code, got->message ? got->message : "");
        rc = -1;
    }
    json_decref(root);
    return rc;
}

/* Compares out with expected/: every expected file produced and equal, nothing extra. */
static int check_expected(const char *dir, const struct ewtp_out *out, char *why, size_t why_size)
{
    char exp_dir[CASE_PATH_MAX];
    snprintf(exp_dir, sizeof(exp_dir), "%s/expected", dir);
    char **files = list_dir(exp_dir, false);
    if (files == NULL) {
        snprintf(why, why_size, "cannot read %.1000s", exp_dir);
        return -1;
    }
    const struct ewtp_document *const *docs = NULL;
    size_t n_docs = ewtp_out_documents(out, &docs);
    char *requests = ctl_requests_json(out);
    int rc = 0;
    size_t matched = 0;
    for (size_t i = 0; files[i] && rc == 0; i++) {
        char path[2 * CASE_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", exp_dir, files[i]);
        char *want = NULL;
        size_t want_len = 0;
        if (ewtp_read_file(path, 64u << 20, &want, &want_len) != 0) {
            snprintf(why, why_size, "cannot read %.1000s", path);
            rc = -1;
            break;
        }
        const void *got = NULL;
        size_t got_len = 0;
        if (strcmp(files[i], "requests.json") == 0) {
            got = requests;
            got_len = requests ? strlen(requests) : 0;
        } else {
            for (size_t d = 0; d < n_docs; d++)
                if (strcmp(docs[d]->name, files[i]) == 0) {
                    got = docs[d]->data;
                    got_len = docs[d]->len;
                    matched++;
                }
        }
        const char *diff =
            got ? compare_doc(files[i], want, want_len, got, got_len) : "not produced";
        if (diff) {
            snprintf(why, why_size, "%s: %s", files[i], diff);
            rc = -1;
        }
        free(want);
    }
    if (rc == 0 && matched != n_docs) {
        snprintf(why, why_size, "produced %zu documents, expected/ has %zu", n_docs, matched);
        rc = -1;
    }
    free(requests);
    free_list(files);
    return rc;
}

/* Compares one string member of expect with the actual value; -1 and why on a mismatch. */
static int expect_string(const json_t *expect, const char *key, const char *got, const char *file,
                         char *why, size_t why_size)
{
    const json_t *want = json_object_get(expect, key);
    if (want == NULL)
        return 0;
    const char *w = json_string_value(want);
    bool same = json_is_null(want) ? got == NULL : (w && got && strcmp(w, got) == 0);
    if (!same) {
        snprintf(why, why_size, "%s: %s is %s%s%s, expected %s", file, key, got ? "\"" : "",
                 got ? got : "null", got ? "\"" : "", w ? w : "null");
        return -1;
    }
    return 0;
}

/* The parts of an outcome that expect names (verdict, code, message, authority_ref,
 * pointer, cause, retry_after_ms, poll) must match. */
static int expect_outcome(const json_t *expect, const struct ewtp_outcome *o, const char *file,
                          char *why, size_t why_size)
{
    if (expect_string(expect, "verdict", ewtp_verdict_name(o->verdict), file, why, why_size) ||
        expect_string(expect, "code", o->code, file, why, why_size) ||
        expect_string(expect, "message", o->message, file, why, why_size) ||
        expect_string(expect, "authority_ref", o->authority_ref, file, why, why_size) ||
        expect_string(expect, "pointer", o->pointer, file, why, why_size) ||
        expect_string(expect, "cause", EWTP_HAS(o, struct ewtp_outcome, cause) ? o->cause : NULL,
                      file, why, why_size))
        return -1;
    const json_t *ra = json_object_get(expect, "retry_after_ms");
    if (ra && json_integer_value(ra) != o->retry_after_ms) {
        snprintf(why, why_size, "%s: retry_after_ms is %lld, expected %lld", file,
                 (long long)o->retry_after_ms, (long long)json_integer_value(ra));
        return -1;
    }
    const json_t *poll = json_object_get(expect, "poll");
    if (poll && json_is_true(poll) != o->poll) {
        snprintf(why, why_size, "%s: poll is %s", file, o->poll ? "true" : "false");
        return -1;
    }
    return 0;
}

/* Body of an answer or inbound file: a string as is, anything else as compact JSON. */
static char *body_text(const json_t *body)
{
    if (body == NULL || json_is_null(body))
        return strdup("");
    if (json_is_string(body))
        return strndup(json_string_value(body), json_string_length(body));
    return json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

/* {"Name": "value", ...} as an arena array of headers. */
static const struct ewtp_header **headers_of(struct ewtp_arena *a, const json_t *obj, size_t *n)
{
    *n = json_object_size(obj);
    const struct ewtp_header **h = ewtp_arena_alloc(a, (*n + 1) * sizeof(*h));
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)obj, key, v)
    {
        h[i] = ewtp_header_new(
            a, ewtp_arena_strdup(a, key),
            ewtp_arena_strdup(a, json_string_value(v) ? json_string_value(v) : ""), false);
        i++;
    }
    return h;
}

/* answers/ JSON files: an authority answer to request request_index of the case's call and
 * the outcome interpret must give:
 * {"request_index":0,"status":202,"headers":{...},"body":...,"transport_error":null,
 *  "expect":{"verdict":"submitted","code":...,"authority_ref":...,"pointer":...,
 *            "retry_after_ms":...,"poll":true}} */
static int check_answers(struct ewtp_runner *r, const char *dir, const struct ewtp_call *c,
                         char *why, size_t why_size)
{
    char adir[CASE_PATH_MAX];
    snprintf(adir, sizeof(adir), "%s/answers", dir);
    char **files = list_dir(adir, false);
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_instance *inst = ewtp_runner_instance(r, c->msg, errs);
    int rc = 0;
    for (size_t i = 0; files && files[i] && rc == 0; i++) {
        char path[2 * CASE_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", adir, files[i]);
        json_error_t err;
        json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
        if (doc == NULL || inst == NULL) {
            snprintf(why, why_size, "%s: %s", files[i], doc ? "no plugin instance" : err.text);
            json_decref(doc);
            rc = -1;
            break;
        }
        struct ewtp_response resp = {
            .size = sizeof(resp),
            .status = (int)json_integer_value(json_object_get(doc, "status")),
            .request_index = (unsigned)json_integer_value(json_object_get(doc, "request_index")),
            .transport_error = json_string_value(json_object_get(doc, "transport_error")),
        };
        char *body = body_text(json_object_get(doc, "body"));
        resp.body = body;
        resp.body_len = body ? strlen(body) : 0;
        resp.headers = headers_of(c->arena, json_object_get(doc, "headers"), &resp.n_headers);
        struct ewtp_outcome o = EWTP_OUTCOME_INIT();
        const struct ewtp_plugin *p = ewtp_instance_plugin(inst);
        int irc = p->interpret(ewtp_instance_state(inst), c, &resp, &o);
        if (irc != 0) {
            snprintf(why, why_size, "%s: interpret failed: %s", files[i], ewtp_strerror(irc));
            rc = -1;
        } else {
            rc = expect_outcome(json_object_get(doc, "expect"), &o, files[i], why, why_size);
        }
        free(body);
        json_decref(doc);
    }
    free_list(files);
    ewtp_errors_free(errs);
    return rc;
}

/* inbound/ JSON files: something arriving without a request, and what receive makes of it:
 * {"plugin":"cn","source":"spool","name":"file.xml","headers":{},"body":...,
 *  "expect":{"found":true,"message_id":...,"correlated_ref":...,"verdict":...,"code":...}} */
static int check_inbound(struct ewtp_runner *r, const char *dir, char *why, size_t why_size)
{
    char idir[CASE_PATH_MAX];
    snprintf(idir, sizeof(idir), "%s/inbound", dir);
    char **files = list_dir(idir, false);
    if (files == NULL || files[0] == NULL) {
        free_list(files);
        snprintf(why, why_size, "a case needs input.json or inbound/ files");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; files[i] && rc == 0; i++) {
        char path[2 * CASE_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", idir, files[i]);
        json_error_t err;
        json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
        struct ewtp_errors *errs = ewtp_errors_new();
        const char *plugin = json_string_value(json_object_get(doc, "plugin"));
        struct ewtp_instance *inst = doc ? ewtp_runner_instance_named(r, plugin, errs) : NULL;
        const struct ewtp_plugin *p = inst ? ewtp_instance_plugin(inst) : NULL;
        if (doc == NULL || p == NULL || p->receive == NULL) {
            snprintf(why, why_size, "%s: %s", files[i],
                     doc == NULL ? err.text
                     : p == NULL ? "no loaded plugin of that \"plugin\" name"
                                 : "the plugin has no receive callback");
            json_decref(doc);
            ewtp_errors_free(errs);
            rc = -1;
            break;
        }
        struct ewtp_arena *a = ewtp_arena_new();
        char *body = body_text(json_object_get(doc, "body"));
        struct ewtp_inbound in = {
            .size = sizeof(in),
            .source = json_string_value(json_object_get(doc, "source")),
            .name = json_string_value(json_object_get(doc, "name")),
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .now_ms = ewtp_runner_now(r),
            .arena = a,
            .host = ewtp_runner_host(r),
        };
        in.headers = headers_of(a, json_object_get(doc, "headers"), &in.n_headers);
        struct ewtp_correlation to = EWTP_CORRELATION_INIT();
        struct ewtp_outcome o = EWTP_OUTCOME_INIT();
        int rrc = p->receive(ewtp_instance_state(inst), &in, &to, &o);
        const json_t *expect = json_object_get(doc, "expect");
        bool want_found = !json_is_false(json_object_get(expect, "found"));
        if (want_found != (rrc == 0)) {
            snprintf(why, why_size, "%s: receive returned %s, expected %s", files[i],
                     ewtp_strerror(rrc), want_found ? "a correlation" : "not mine");
            rc = -1;
        } else if (rrc == 0) {
            rc = expect_string(expect, "message_id", to.message_id, files[i], why, why_size) ||
                         expect_string(expect, "correlated_ref", to.authority_ref, files[i], why,
                                       why_size) ||
                         expect_outcome(expect, &o, files[i], why, why_size)
                     ? -1
                     : 0;
        }
        free(body);
        ewtp_arena_free(a);
        ewtp_errors_free(errs);
        json_decref(doc);
    }
    free_list(files);
    return rc;
}

static void run_case(const char *plugin_dir, const char *plugin_file, const char *label,
                     const char *dir, struct check_totals *t)
{
    char why[2048] = "";
    struct case_call cc;
    int failed = load_call(dir, &cc, why, sizeof(why)) != 0;
    char conf[CASE_PATH_MAX], input[CASE_PATH_MAX];
    snprintf(conf, sizeof(conf), "%s/settings.conf", dir);
    snprintf(input, sizeof(input), "%s/input.json", dir);
    struct stat st;
    struct ctl_common common = {.runner = {.plugin_dir = plugin_dir,
                                           .plugin_file = plugin_file,
                                           .config_path = stat(conf, &st) == 0 ? conf : NULL,
                                           .tenant = cc.tenant}};
    const char *now = cc.now ? cc.now : DEFAULT_VECTOR_NOW;
    ewtp_time_parse(now, &common.runner.now_ms);
    common.now_set = true;

    /* related/ JSON files, sorted */
    char rel_dir[CASE_PATH_MAX];
    snprintf(rel_dir, sizeof(rel_dir), "%s/related", dir);
    char **rel_names = list_dir(rel_dir, false);
    size_t n_rel = 0;
    char **rel_paths = NULL;
    for (; rel_names && rel_names[n_rel]; n_rel++)
        ;
    rel_paths = calloc(n_rel + 1, sizeof(char *));
    for (size_t i = 0; i < n_rel && rel_paths; i++)
        if (asprintf(&rel_paths[i], "%s/%s", rel_dir, rel_names[i]) < 0)
            rel_paths[i] = NULL;

    struct ewtp_runner *r = NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ctl_input in = {0};
    struct ewtp_arena *a = ewtp_arena_new();
    if (!failed && ctl_open_runner(&common, &r) != 0) {
        snprintf(why, sizeof(why), "cannot set up the plugins (see above)");
        failed = 1;
    }
    bool want_errors =
        snprintf(conf, sizeof(conf), "%s/errors.json", dir) > 0 && stat(conf, &st) == 0;
    bool has_input = stat(input, &st) == 0;
    char sub[CASE_PATH_MAX];
    bool has_expected = snprintf(sub, sizeof(sub), "%s/expected", dir) > 0 && stat(sub, &st) == 0;
    bool has_answers = snprintf(sub, sizeof(sub), "%s/answers", dir) > 0 && stat(sub, &st) == 0;
    bool has_inbound = snprintf(sub, sizeof(sub), "%s/inbound", dir) > 0 && stat(sub, &st) == 0;
    if (!failed && !has_input) {
        failed = check_inbound(r, dir, why, sizeof(why)) != 0;
    } else if (!failed) {
        struct ewtp_call c;
        int verdict = ctl_input_load(r, input, (const char *const *)rel_paths, n_rel, &in, errs);
        struct ewtp_out *out = NULL;
        if (verdict == 0) {
            cc.rc.related = in.related;
            cc.rc.n_related = in.n_related;
            cc.rc.unsigned_ = true;
            ewtp_runner_call_init(r, in.msg, &cc.rc, a, &c);
            int64_t t0 = monotonic_ns();
            int trc = ewtp_runner_translate(r, &c, &out, errs);
            if (trc == 0) {
                t->translate_ns += monotonic_ns() - t0;
                t->translated++;
                t->documents += (unsigned)ewtp_out_documents(out, NULL);
            }
            if (trc == EWTP_RUNNER_NO_PLUGIN) {
                snprintf(why, sizeof(why), "no plugin serves destination %s, kind %s",
                         in.msg->destination, ewtp_kind_name(in.msg->kind));
                failed = 1;
            } else if (trc == -EWTP_EINVAL || ewtp_errors_blocking(errs) > 0) {
                verdict = 1;
            } else if (trc != 0) {
                snprintf(why, sizeof(why), "translate failed: %s", ewtp_strerror(trc));
                failed = 1;
            }
        }
        if (failed) {
            /* reason already set */
        } else if (verdict == 2) {
            snprintf(why, sizeof(why), "cannot read the case's messages");
            failed = 1;
        } else if (want_errors) {
            failed = check_errors(dir, errs, verdict, why, sizeof(why)) != 0;
        } else if (verdict != 0) {
            char *got = ewtp_errors_to_json(errs);
            snprintf(why, sizeof(why), "refused: %s", got ? got : "");
            free(got);
            failed = 1;
        } else {
            if (has_expected || !has_answers)
                failed = check_expected(dir, out, why, sizeof(why)) != 0;
            if (!failed && has_answers)
                failed = check_answers(r, dir, &c, why, sizeof(why)) != 0;
            if (!failed && has_inbound)
                failed = check_inbound(r, dir, why, sizeof(why)) != 0;
            if (!failed)
                hostile_on_case(r, &c, out, t);
        }
    }
    if (failed) {
        printf("FAIL %s: %s\n", label, why);
        t->failed++;
    } else {
        printf("ok   %s\n", label);
        t->passed++;
    }
    ewtp_arena_free(a);
    ctl_input_free(&in);
    ewtp_errors_free(errs);
    ewtp_runner_free(r);
    for (size_t i = 0; i < n_rel && rel_paths; i++)
        free(rel_paths[i]);
    free(rel_paths);
    free_list(rel_names);
    json_decref(cc.root);
    free(cc.key_state);
}

/* Every ewtp-*.so of the directory must load with RTLD_NOW and pass the descriptor checks. */
static void check_plugins_load(const char *plugin_dir, struct check_totals *t)
{
    struct ewtp_plugin_set set;
    struct ewtp_errors *why = ewtp_errors_new();
    ewtp_plugin_set_load_dir(plugin_dir, NULL, &set, why);
    for (size_t i = 0; i < set.n; i++) {
        const struct ewtp_plugin *d = ewtp_plugin_descriptor(set.items[i]);
        printf("ok   load %s (%s %s, ABI %u.%u)\n", ewtp_plugin_path(set.items[i]), d->name,
               d->version ? d->version : "?", d->abi_major, d->abi_minor);
        t->passed++;
    }
    for (size_t i = 0; i < ewtp_errors_count(why); i++) {
        printf("FAIL load: %s\n", ewtp_errors_at(why, i)->message);
        t->failed++;
    }
    ewtp_plugin_set_free(&set);
    ewtp_errors_free(why);
}

/* The ABI of one plugin file, as the daemon's loader sees it: one line each. */
static void check_abi(const struct ewtp_plugin_handle *h, struct check_totals *t)
{
    const struct ewtp_plugin *d = ewtp_plugin_descriptor(h);
    printf("ok   load %s (%s %s, %s, sha256 %.16s)\n", ewtp_plugin_path(h), d->name,
           d->version ? d->version : "?", d->authority ? d->authority : "no authority named",
           ewtp_plugin_sha256(h));
    printf("ok   abi %u.%u (host %d.%d: same major, minor not newer), descriptor %zu bytes "
           "(host %zu, at least %zu)\n",
           d->abi_major, d->abi_minor, EWTP_ABI_MAJOR, EWTP_ABI_MINOR, d->size,
           sizeof(struct ewtp_plugin), (size_t)EWTP_PLUGIN_MIN_SIZE);
    t->passed += 2;
    char kinds[256] = "";
    for (int k = 0; k < EWTP_KIND_COUNT; k++)
        if (d->kinds & EWTP_KIND_BIT(k))
            snprintf(kinds + strlen(kinds), sizeof(kinds) - strlen(kinds), "%s%s",
                     kinds[0] ? "," : "", ewtp_kind_name((enum ewtp_kind)k));
    bool ok = kinds[0] != '\0';
    bool receives =
        d->size >= offsetof(struct ewtp_plugin, receive) + sizeof(d->receive) && d->receive != NULL;
    printf("%s destination %s, kinds %s%s%s\n", ok ? "ok  " : "FAIL", d->country,
           ok ? kinds : "(none)", receives ? ", receive" : "",
           d->batch && d->batch->max_documents ? ", batching" : "");
    ok ? t->passed++ : t->failed++;
}

/* ewtpctl plugin check PATH.so [--vectors DIR]: the plugin loads like in ewtpd, its vectors
 * hold, the hostile corpus neither crashes it nor gets a decision out of it. */
static int check_one_plugin(const char *path, const char *vectors)
{
    struct check_totals t = {.hostile = true};
    struct ewtp_plugin_handle *h = NULL;
    char *sentence = NULL;
    if (ewtp_plugin_load(path, NULL, &h, &sentence) != 0) {
        printf("FAIL load: %s\n", sentence ? sentence : path);
        free(sentence);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    check_abi(h, &t);
    const struct ewtp_plugin *d = ewtp_plugin_descriptor(h);
    char **cases = vectors ? list_dir(vectors, true) : NULL;
    if (vectors && cases == NULL) {
        printf("FAIL %s: cannot read the vectors folder: %s\n", vectors, strerror(errno));
        t.failed++;
    }
    for (size_t k = 0; cases && cases[k]; k++) {
        char dir[CASE_DIR_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", vectors, cases[k]);
        run_case(NULL, path, dir, dir, &t);
    }
    free_list(cases);
    if (t.hostile_runs == 0)
        printf("skip hostile interpret: no vector case translated to take a call from%s\n",
               vectors ? "" : " (give --vectors DIR)");
    /* receive needs no message: an instance with empty settings. */
    struct ctl_common common = {.runner = {.plugin_file = path}, .now_set = true};
    ewtp_time_parse(DEFAULT_VECTOR_NOW, &common.runner.now_ms);
    struct ewtp_runner *r = NULL;
    if (ctl_open_runner(&common, &r) == 0) {
        struct ewtp_errors *errs = ewtp_errors_new();
        struct ewtp_instance *inst = ewtp_runner_instance_named(r, d->name, errs);
        if (inst) {
            struct ctl_tally tally = {0};
            ctl_hostile_receive(ewtp_instance_plugin(inst), ewtp_instance_state(inst),
                                ewtp_runner_host(r), ewtp_runner_now(r), &tally);
            t.passed += tally.passed;
            t.failed += tally.failed;
        } else {
            char *got = ewtp_errors_to_json(errs);
            printf("FAIL create with empty settings: %s\n", got ? got : "");
            free(got);
            t.failed++;
        }
        ewtp_errors_free(errs);
    } else {
        t.failed++;
    }
    ewtp_runner_free(r);
    if (t.translated) {
        int64_t us = t.translate_ns / 1000;
        printf("time translate: %u messages, %u documents in %lld us: %lld documents/s\n",
               t.translated, t.documents, (long long)us,
               us > 0 ? (long long)t.documents * 1000000 / us : 0LL);
    }
    ewtp_plugin_unref(h);
    printf("%u passed, %u failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}

static bool is_plugin_file(const char *arg)
{
    struct stat st;
    return has_suffix(arg, ".so") || (stat(arg, &st) == 0 && S_ISREG(st.st_mode));
}

int ctl_plugin_check(int argc, char **argv)
{
    enum { OPT_VECTORS = CTL_OPT_CHAIN + 100 };
    static const struct option longopts[] = {
        {"plugin-dir", required_argument, NULL, CTL_OPT_PLUGIN_DIR},
        {"vectors", required_argument, NULL, OPT_VECTORS},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] = "plugin check PATH.so [--vectors DIR] | plugin check "
                                "[--plugin-dir DIR] [VECTORS_DIR...]";
    const char *plugin_dir = NULL, *vectors = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == CTL_OPT_PLUGIN_DIR)
            plugin_dir = optarg;
        else if (opt == OPT_VECTORS)
            vectors = optarg;
        else
            return ctl_usage_error("%s", usage);
    }
    if (optind < argc && is_plugin_file(argv[optind])) {
        if (plugin_dir || optind + 1 < argc)
            return ctl_usage_error("%s (one plugin file; its vectors with --vectors)", usage);
        return check_one_plugin(argv[optind], vectors);
    }
    if (vectors)
        return ctl_usage_error("--vectors goes with a plugin file: %s", usage);
    struct check_totals t = {0};
    char *dir = NULL;
    /* Resolved once, so that the load check and every case use the same directory. */
    if (plugin_dir == NULL)
        plugin_dir = ewtp_config_default_plugin_dir(&dir);
    check_plugins_load(plugin_dir, &t);
    for (int i = optind; i < argc; i++) {
        char **cases = list_dir(argv[i], true);
        if (cases == NULL) {
            printf("FAIL %s: cannot read the vectors folder: %s\n", argv[i], strerror(errno));
            t.failed++;
            continue;
        }
        for (size_t k = 0; cases[k]; k++) {
            char path[CASE_DIR_MAX], label[CASE_DIR_MAX];
            snprintf(path, sizeof(path), "%s/%s", argv[i], cases[k]);
            snprintf(label, sizeof(label), "%s/%s", argv[i], cases[k]);
            run_case(plugin_dir, NULL, label, path, &t);
        }
        free_list(cases);
    }
    free(dir);
    printf("%u passed, %u failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
