/* fuzz_config.c — libFuzzer target for ewtpd's configuration loader (daemon/config.c):
 * ewtp_config_load() on a temporary file holding the input, so libconfig's parse and every
 * check of ours (types, ranges, references between sections, file settings) run as on a
 * reload. Built and run by tests/fuzz/run.sh.
 *
 * The file sits in a private temporary folder that also holds the files a configuration
 * names (dev-token, be-inbound-token, my-client-secret, key.pem, cert.pem, plugins/,
 * spool/out, spool/in), so relative paths in the seeds (conf/ files) resolve and the checks
 * past "cannot read" are reached. Inputs with "@include" are skipped: libconfig would open
 * whatever they name (/dev/zero never ends), which is libconfig's behaviour, not ours.
 * Any input must be accepted or refused with errors, never a crash, leak or sanitizer
 * report; a refusal must leave no configuration behind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ewtp/errors.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char conf_path[128];

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void mkd(const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    mkdir(p, 0700);
}

static void cleanup(void)
{
    static const char *const files[] = {"ewtpd.conf",       "dev-token", "be-inbound-token",
                                        "my-client-secret", "key.pem",   "cert.pem",
                                        "spool/out",        "spool/in",  "spool",
                                        "plugins",          "state"};
    char p[256];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        if (unlink(p) != 0)
            rmdir(p);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/ewtp-fuzz-config.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(conf_path, sizeof(conf_path), "%s/ewtpd.conf", dir);
    put("dev-token", "dev-token\n");
    put("be-inbound-token", "be-inbound-dev-token\n");
    put("my-client-secret", "secret\n");
    put("key.pem", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n");
    put("cert.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    mkd("plugins");
    mkd("state");
    mkd("spool");
    mkd("spool/out");
    mkd("spool/in");
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memmem(data, size, "@include", 8) != NULL)
        return 0;
    FILE *f = fopen(conf_path, "wb");
    if (f == NULL)
        return 0;
    size_t w = fwrite(data, 1, size, f);
    fclose(f);
    if (w != size)
        return 0;
    struct ewtp_errors *why = ewtp_errors_new();
    if (why == NULL)
        return 0;
    struct ewtp_config *c = NULL;
    int rc = ewtp_config_load(conf_path, &c, why);
    if (rc == 0) {
        if (c == NULL)
            abort(); /* success must give a configuration */
        (void)ewtp_config_line(c, "plugin_dir");
        for (size_t i = 0; i < c->n_tenants; i++)
            if (ewtp_config_tenant(c, c->tenants[i].id) == NULL)
                abort(); /* every loaded tenant must be found by its id */
        for (size_t i = 0; i < c->n_instances; i++)
            if (ewtp_config_instance(c, c->instances[i].name) == NULL)
                abort();
        ewtp_config_free(c);
    } else if (c != NULL) {
        abort(); /* a refused configuration must leave nothing behind */
    }
    ewtp_errors_free(why);
    return 0;
}
