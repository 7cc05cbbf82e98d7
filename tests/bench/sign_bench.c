/* sign_bench — documents translated and signed per second on one core, for any plugin
 * (MyInvois RSA, China SM2 or RSA-SHA1 ...).
 *
 *   sign_bench [--plugin-dir DIR] [--config FILE] [-n N] INPUT.json
 *
 * Loads the plugins as ewtpctl does (runner.h: the same host, key store and plugin code as
 * ewtpd's workers), parses INPUT once, then on this one thread translates it N times signed
 * (whatever the plugin signs: MyInvois document digests + RSA-2048, a CEB SM2 XML-DSig ...)
 * and N times unsigned, and prints both rates and their ratio (STYLE §6: a ratio against a
 * baseline taken in the same run). Without --config the key is the host's RSA test identity;
 * with one, its keys and the plugin settings (format = "json" ...) apply. Integer arithmetic
 * only. Exit 0, or 1 when a translation fails.
 *
 * Raw sign loop (issue 20's baseline): the host's signer is watched during one signed
 * translation (key name, algorithm, the bytes the plugin asked to sign); then the same
 * signer signs those same bytes with the same key N times, no translation around it (the
 * host's sign is EVP_DigestSign on the loaded key). Printed as "raw sign" with the number of
 * signatures a document needs, and the ratio of signed documents/s to raw signatures/s. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/plugin.h>

#include "runner.h"
#include "util.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The host's signer, watched: the first request it sees is kept for the raw loop. */
static const struct ewtp_host *real_host;
static struct ewtp_host watch_host;
static char *seen_key;
static enum ewtp_sign_alg seen_alg;
static void *seen_data;
static size_t seen_len;
static long seen_calls;

static int watch_sign(void *ctx, const char *key_name, enum ewtp_sign_alg alg, const void *data,
                      size_t len, struct ewtp_arena *a, const unsigned char **sig, size_t *sig_len)
{
    seen_calls++;
    if (seen_key == NULL && key_name != NULL && (seen_data = malloc(len ? len : 1)) != NULL) {
        seen_key = strdup(key_name);
        seen_alg = alg;
        memcpy(seen_data, data, len);
        seen_len = len;
    }
    return real_host->sign(ctx, key_name, alg, data, len, a, sig, sig_len);
}

/* n signatures of the watched request with the real signer; 0 and the elapsed ns, or -1. */
/* noinline: make bench finds it by name in callgrind's output (bench.py sign_ir). */
__attribute__((noinline)) static int raw_sign(long n, int64_t *ns)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        struct ewtp_arena *a = ewtp_arena_new();
        const unsigned char *sig = NULL;
        size_t sig_len = 0;
        int rc = a ? real_host->sign(real_host->ctx, seen_key, seen_alg, seen_data, seen_len, a,
                                     &sig, &sig_len)
                   : -EWTP_ENOMEM;
        ewtp_arena_free(a);
        if (rc != 0) {
            fprintf(stderr, "sign_bench: raw sign failed: %s\n", ewtp_strerror(rc));
            return -1;
        }
    }
    *ns = now_ns() - t0;
    return 0;
}

/* n translations; 0 and the elapsed ns, or -1. */
__attribute__((noinline)) static int run(struct ewtp_runner *r, const struct ewtp_message *m,
                                         bool signed_, long n, int64_t *ns, size_t *doc_bytes)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        struct ewtp_arena *a = ewtp_arena_new();
        struct ewtp_errors *errs = ewtp_errors_new();
        struct ewtp_runner_call rc = {.op = EWTP_OP_SUBMIT, .unsigned_ = !signed_};
        struct ewtp_call c;
        struct ewtp_out *out = NULL;
        ewtp_runner_call_init(r, m, &rc, a, &c);
        if (c.host && c.host->sign) {
            real_host = c.host;
            watch_host = *c.host;
            watch_host.sign = watch_sign;
            c.host = &watch_host;
        }
        int trc = a && errs ? ewtp_runner_translate(r, &c, &out, errs) : -EWTP_ENOMEM;
        if (trc != 0 || ewtp_errors_blocking(errs) > 0) {
            char *e = ewtp_errors_to_json(errs);
            fprintf(stderr, "sign_bench: translate failed: %s %s\n", ewtp_strerror(trc),
                    e ? e : "");
            free(e);
            ewtp_errors_free(errs);
            ewtp_arena_free(a);
            return -1;
        }
        if (i == 0) {
            const struct ewtp_document *const *d = NULL;
            *doc_bytes = ewtp_out_documents(out, &d) > 0 ? d[0]->len : 0;
        }
        ewtp_errors_free(errs);
        ewtp_arena_free(a);
    }
    *ns = now_ns() - t0;
    return 0;
}

