/* ctl_evidence.c — `ewtpctl evidence get ID [--tenant T] --out FILE` and
 * `ewtpctl evidence verify FILE` (issue 18, evidence.h).
 *
 * get reads the store of the configuration (`ewtpctl -c FILE`, default /etc/ewtpd/ewtpd.conf)
 * directly, not through the admin socket, and signs with the configured evidence key: the
 * same bundle as GET /v1/messages/{id}/evidence, also when ewtpd is not running. The SQLite
 * store may be open in ewtpd at the same time (WAL); a PostgreSQL one is shared by design.
 * verify exits 0 when the bundle is intact, 1 naming the first entry that breaks, 2 when the
 * file cannot be read. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ewtp/errors.h>

#include "config.h"
#include "ctl.h"
#include "evidence.h"
#include "hostctx.h"
#include "runner.h"
#include "store.h"
#include "util.h"

#define DEFAULT_CONFIG "/etc/ewtpd/ewtpd.conf"
#define MAX_BUNDLE (1u << 30)

static int usage(void)
{
    return ctl_usage_error("usage: ewtpctl [-c CONFIG] evidence get ID [--tenant T] --out FILE\n"
                           "       ewtpctl evidence verify FILE");
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int evidence_get(int argc, char **argv, const char *config)
{
    const char *tenant = NULL, *out = NULL;
    static const struct option opts[] = {
        {"tenant", required_argument, NULL, 't'}, {"out", required_argument, NULL, 'o'}, {0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "t:o:", opts, NULL)) != -1) {
        if (c == 't')
            tenant = optarg;
        else if (c == 'o')
            out = optarg;
        else
            return usage();
    }
    if (optind + 1 != argc || out == NULL)
        return usage();
    const char *id = argv[optind];
    const char *path = config ? config : DEFAULT_CONFIG;
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_config *cfg = NULL;
    if (errs == NULL || ewtp_config_load(path, &cfg, errs) != 0) {
        fprintf(stderr, "ewtpctl: %s: the configuration does not load\n", path);
        ctl_print_errors(errs);
        ewtp_errors_free(errs);
        return 2;
    }
    ewtp_errors_free(errs);
    int rc = 2;
    struct ewtp_store *st = NULL;
    struct ewtp_hostctx *hc = NULL;
    char *why = NULL;
    unsigned char *tar = NULL;
    size_t len = 0;
    if (tenant == NULL && cfg->n_tenants == 1)
        tenant = cfg->tenants[0].id;
    if (tenant == NULL) {
        rc = ctl_usage_error("evidence get: --tenant T is needed (the configuration has %zu "
                             "tenants)",
                             cfg->n_tenants);
        goto out;
    }
    if (cfg->evidence.key == NULL) {
        rc = ctl_usage_error("evidence get: %s has no evidence key (evidence = { key = \"NAME\"; "
                             "})",
                             path);
        goto out;
    }
    if (cfg->store.backend && strcmp(cfg->store.backend, "postgresql") == 0) {
        /* One pool connection: a bundle is one read transaction. The conninfo may hold a
         * password: dropped once connected. */
        char *conninfo = NULL;
        int prc = ewtp_store_pg_conninfo_read(cfg->store.conninfo_file, &conninfo, &why);
        if (prc == 0)
            prc = ewtp_store_open_pg(conninfo, 1, NULL, &st, &why);
        if (conninfo)
            explicit_bzero(conninfo, strlen(conninfo));
        free(conninfo);
        if (prc != 0) {
            rc = ctl_usage_error("evidence get: store %s: %s", cfg->store.conninfo_file,
                                 why ? why : "cannot open");
            goto out;
        }
    } else if (cfg->store.backend && strcmp(cfg->store.backend, "sqlite") != 0) {
        rc = ctl_usage_error("evidence get: not supported by this store backend (%s)",
                             cfg->store.backend);
        goto out;
    } else if (ewtp_store_open_sqlite(cfg->store.path, NULL, &st, &why) != 0) {
        rc = ctl_usage_error("evidence get: store %s: %s", cfg->store.path,
                             why ? why : "cannot open");
        goto out;
    }
    hc = ewtp_hostctx_new(false);
    for (size_t i = 0; hc && i < cfg->n_keys; i++) {
        const struct ewtp_key_conf *k = &cfg->keys[i];
        if (k->name && strcmp(k->name, cfg->evidence.key) == 0 &&
            (k->remote != NULL
                 ? ewtp_hostctx_add_remote_key(hc, k->name, k->remote, k->cert_file, &why)
                 : ewtp_hostctx_add_key(hc, k->name, k->key_file, k->cert_file, k->command,
                                        &why)) != 0) {
            rc = ctl_usage_error("evidence get: key %s: %s", k->name, why ? why : "cannot load");
            goto out;
        }
    }
    int brc = hc ? ewtp_evidence_bundle(st, ewtp_hostctx_table(hc), cfg->evidence.key, tenant, id,
                                        now_ms(), &tar, &len, &why)
                 : -EWTP_ENOMEM;
    if (brc == -EWTP_ENOTFOUND && why == NULL) {
        fprintf(stderr, "ewtpctl: evidence get: no message %s of tenant %s\n", id, tenant);
        rc = 1;
    } else if (brc != 0) {
        fprintf(stderr, "ewtpctl: evidence get: %s\n", why ? why : ewtp_strerror(brc));
        rc = 1;
    } else if (write_file(out, tar, len) != 0) {
        rc = ctl_usage_error("evidence get: cannot write %s: %s", out, strerror(errno));
    } else {
        rc = 0;
    }
out:
    free(tar);
    free(why);
    ewtp_hostctx_free(hc);
    if (st)
        ewtp_store_close(st);
    ewtp_config_free(cfg);
    return rc;
}

static int evidence_verify(int argc, char **argv)
{
    if (argc != 2)
        return usage();
    char *data = NULL;
    size_t len = 0;
    if (ewtp_read_file(argv[1], MAX_BUNDLE, &data, &len) != 0)
        return ctl_usage_error("evidence verify: cannot read %s", argv[1]);
    char *why = NULL;
    int rc = ewtp_evidence_verify(data, len, &why);
    free(data);
    if (rc == 0) {
        printf("%s: intact (every file, the hash chain and the head signature verify)\n", argv[1]);
    } else {
        fprintf(stderr, "%s: %s\n", argv[1], why ? why : ewtp_strerror(rc));
        rc = rc == 1 ? 1 : 2;
    }
    free(why);
    return rc;
}

int ctl_evidence(int argc, char **argv, const char *config)
{
    if (argc >= 2 && strcmp(argv[1], "get") == 0)
        return evidence_get(argc - 1, argv + 1, config);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return evidence_verify(argc - 1, argv + 1);
    return usage();
}
