/* bench_translate: how many documents one core translates per second with one plugin.
 *
 *   bench_translate [--settings JSON] [--seconds S] [--iterations N] [--chain N]
 *                   [--key-state TEXT] PLUGIN.so MESSAGE.json...
 *
 * Loads the plugin as ewtpd does (dlopen RTLD_NOW|RTLD_LOCAL, the descriptor symbol), creates
 * one instance (settings from the JSON object, default {}), parses each message once, and then
 * calls translate on each message in turn, each call with a fresh arena, until S seconds of
 * this thread's CPU time have passed (default 3) or N rounds are done. It then does the same
 * for the whole per-message work of the daemon's plugin path: parse + validate + translate.
 * Throughput is counted in CPU time of the one thread (CLOCK_THREAD_CPUTIME_ID), so the
 * figure is per core whatever else the machine runs; every translate must succeed.
 * Prints one line per phase: "translate: D documents in T ms CPU = R documents/s per core",
 * then the same in messages for parse+validate+translate.
 * --chain N gives every call chain position N (plugins that number per ordering key translate
 * as at dispatch), --key-state TEXT the key's state blob (ABI 1.2, e.g. a VSDC branch's).
 * Exit 0, 1 when a translate fails, 2 on usage or load errors. */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ewtp/errors.h>
#include <ewtp/message.h>
#include <ewtp/plugin.h>
#include <ewtp/settings.h>

#define MAX_MESSAGES 64

struct input {
    const char *path;
    char *raw;
    size_t len;
    struct ewtp_message *msg;
};

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *g = realloc(buf, cap *= 2);
        if (g == NULL)
            free(buf);
        buf = g;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* --chain and --key-state: the same for every call. */
static struct ewtp_chain bench_chain = EWTP_CHAIN_INIT();
static bool bench_has_chain;
static const char *bench_key_state;

/* One translate of msg; the number of documents it produced, or -1. */
static int translate_once(const struct ewtp_plugin *p, const void *st, const struct ewtp_host *h,
                          const struct ewtp_message *msg, int64_t now_ms, bool report)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_out *out = a ? ewtp_out_new(a) : NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    int n = -1;
    if (out && errs) {
        struct ewtp_call c = {.size = sizeof(c),
                              .tenant = "bench",
                              .msg = msg,
                              .op = EWTP_OP_SUBMIT,
                              .attempt = 1,
                              .now_ms = now_ms,
                              .arena = a,
                              .host = h,
                              .unsigned_ = true,
                              .chain = bench_has_chain ? &bench_chain : NULL,
                              .key_state = bench_key_state,
                              .key_state_len = bench_key_state ? strlen(bench_key_state) : 0};
        if (p->translate(st, &c, out, errs) == 0) {
            const struct ewtp_document *const *docs = NULL;
            n = (int)ewtp_out_documents(out, &docs);
        } else if (report) {
            char *j = ewtp_errors_to_json(errs);
            fprintf(stderr, "bench_translate: translate failed: %s\n", j ? j : "");
            free(j);
        }
    }
    ewtp_errors_free(errs);
    ewtp_arena_free(a);
    return n;
}

/* Parse + validate + translate, as ewtpd does for one message (validate at the API, translate
 * in the dispatcher). 0 or -1. */
static int full_once(const struct ewtp_plugin *p, const void *st, const struct ewtp_host *h,
                     const struct input *in, int64_t now_ms)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_message *m = NULL;
    int rc = -1;
    if (errs && ewtp_message_parse(in->raw, in->len, NULL, &m, errs) == 0) {
        struct ewtp_arena *a = ewtp_arena_new();
        struct ewtp_call c = {.size = sizeof(c),
                              .tenant = "bench",
                              .msg = m,
                              .op = EWTP_OP_SUBMIT,
                              .attempt = 1,
                              .now_ms = now_ms,
                              .arena = a,
                              .host = h,
                              .unsigned_ = true,
                              .chain = bench_has_chain ? &bench_chain : NULL,
                              .key_state = bench_key_state,
                              .key_state_len = bench_key_state ? strlen(bench_key_state) : 0};
        if (a && p->validate)
            p->validate(st, &c, errs);
        ewtp_arena_free(a);
        if (ewtp_errors_blocking(errs) == 0 && translate_once(p, st, h, m, now_ms, false) > 0)
            rc = 0;
    }
    ewtp_message_free(m);
    ewtp_errors_free(errs);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_translate [--settings JSON] [--seconds S] [--iterations N] "
                    "[--chain N] [--key-state TEXT] PLUGIN.so MESSAGE.json...\n");
}

