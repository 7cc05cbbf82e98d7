/* ctl.h — the subcommands of ewtpctl and what they share. */
#ifndef EWTP_CTL_H
#define EWTP_CTL_H

#include <stdarg.h>
#include <stdbool.h>

#include "runner.h"
#include "util.h"

/* getopt_long values of the options every offline command takes. */
enum {
    CTL_OPT_PLUGIN_DIR = 1000,
    CTL_OPT_CONFIG,
    CTL_OPT_TENANT,
    CTL_OPT_NOW,
    CTL_OPT_RELATED,
    CTL_OPT_OUT,
    CTL_OPT_UNSIGNED,
    CTL_OPT_OP,
    CTL_OPT_AUTHORITY_REF,
    CTL_OPT_REASON,
    CTL_OPT_CHAIN,
    CTL_OPT_KEY_STATE,
};

#define CTL_COMMON_LONGOPTS                                                                        \
    {"plugin-dir", required_argument, NULL, CTL_OPT_PLUGIN_DIR},                                   \
        {"config", required_argument, NULL, CTL_OPT_CONFIG},                                       \
        {"tenant", required_argument, NULL, CTL_OPT_TENANT},                                       \
    {                                                                                              \
        "now", required_argument, NULL, CTL_OPT_NOW                                                \
    }

struct ctl_common {
    struct ewtp_runner_opts runner;
    bool now_set;
};

/* 0 when opt was a common option (stored), 2 after printing a usage error, -1 otherwise. */
int ctl_parse_common(struct ctl_common *cc, int opt, const char *arg);
/* Opens the runner (clock: --now or the real time). 0, or 2 after printing why. */
int ctl_open_runner(struct ctl_common *cc, struct ewtp_runner **r);
/* Prints a usage/I/O problem on stderr; returns 2. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* {"errors":[...]} on stdout. */
void ctl_print_errors(const struct ewtp_errors *errs);

int ctl_validate(int argc, char **argv, const char *config);
int ctl_translate(int argc, char **argv, const char *config);
int ctl_plugin_check(int argc, char **argv);
/* plugin new CC [--dir DIR] [--template DIR] (ctl_new.c). */
int ctl_plugin_new(int argc, char **argv);
/* status, reload, messages, replay, retry-now, plugins over the admin socket. */
int ctl_admin(int argc, char **argv, const char *config);
/* evidence get ID [--tenant T] --out FILE | evidence verify FILE (ctl_evidence.c). */
int ctl_evidence(int argc, char **argv, const char *config);
/* ewtpctl migrate-store --from sqlite:PATH --to conninfo_file:FILE (ctl_migrate.c). */
int ctl_migrate_store(int argc, char **argv);

/* What validate and translate share with plugin check: parse the input and the related
 * messages, run the common and the plugin checks. Returns 0 valid, 1 invalid (errs holds
 * why), 2 usage/I/O (printed). *msg and the related messages are freed by
 * ctl_input_free. */
/* A related file is a plain ewtp/1 message (state "accepted", tenant "cli", no authority
 * reference), or {"message": {...}, "state": "submitted", "authority_ref": "...",
 * "tenant": "..."} to say how the gateway knows it. */
struct ctl_input {
    struct ewtp_message *msg;
    struct ewtp_message **related_msgs;
    struct ewtp_related *related;
    char **related_strings; /* state, authority_ref and tenant copies, 3 per related */
    size_t n_related;
};
int ctl_input_load(struct ewtp_runner *r, const char *path, const char *const *related_paths,
                   size_t n_related, struct ctl_input *in, struct ewtp_errors *errs);
void ctl_input_free(struct ctl_input *in);

/* Writes translate's documents and requests.json into dir. 0 or 2 (printed). */
int ctl_write_out(const struct ewtp_out *out, const char *dir);
/* requests.json as text (malloc'd), the same as ctl_write_out writes. */
char *ctl_requests_json(const struct ewtp_out *out);

#endif
