/* fuzz_validate.c — libFuzzer target for a plugin's validate and translate (issue 19): the
 * common message a tenant submits is the input, seeded from the plugin's golden vectors.
 * One target per plugin: EWTP_FUZZ_PLUGIN=cn|be|my|rw|et|zz (zz is plugins/template),
 * EWTP_FUZZ_PLUGIN_DIR=<build>/plugins; tests/fuzz/run.sh and make test set both.
 *
 * What a message meets is what `ewtpctl plugin check` gives a vector (daemon/host/runner.h):
 * ewtp_runner_parse (the common model, as the daemon's submit path), then
 * ewtp_runner_translate (the plugin's validate, classify and, when nothing blocks, translate);
 * after a translation, translate_batch (batching plugins) and poll (plugins that poll) on the
 * same call. Every vector of the plugin with an input.json is a case: its settings.conf,
 * call.json (op, reason, authority_ref, chain, key_state, tenant, now) and related/ messages
 * are the call's context, loaded once.
 *
 * Input (text, so that seeds are readable and tests/fuzz/seeds.py can write them):
 *   line 1   the case: a vector's folder name (one not found picks a case by its bytes)
 *   rest     the message, in its own exact-size allocation (ewtp/1 JSON)
 * Every call must return 0 or a negative code, a refusal must name a blocking error,
 * documents and requests must be readable; never a crash, leak, hang or sanitizer report. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
#error "build with -DEWTP_FUZZ_SOURCE_DIR=\"/path/to/ewtp\" (tests/fuzz/CMakeLists.txt does)"
#endif

/* The clock of a vector without call.json's "now" (ctl_check.c's DEFAULT_VECTOR_NOW). */
#define DEFAULT_NOW "2026-11-22T12:00:00Z"
#define MAX_RELATED 8

struct fuzz_case {
    char *name;
    struct ewtp_runner *runner; /* the case's settings, tenant and clock */
    struct ewtp_runner_call rc;
    json_t *call_json; /* owns rc's strings */
    char *key_state;
    struct ewtp_message *related_msgs[MAX_RELATED];
    struct ewtp_related related[MAX_RELATED];
    json_t *related_json[MAX_RELATED]; /* owns the related' strings */
};

static struct fuzz_case *cases;
static size_t n_cases;
/* Inputs that parsed, were refused by the plugin, were translated (EWTP_FUZZ_VERBOSE). */
static size_t n_parsed, n_refused, n_translated;

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fuzz_validate: %s %s\n", what, path);
    exit(1);
}

/* related/<file>.json: a message, or {"message", "state", "authority_ref", "tenant"} (the
 * wrapper ewtpctl --related reads). */
static void load_related(struct fuzz_case *fc, const char *path)
{
    size_t i = fc->rc.n_related;
    if (i == MAX_RELATED)
        return;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL)
        die("related message is not JSON:", path);
    json_t *inner = json_object_get(root, "message");
    bool wrapped = json_is_object(inner) && json_object_get(root, "schema") == NULL;
    char *text = json_dumps(wrapped ? inner : root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    struct ewtp_errors *errs = ewtp_errors_new();
    if (text == NULL ||
        ewtp_runner_parse(fc->runner, text, strlen(text), &fc->related_msgs[i], errs) != 0)
        die("related message does not parse:", path);
    free(text);
    ewtp_errors_free(errs);
    const char *tenant = wrapped ? json_string_value(json_object_get(root, "tenant")) : NULL;
    const char *state = wrapped ? json_string_value(json_object_get(root, "state")) : NULL;
    fc->related[i] = (struct ewtp_related)
        EWTP_RELATED_INIT(.msg = fc->related_msgs[i], .tenant = tenant ? tenant : "cli",
                          .state = state ? state : "accepted",
                          .authority_ref =
                              wrapped ? json_string_value(json_object_get(root, "authority_ref"))
                                      : NULL);
    fc->related_json[i] = root;
    fc->rc.n_related = i + 1;
}