int main(int argc, char **argv)
{
    struct ewtp_runner_opts opts = {0};
    long n = 2000;
    const char *input = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc)
            opts.plugin_dir = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            opts.config_path = argv[++i];
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else
            input = argv[i];
    }
    if (input == NULL || n <= 0) {
        fprintf(stderr, "usage: sign_bench [--plugin-dir DIR] [--config FILE] [-n N] "
                        "INPUT.json\n");
        return 2;
    }
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_runner *r = NULL;
    char *data = NULL;
    size_t len = 0;
    struct ewtp_message *m = NULL;
    int rc = 1;
    if (ewtp_read_file(input, 16u << 20, &data, &len) != 0) {
        fprintf(stderr, "sign_bench: cannot read %s\n", input);
        goto out;
    }
    /* The clock of the calls: the message's own issue time, so the 72 h window holds. */
    opts.now_ms = 0;
    if (ewtp_runner_open(&opts, &r, why) != 0 || ewtp_runner_parse(r, data, len, &m, why) != 0 ||
        ewtp_errors_blocking(why) > 0) {
        char *e = ewtp_errors_to_json(why);
        fprintf(stderr, "sign_bench: %s\n", e ? e : "cannot set up");
        free(e);
        goto out;
    }
    ewtp_runner_free(r);
    r = NULL;
    if (m->invoice && m->invoice->issued_at)
        ewtp_time_parse(m->invoice->issued_at, &opts.now_ms);
    opts.now_ms += 60000;
    if (ewtp_runner_open(&opts, &r, why) != 0)
        goto out;
    int64_t ns_s = 0, ns_u = 0;
    size_t bytes_s = 0, bytes_u = 0;
    /* Warm up (key generation for the test identity, first-use instance creation). */
    if (run(r, m, true, 3, &ns_s, &bytes_s) != 0)
        goto out;
    seen_calls = 0;
    if (run(r, m, true, n, &ns_s, &bytes_s) != 0)
        goto out;
    long signs_per_doc = seen_calls / n;
    if (run(r, m, false, n, &ns_u, &bytes_u) != 0)
        goto out;
    int64_t ns_r = 0;
    if (seen_key != NULL && raw_sign(n, &ns_r) != 0)
        goto out;
    int64_t per_s = ns_s > 0 ? (int64_t)n * 1000000000 / ns_s : 0;
    int64_t per_u = ns_u > 0 ? (int64_t)n * 1000000000 / ns_u : 0;
    int64_t ratio_x100 = ns_u > 0 ? ns_s * 100 / ns_u : 0;
    printf("signed:   %ld documents in %" PRId64 " ms = %" PRId64 " documents/s on one core "
           "(%zu bytes each)\n",
           n, ns_s / 1000000, per_s, bytes_s);
    printf("unsigned: %ld documents in %" PRId64 " ms = %" PRId64 " documents/s on one core "
           "(%zu bytes each)\n",
           n, ns_u / 1000000, per_u, bytes_u);
    printf("signed/unsigned time ratio: %" PRId64 ".%02" PRId64 "\n", ratio_x100 / 100,
           ratio_x100 % 100);
    if (seen_key != NULL) {
        int64_t per_r = ns_r > 0 ? (int64_t)n * 1000000000 / ns_r : 0;
        int64_t x1000 = per_r > 0 ? per_s * 1000 / per_r : 0;
        printf("raw sign: %ld signatures in %" PRId64 " ms = %" PRId64 " signatures/s on one "
               "core (key %s, algorithm %d, %zu bytes signed, %ld per document)\n",
               n, ns_r / 1000000, per_r, seen_key, (int)seen_alg, seen_len, signs_per_doc);
        printf("signed documents/s to raw signatures/s: %" PRId64 ".%03" PRId64 "\n", x1000 / 1000,
               x1000 % 1000);
    } else {
        printf("raw sign: none (the plugin asked the host for no signature)\n");
    }
    rc = 0;
out:
    free(seen_key);
    free(seen_data);
    ewtp_message_free(m);
    ewtp_runner_free(r);
    free(data);
    ewtp_errors_free(why);
    return rc;
}