int main(int argc, char **argv)
{
    const char *settings_json = "{}";
    long seconds = 3, iterations = 0;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--settings") == 0)
            settings_json = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--iterations") == 0)
            iterations = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--chain") == 0)
            bench_has_chain = (bench_chain.number = strtoull(argv[i + 1], NULL, 10)) > 0;
        else if (strcmp(argv[i], "--key-state") == 0)
            bench_key_state = argv[i + 1];
        else {
            usage();
            return 2;
        }
    }
    if (argc - i < 2 || argc - i - 1 > MAX_MESSAGES || seconds < 0 || iterations < 0) {
        usage();
        return 2;
    }
    void *so = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
    const struct ewtp_plugin *p = so ? dlsym(so, EWTP_PLUGIN_SYMBOL) : NULL;
    if (p == NULL || p->abi_major != EWTP_ABI_MAJOR) {
        fprintf(stderr, "bench_translate: cannot load %s: %s\n", argv[i],
                so ? "no descriptor or another ABI" : dlerror());
        return 2;
    }
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_settings *s = ewtp_settings_from_json(settings_json, strlen(settings_json), why);
    struct ewtp_host host = {.size = sizeof(host)};
    void *st = NULL;
    if (s == NULL || p->create(&host, s, &st, why) != 0) {
        char *j = ewtp_errors_to_json(why);
        fprintf(stderr, "bench_translate: cannot create the instance: %s\n", j ? j : "");
        free(j);
        return 2;
    }
    struct input in[MAX_MESSAGES] = {{0}};
    size_t n = 0;
    int status = 0;
    for (int k = i + 1; k < argc; k++, n++) {
        in[n].path = argv[k];
        in[n].raw = slurp(argv[k], &in[n].len);
        struct ewtp_errors *e = ewtp_errors_new();
        if (in[n].raw == NULL ||
            ewtp_message_parse(in[n].raw, in[n].len, NULL, &in[n].msg, e) != 0) {
            fprintf(stderr, "bench_translate: %s does not parse\n", argv[k]);
            status = 2;
        }
        ewtp_errors_free(e);
    }
    /* 2026-11-22T12:00:00Z, as the golden vectors: time-window rules stay reproducible. */
    const int64_t now_ms = INT64_C(1795348800000);
    for (size_t k = 0; status == 0 && k < n; k++)
        if (translate_once(p, st, &host, in[k].msg, now_ms, true) <= 0) {
            fprintf(stderr, "bench_translate: %s does not translate\n", in[k].path);
            status = 1;
        }
    const int64_t budget = (int64_t)seconds * 1000000000;
    for (int phase = 0; status == 0 && phase < 2; phase++) {
        uint64_t docs = 0;
        long rounds = 0;
        int64_t t0 = cpu_ns(), spent = 0;
        while ((iterations ? rounds < iterations : spent < budget) && status == 0) {
            for (size_t k = 0; k < n; k++) {
                int d = phase == 0 ? translate_once(p, st, &host, in[k].msg, now_ms, false)
                                   : (full_once(p, st, &host, &in[k], now_ms) == 0 ? 1 : -1);
                if (d <= 0) {
                    fprintf(stderr, "bench_translate: %s failed in the loop\n", in[k].path);
                    status = 1;
                    break;
                }
                docs += (uint64_t)d;
            }
            rounds++;
            spent = cpu_ns() - t0;
        }
        if (status == 0 && spent > 0)
            printf("%s: %llu %s in %lld ms CPU = %llu %s/s per core\n",
                   phase == 0 ? "translate" : "parse+validate+translate", (unsigned long long)docs,
                   phase == 0 ? "documents" : "messages", (long long)(spent / 1000000),
                   (unsigned long long)(docs * UINT64_C(1000000000) / (uint64_t)spent),
                   phase == 0 ? "documents" : "messages");
    }
    for (size_t k = 0; k < n; k++) {
        ewtp_message_free(in[k].msg);
        free(in[k].raw);
    }
    p->destroy(st);
    ewtp_settings_free(s);
    ewtp_errors_free(why);
    dlclose(so);
    return status;
}