/* call.json as ctl_check.c reads it. */
static void load_call(struct fuzz_case *fc, const char *dir, const char **tenant, const char **now)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/call.json", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    fc->call_json = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    if (fc->call_json == NULL)
        die("not JSON:", path);
    json_t *j = fc->call_json;
    const char *op = json_string_value(json_object_get(j, "op"));
    fc->rc.op = op && strcmp(op, "cancel") == 0 ? EWTP_OP_CANCEL : EWTP_OP_SUBMIT;
    fc->rc.authority_ref = json_string_value(json_object_get(j, "authority_ref"));
    fc->rc.cancel_reason = json_string_value(json_object_get(j, "reason"));
    *tenant = json_string_value(json_object_get(j, "tenant"));
    *now = json_string_value(json_object_get(j, "now"));
    const char *chain = json_string_value(json_object_get(j, "chain"));
    if (chain) {
        char *end = NULL;
        fc->rc.has_chain = true;
        fc->rc.chain.number = strtoull(chain, &end, 10);
        fc->rc.chain.prev_ref = end && *end == ':' && end[1] ? end + 1 : NULL;
    }
    const json_t *ks = json_object_get(j, "key_state");
    if (ks && !json_is_null(ks)) {
        fc->key_state = json_is_string(ks) ? strdup(json_string_value(ks))
                                           : json_dumps(ks, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fc->rc.key_state = fc->key_state;
        fc->rc.key_state_len = fc->key_state ? strlen(fc->key_state) : 0;
    }
}

static void load_case(const char *plugin_file, const char *vectors, const char *name)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/%s", vectors, name);
    snprintf(path, sizeof(path), "%s/input.json", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return; /* an inbound-only vector: no message */
    struct fuzz_case *fc = &cases[n_cases];
    memset(fc, 0, sizeof(*fc));
    fc->name = strdup(name);
    const char *tenant = NULL, *now = NULL;
    load_call(fc, dir, &tenant, &now);
    snprintf(path, sizeof(path), "%s/settings.conf", dir);
    struct ewtp_runner_opts o = {.plugin_file = plugin_file,
                                 .config_path = stat(path, &st) == 0 ? path : NULL,
                                 .tenant = tenant};
    if (!ewtp_time_parse(now ? now : DEFAULT_NOW, &o.now_ms))
        die("bad now in the call.json of", dir);
    struct ewtp_errors *why = ewtp_errors_new();
    if (ewtp_runner_open(&o, &fc->runner, why) != 0) {
        char *j = ewtp_errors_to_json(why);
        fprintf(stderr, "fuzz_validate: %s: %s\n", dir, j ? j : "");
        free(j);
        ewtp_errors_free(why);
        die("cannot open the runner of", plugin_file);
    }
    ewtp_errors_free(why);
    snprintf(path, sizeof(path), "%s/related", dir);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, by_name);
    for (int i = 0; i < n; i++) {
        char file[8400];
        if (strstr(names[i]->d_name, ".json") != NULL) {
            snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
            load_related(fc, file);
        }
        free(names[i]);
    }
    free(names);
    fc->rc.related = fc->rc.n_related ? fc->related : NULL;
    fc->rc.unsigned_ = true; /* as the vectors: translation, not the signer, is fuzzed */
    n_cases++;
}

