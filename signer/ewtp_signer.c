/* ewtp-signer: a small agent next to a USB key, an IC card or an HSM that signs for ewtpd over
 * mutually authenticated TLS, so that the gateway needs no key hardware of its own (issue 18).
 *
 *   ewtp-signer -c FILE [-t] [--port-file FILE]
 *
 * -t checks the configuration and opens every key (PKCS#11 login included), then exits 0 or 1.
 * Runs in the foreground and logs to stderr (journald under systemd, which it tells READY=1
 * once it listens); SIGTERM or SIGINT stop it after the requests in progress. The protocol is
 * in signer_server.h, the configuration in signer_conf.h, the keys in signer_keys.h; the
 * README beside this file has all three for operators. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "signer_conf.h"
#include "signer_keys.h"
#include "signer_server.h"

static int usage(void)
{
    fprintf(stderr, "usage: ewtp-signer -c FILE [-t] [--port-file FILE]\n"
                    "  -c FILE           configuration (libconfig; see signer/README.md)\n"
                    "  -t                check the configuration and open the keys, then exit\n"
                    "  --port-file FILE  write the port listened on (for listen = \"...:0\")\n");
    return 2;
}

static int write_port(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL, *port_file = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            conf_path = argv[++i];
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else if (strcmp(argv[i], "-t") == 0)
            check_only = 1;
        else
            return usage();
    }
    if (conf_path == NULL)
        return usage();

    /* Signals are taken by sigwait in this thread alone; the workers inherit the mask. A
     * client that goes away mid-answer must not kill the agent. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct signer_conf *conf = NULL;
    struct signer_keys *keys = NULL;
    struct signer_server *srv = NULL;
    int status = 1;
    if (signer_conf_load(conf_path, &conf) != 0 || signer_keys_load(conf, &keys) != 0)
        goto out;
    if (check_only) {
        fprintf(stderr, "ewtp-signer: %s: configuration ok, %zu key(s) opened\n", conf_path,
                conf->n_keys);
        status = 0;
        goto out;
    }
    if (signer_server_new(conf, keys, &srv) != 0)
        goto out;
    if (port_file != NULL && write_port(port_file, signer_server_port(srv)) != 0) {
        fprintf(stderr, "ewtp-signer: cannot write %s\n", port_file);
        goto out;
    }
    if (signer_server_start(srv) != 0) {
        fprintf(stderr, "ewtp-signer: cannot start the worker threads\n");
        goto out;
    }
    fprintf(stderr, "ewtp-signer: listening on %s:%u (TLS, client certificates), %zu key(s)\n",
            conf->listen_host, signer_server_port(srv), conf->n_keys);
    sd_notify(0, "READY=1");
    for (;;) {
        int sig = 0;
        if (sigwait(&stop, &sig) != 0)
            break;
        if (sig == SIGHUP) {
            fprintf(stderr, "ewtp-signer: SIGHUP ignored: restart to read the configuration\n");
            continue;
        }
        fprintf(stderr, "ewtp-signer: stopping (signal %d)\n", sig);
        break;
    }
    sd_notify(0, "STOPPING=1");
    status = 0;
out:
    signer_server_free(srv);
    signer_keys_free(keys);
    signer_conf_free(conf);
    return status;
}
