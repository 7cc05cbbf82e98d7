/* ewtpctl — the admin and developer command line of ewtp.
 *
 *   ewtpctl validate  [--plugin-dir DIR] [--config FILE] [--tenant T] [--now TIME]
 *                     [--related FILE]... FILE|-
 *   ewtpctl translate [--plugin-dir DIR] [--config FILE] [--tenant T] [--now TIME] [--unsigned]
 *                     [--op cancel --authority-ref REF --reason TEXT] [--chain N:PREVREF]
 *                     --out DIR FILE|-
 *   ewtpctl plugin check [--plugin-dir DIR] [VECTORS_DIR...]
 *   ewtpctl plugin check PATH.so [--vectors DIR]
 *   ewtpctl plugin new CC [--dir DIR] [--template DIR]
 *
 * Exit codes (DESIGN.md "Fixed interfaces"): 0 valid / done, 1 invalid input (errors as
 * {"errors":[...]} on stdout), 2 usage or I/O error (a sentence on stderr).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ctl.h"

static void usage(FILE *to)
{
    fputs("usage: ewtpctl [-c FILE] COMMAND [ARGS]\n"
          "commands:\n"
          "  validate  [--plugin-dir DIR] [--config FILE] [--tenant T] [--now TIME]\n"
          "            [--related FILE]... FILE|-\n"
          "  translate [--plugin-dir DIR] [--config FILE] [--tenant T] [--now TIME] [--unsigned]\n"
          "            [--op cancel --authority-ref REF --reason TEXT] [--chain N:PREVREF]\n"
          "            [--related FILE]... [--key-state FILE]\n"
          "            --out DIR FILE|-\n"
          "  plugin check [--plugin-dir DIR] [VECTORS_DIR...]\n"
          "  plugin check PATH.so [--vectors DIR]   (ABI, vectors, hostile answers, timing)\n"
          "  plugin new CC [--dir DIR] [--template DIR]   (a plugin folder from the template)\n"
          "admin commands (a running ewtpd, found from -c FILE, default /etc/ewtpd/ewtpd.conf):\n"
          "  status | plugins | reload [--wait] | messages --state S [--limit N] [--after C]\n"
          "  replay ID [--tenant T] | retry-now ID [--tenant T]      (each takes --json)\n"
          "  chain set KEY NUMBER [PREVREF]   (the next message of ordering key KEY gets NUMBER)\n"
          "  migrate-store --from sqlite:PATH --to conninfo_file:FILE   (ewtpd stopped: the\n"
          "            SQLite store, its evidence too, into an empty PostgreSQL database,\n"
          "            in one transaction; [--without-evidence] leaves the evidence in\n"
          "            the file)\n"
          "  evidence get ID [--tenant T] --out FILE   (a message's signed evidence bundle, read\n"
          "            from the configuration's store)\n"
          "  evidence verify FILE   (0 intact; 1 naming the first entry that breaks)\n"
          "exit status: 0 ok, 1 invalid input (errors as JSON on stdout), 2 usage or I/O error\n",
          to);
}

int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ewtpctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

int ctl_parse_common(struct ctl_common *cc, int opt, const char *arg)
{
    switch (opt) {
    case CTL_OPT_PLUGIN_DIR:
        cc->runner.plugin_dir = arg;
        return 0;
    case CTL_OPT_CONFIG:
        cc->runner.config_path = arg;
        return 0;
    case CTL_OPT_TENANT:
        cc->runner.tenant = arg;
        return 0;
    case CTL_OPT_NOW:
        if (!ewtp_time_parse(arg, &cc->runner.now_ms))
            return ctl_usage_error("--now %s: not an RFC 3339 time (2026-11-22T10:00:00+08:00)",
                                   arg);
        cc->now_set = true;
        return 0;
    default:
        return -1;
    }
}

int ctl_open_runner(struct ctl_common *cc, struct ewtp_runner **r)
{
    if (!cc->now_set) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        cc->runner.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    struct ewtp_errors *why = ewtp_errors_new();
    if (why == NULL)
        return ctl_usage_error("out of memory");
    int rc = ewtp_runner_open(&cc->runner, r, why);
    /* Plugins that fail to load are reported but do not stop the others. */
    for (size_t i = 0; i < ewtp_errors_count(why); i++)
        fprintf(stderr, "ewtpctl: %s\n", ewtp_errors_at(why, i)->message);
    ewtp_errors_free(why);
    return rc == 0 ? 0 : 2;
}

void ctl_print_errors(const struct ewtp_errors *errs)
{
    char *json = ewtp_errors_to_json(errs);
    if (json) {
        puts(json);
        free(json);
    }
}

int main(int argc, char **argv)
{
    int first = 1;
    /* -c FILE before the command names the configuration (admin socket commands). */
    const char *config = NULL;
    if (argc > 2 && strcmp(argv[1], "-c") == 0) {
        config = argv[2];
        first = 3;
    }
    if (argc <= first) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[first];
    int sub_argc = argc - first;
    char **sub_argv = argv + first;
    if (strcmp(cmd, "validate") == 0)
        return ctl_validate(sub_argc, sub_argv, config);
    if (strcmp(cmd, "translate") == 0)
        return ctl_translate(sub_argc, sub_argv, config);
    if (strcmp(cmd, "plugin") == 0 && sub_argc > 1 && strcmp(sub_argv[1], "check") == 0)
        return ctl_plugin_check(sub_argc - 1, sub_argv + 1);
    if (strcmp(cmd, "plugin") == 0 && sub_argc > 1 && strcmp(sub_argv[1], "new") == 0)
        return ctl_plugin_new(sub_argc - 1, sub_argv + 1);
    if (strcmp(cmd, "migrate-store") == 0)
        return ctl_migrate_store(sub_argc, sub_argv);
    if (strcmp(cmd, "evidence") == 0)
        return ctl_evidence(sub_argc, sub_argv, config);
    static const char *const admin_cmds[] = {"status",    "reload",  "messages", "replay",
                                             "retry-now", "plugins", "chain",    NULL};
    for (size_t i = 0; admin_cmds[i]; i++)
        if (strcmp(cmd, admin_cmds[i]) == 0)
            return ctl_admin(sub_argc, sub_argv, config);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return ctl_usage_error("unknown command \"%s\"", cmd);
}