static void cleanup(void)
{
    if (getenv("EWTP_FUZZ_VERBOSE"))
        fprintf(stderr,
                "fuzz_validate: %zu cases; %zu inputs parsed, %zu refused, %zu translated\n",
                n_cases, n_parsed, n_refused, n_translated);
    for (size_t i = 0; i < n_cases; i++) {
        for (size_t k = 0; k < cases[i].rc.n_related; k++) {
            ewtp_message_free(cases[i].related_msgs[k]);
            json_decref(cases[i].related_json[k]);
        }
        json_decref(cases[i].call_json);
        free(cases[i].key_state);
        free(cases[i].name);
        ewtp_runner_free(cases[i].runner);
    }
    free(cases);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *cc = getenv("EWTP_FUZZ_PLUGIN");
    const char *pdir = getenv("EWTP_FUZZ_PLUGIN_DIR");
    if (cc == NULL || pdir == NULL) {
        fprintf(stderr, "fuzz_validate: set EWTP_FUZZ_PLUGIN (cn|be|my|rw|et|zz) and "
                        "EWTP_FUZZ_PLUGIN_DIR (<build>/plugins)\n");
        exit(1);
    }
    char plugin_file[4096], vectors[4096];
    snprintf(plugin_file, sizeof(plugin_file), "%s/ewtp-%s.so", pdir, cc);
    snprintf(vectors, sizeof(vectors), "%s/plugins/%s/vectors", EWTP_FUZZ_SOURCE_DIR,
             strcmp(cc, "zz") == 0 ? "template" : cc);
    struct dirent **names = NULL;
    int n = scandir(vectors, &names, NULL, by_name);
    if (n <= 0)
        die("no vectors in", vectors);
    cases = calloc((size_t)n, sizeof(*cases));
    if (cases == NULL)
        die("out of memory for", vectors);
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.')
            load_case(plugin_file, vectors, names[i]->d_name);
        free(names[i]);
    }
    free(names);
    if (n_cases == 0)
        die("no vector with an input.json in", vectors);
    atexit(cleanup);
    return 0;
}

/* Touches every byte of a returned string, so a dangling or unterminated one is reported. */
static void check_str(const char *s)
{
    if (s)
        (void)strlen(s);
}

static void check_bytes(const void *p, size_t n)
{
    volatile unsigned char sum = 0;
    for (size_t i = 0; i < n; i++)
        sum ^= ((const unsigned char *)p)[i];
    (void)sum;
}

static void check_errors(const struct ewtp_errors *errs)
{
    for (size_t i = 0; i < ewtp_errors_count(errs); i++) {
        const struct ewtp_error *e = ewtp_errors_at(errs, i);
        if (e->pointer == NULL || e->code == NULL || e->code[0] == '\0')
            abort(); /* every error has a pointer ("" for the document) and a code */
        check_str(e->message);
    }
}

static void check_out(const struct ewtp_out *out)
{
    const struct ewtp_document *const *docs = NULL;
    size_t nd = ewtp_out_documents(out, &docs);
    for (size_t i = 0; i < nd; i++) {
        if (docs[i]->name == NULL)
            abort();
        check_str(docs[i]->content_type);
        check_bytes(docs[i]->data, docs[i]->len);
    }
    const struct ewtp_request *const *reqs = NULL;
    size_t nr = ewtp_out_requests(out, &reqs);
    for (size_t i = 0; i < nr; i++) {
        if (reqs[i]->method == NULL)
            abort();
        check_str(reqs[i]->path);
        check_str(reqs[i]->body_doc);
        for (size_t h = 0; h < reqs[i]->n_headers; h++) {
            check_str(reqs[i]->headers[h]->name);
            check_str(reqs[i]->headers[h]->value);
        }
        check_bytes(reqs[i]->body, reqs[i]->body_len);
    }
}

