/* runner.h — one message through the common model and a plugin, without the daemon.
 *
 * The offline pipeline shared by `ewtpctl validate`, `ewtpctl translate` and `ewtpctl
 * plugin check`: load the plugins of a directory, take plugin settings (and signing keys)
 * from a configuration file when one is given or the plugin's empty defaults otherwise
 * (test identities), parse + validate the common message, route it to the plugin serving
 * its destination and kind, run the plugin's validate / translate with a fixed clock.
 * Not thread-safe; one runner per command.
 */
#ifndef EWTP_RUNNER_H
#define EWTP_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include <ewtp/plugin.h>

struct ewtp_runner;

struct ewtp_runner_opts {
    const char *plugin_dir;  /* NULL: next to the executable (build tree) or the system dir */
    const char *plugin_file; /* set: load only this .so (plugin_dir is then ignored) */
    const char *config_path; /* NULL: empty settings and test identities */
    const char *tenant;      /* NULL: "cli" */
    int64_t now_ms;          /* the clock every call sees */
};

/* 0 and a runner, or a negative code with sentences in why (bad config, no plugin dir). */
int ewtp_runner_open(const struct ewtp_runner_opts *opts, struct ewtp_runner **out,
                     struct ewtp_errors *why);
void ewtp_runner_free(struct ewtp_runner *r);

/* Parses and checks the common model (destinations served by loaded plugins admitted).
 * Same contract as ewtp_message_parse(). */
int ewtp_runner_parse(struct ewtp_runner *r, const void *data, size_t len,
                      struct ewtp_message **out, struct ewtp_errors *errs);

/* The instance serving the message (created on first use with the config's settings for
 * that plugin, or empty ones), or NULL when no loaded plugin serves its destination and
 * kind. Creation failures go into why. Borrowed from the runner. */
struct ewtp_instance *ewtp_runner_instance(struct ewtp_runner *r, const struct ewtp_message *m,
                                           struct ewtp_errors *why);

/* The instance of the loaded plugin whose descriptor name is plugin (created on first use,
 * like ewtp_runner_instance), for calls without a message (receive). */
struct ewtp_instance *ewtp_runner_instance_named(struct ewtp_runner *r, const char *plugin,
                                                 struct ewtp_errors *why);
/* The host table and clock calls get (for struct ewtp_inbound). */
const struct ewtp_host *ewtp_runner_host(struct ewtp_runner *r);
int64_t ewtp_runner_now(const struct ewtp_runner *r);

/* What a call needs beyond the message. */
struct ewtp_runner_call {
    enum ewtp_op op;
    const char *cancel_reason;
    const char *authority_ref;
    bool has_chain;          /* chain is set: the call gets a copy of it as c->chain */
    struct ewtp_chain chain; /* number and prev_ref (size is set by the runner) */
    /* The key's state blob the host would keep for the plugin (ABI 1.2), or NULL. */
    const void *key_state;
    size_t key_state_len;
    bool unsigned_;
    const struct ewtp_related *related; /* n_related; the call gets copies, as pointers */
    size_t n_related;
};

/* Fills c for m (arena a, runner's host, tenant and clock). */
void ewtp_runner_call_init(struct ewtp_runner *r, const struct ewtp_message *m,
                           const struct ewtp_runner_call *rc, struct ewtp_arena *a,
                           struct ewtp_call *c);

/* Returned when no loaded plugin serves the message's destination and kind (distinct from
 * every EWTP_E* code a plugin itself may return, such as -EWTP_ENOTFOUND for a missing key). */
#define EWTP_RUNNER_NO_PLUGIN (-1000)

/* The plugin's validate for m (the common checks are ewtp_runner_parse's); errors in errs.
 * Returns 0, or EWTP_RUNNER_NO_PLUGIN (nothing added to errs). */
int ewtp_runner_validate(struct ewtp_runner *r, const struct ewtp_call *c,
                         struct ewtp_errors *errs);
/* classify, then translate into *out (arena of c). EWTP_RUNNER_NO_PLUGIN when no plugin
 * serves m; -EWTP_EINVAL with errs when the plugin refuses the message; the plugin's own code
 * otherwise. */
int ewtp_runner_translate(struct ewtp_runner *r, const struct ewtp_call *c, struct ewtp_out **out,
                          struct ewtp_errors *errs);

#endif
