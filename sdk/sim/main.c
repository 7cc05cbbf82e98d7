/* ewtp-sim: runs the authority simulator of one country on a local port.
 *
 *   ewtp-sim --country cc --listen ADDR:PORT [--module-dir DIR] [--set key=value]...
 *            [--tls-cert F --tls-key F [--client-ca F]] [--port-file F]
 *
 * Loads <module-dir>/ewtp-sim-<cc>.so (default module dir: <exe dir>/../plugins, so the
 * build tree works as it is), prints the bound port, stops cleanly on SIGTERM/SIGINT (exit 0).
 * Exit 2 for usage errors, 1 when the simulator cannot start. */
#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ewtp/sim.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: ewtp-sim --country CC --listen ADDR:PORT [--module-dir DIR]\n"
               "                [--set key=value]... [--tls-cert FILE --tls-key FILE "
               "[--client-ca FILE]]\n"
               "                [--port-file FILE]\n"
               "Fault settings (also POST /_sim/control): latency_ms error_rate error_status "
               "seed\n"
               "force_status force_count retry_after rate_limit; other keys go to the module.\n");
}

/* Written under a temporary name and renamed, so a test polling for it never reads half. */
static int write_port_file(const char *path, int port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static char *default_module_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return strdup("plugins");
    exe[n] = '\0';
    char *dir = dirname(exe);
    size_t len = strlen(dir) + sizeof("/../plugins");
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s/../plugins", dir);
    return out;
}

int main(int argc, char **argv)
{
    const char *country = NULL, *module_dir = NULL, *port_file = NULL;
    struct ewtp_sim_options opt = {0};
    struct ewtp_settings *settings = ewtp_settings_new();
    if (settings == NULL)
        return 1;
    int status = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            ewtp_settings_free(settings);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ewtp-sim: %s needs a value\n", a);
            usage(stderr);
            goto out;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--country") == 0) {
            country = v;
        } else if (strcmp(a, "--listen") == 0) {
            opt.listen = v;
        } else if (strcmp(a, "--module-dir") == 0) {
            module_dir = v;
        } else if (strcmp(a, "--tls-cert") == 0) {
            opt.tls_cert = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            opt.tls_key = v;
        } else if (strcmp(a, "--client-ca") == 0) {
            opt.client_ca = v;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--set") == 0) {
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v) {
                fprintf(stderr, "ewtp-sim: --set wants key=value, not \"%s\"\n", v);
                goto out;
            }
            char key[128];
            if ((size_t)(eq - v) >= sizeof(key) || memchr(v, '.', (size_t)(eq - v))) {
                fprintf(stderr, "ewtp-sim: bad setting name in \"%s\"\n", v);
                goto out;
            }
            memcpy(key, v, (size_t)(eq - v));
            key[eq - v] = '\0';
            if (ewtp_settings_set_string(settings, key, eq + 1) != 0) {
                status = 1;
                goto out;
            }
        } else {
            fprintf(stderr, "ewtp-sim: unknown option %s\n", a);
            usage(stderr);
            goto out;
        }
    }
    if (country == NULL || opt.listen == NULL) {
        fprintf(stderr, "ewtp-sim: --country and --listen are required\n");
        usage(stderr);
        goto out;
    }
    char cc[16];
    size_t cl = strlen(country);
    if (cl == 0 || cl >= sizeof(cc)) {
        fprintf(stderr, "ewtp-sim: bad --country \"%s\"\n", country);
        goto out;
    }
    for (size_t i = 0; i <= cl; i++) {
        cc[i] = (char)tolower((unsigned char)country[i]);
        if (i < cl && !isalnum((unsigned char)cc[i])) {
            fprintf(stderr, "ewtp-sim: bad --country \"%s\"\n", country);
            goto out;
        }
    }
    status = 1;
    char *dir = module_dir ? strdup(module_dir) : default_module_dir();
    char path[PATH_MAX];
    int pl = snprintf(path, sizeof(path), "%s/ewtp-sim-%s.so", dir ? dir : ".", cc);
    free(dir);
    if (pl < 0 || (size_t)pl >= sizeof(path))
        goto out;
    opt.settings = settings;
    struct ewtp_sim *sim = NULL;
    char *why = NULL;
    int rc = ewtp_sim_new(path, &opt, &sim, &why);
    ewtp_settings_free(settings);
    settings = NULL;
    if (rc != 0) {
        fprintf(stderr, "ewtp-sim: %s\n", why ? why : ewtp_strerror(rc));
        free(why);
        goto out;
    }
    /* A closed pipe (a test that stopped reading) must not kill the simulator. */
    signal(SIGPIPE, SIG_IGN);
    const struct ewtp_sim_module *m = ewtp_sim_descriptor(sim);
    const char *colon = strrchr(opt.listen, ':');
    printf("ewtp-sim: %s (%s) listening on %s://%.*s:%d\n", m->authority ? m->authority : m->name,
           m->country, opt.tls_cert ? "https" : "http", (int)(colon - opt.listen), opt.listen,
           ewtp_sim_port(sim));
    fflush(stdout);
    if (port_file && write_port_file(port_file, ewtp_sim_port(sim)) != 0) {
        fprintf(stderr, "ewtp-sim: cannot write %s\n", port_file);
        ewtp_sim_free(sim);
        goto out;
    }
    rc = ewtp_sim_run(sim, true);
    ewtp_sim_free(sim);
    status = rc == 0 ? 0 : 1;
    if (status == 0)
        fprintf(stderr, "ewtp-sim: stopped\n");
out:
    ewtp_settings_free(settings);
    return status;
}