static const struct fuzz_case *pick_case(const char *line, size_t len)
{
    for (size_t i = 0; i < n_cases; i++)
        if (strlen(cases[i].name) == len && memcmp(cases[i].name, line, len) == 0)
            return &cases[i];
    size_t h = 0;
    for (size_t i = 0; i < len; i++)
        h = h * 31 + (unsigned char)line[i];
    return &cases[h % n_cases];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL)
        return 0;
    const struct fuzz_case *fc = pick_case((const char *)data, (size_t)(nl - data));
    size_t len = size - (size_t)(nl + 1 - data);
    char *text = malloc(len ? len : 1); /* exact size: no NUL after the message */
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_message *m = NULL;
    if (text == NULL || errs == NULL || a == NULL)
        goto out;
    memcpy(text, nl + 1, len);
    int prc = ewtp_runner_parse(fc->runner, text, len, &m, errs);
    check_errors(errs);
    if (prc != 0 || ewtp_errors_blocking(errs) > 0)
        goto out; /* refused by the common model, as the daemon's submit path does */
    n_parsed++;
    struct ewtp_call c;
    ewtp_runner_call_init(fc->runner, m, &fc->rc, a, &c);
    struct ewtp_out *out = NULL;
    int rc = ewtp_runner_translate(fc->runner, &c, &out, errs);
    check_errors(errs);
    if (rc > 0 || (rc == -EWTP_EINVAL && ewtp_errors_blocking(errs) == 0))
        abort(); /* 0 or a negative code; a refusal names what is wrong */
    n_refused += rc == -EWTP_EINVAL;
    if (rc != 0)
        goto out;
    n_translated++;
    check_out(out);
    struct ewtp_instance *inst = ewtp_runner_instance(fc->runner, m, errs);
    const struct ewtp_plugin *p = inst ? ewtp_instance_plugin(inst) : NULL;
    const void *st = inst ? ewtp_instance_state(inst) : NULL;
    if (p && p->translate_batch && p->batch && p->batch->max_documents > 0 &&
        c.op == EWTP_OP_SUBMIT) {
        const struct ewtp_call *calls[1] = {&c};
        struct ewtp_out *bout = ewtp_out_new(a);
        struct ewtp_errors *berrs = ewtp_errors_new();
        if (bout && berrs) {
            int brc = p->translate_batch(st, calls, 1, bout, berrs);
            check_errors(berrs);
            if (brc > 0)
                abort();
            if (brc == 0)
                check_out(bout);
        }
        ewtp_errors_free(berrs);
    }
    if (p && p->poll && c.op == EWTP_OP_SUBMIT) {
        struct ewtp_call pc = c;
        pc.authority_ref = fc->rc.authority_ref ? fc->rc.authority_ref : "FUZZ-REF-1";
        struct ewtp_out *pout = ewtp_out_new(a);
        if (pout) {
            int prc2 = p->poll(st, &pc, pout);
            if (prc2 > 0)
                abort();
            if (prc2 == 0)
                check_out(pout);
        }
    }
out:
    ewtp_message_free(m);
    ewtp_arena_free(a);
    ewtp_errors_free(errs);
    free(text);
    return 0;
}

#ifdef EWTP_FUZZ_LIBFUZZER
/* ---- structure-aware mutation (libFuzzer builds only) ------------------------------------
 * Most of the time the message is parsed, one value changed (json_mutate.h) and dumped back,
 * or the case line is swapped for another vector's; the rest, and anything that does not
 * parse, gets libFuzzer's own mutations. */
#include "json_mutate.h"

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    unsigned r = seed * 2654435761u + 12345u;
    const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
    if (nl == NULL || r % 10 == 0)
        return LLVMFuzzerMutate(data, size, max_size);
    size_t head = (size_t)(nl + 1 - data);
    json_t *root = json_loadb((const char *)nl + 1, size - head, 0, NULL);
    if (root == NULL)
        return LLVMFuzzerMutate(data, size, max_size);
    const char *name = NULL;
    if (r % 10 == 1 && n_cases > 0)
        name = cases[(r >> 8) % n_cases].name;
    else
        mutate_json(&root, r / 10);
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(root);
    size_t name_len = name ? strlen(name) + 1 : head;
    size_t len = text ? strlen(text) : 0;
    if (text == NULL || name_len + len > max_size) {
        free(text);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    if (name) {
        memcpy(data, name, name_len - 1);
        data[name_len - 1] = '\n';
    }
    memcpy(data + name_len, text, len);
    free(text);
    return name_len + len;
}
#endif
