/* ewtp/sim.h — libewtp-sim: the framework for country authority simulators.
 *
 * A simulator module is a shared object (ewtp-sim-<cc>.so, built from the country folder by
 * ewtp_add_plugin(SIM_SOURCES ...)) that exports exactly one symbol, ewtp_sim_module_v1, a
 * const struct ewtp_sim_module filled by EWTP_SIM_MODULE(). ewtp-sim (or any host using the
 * "Hosts" section below) dlopens it with RTLD_NOW|RTLD_LOCAL and accepts it when
 * abi_major == EWTP_SIM_ABI_MAJOR, abi_minor <= EWTP_SIM_ABI_MINOR and size covers
 * EWTP_SIM_MODULE_MIN_SIZE.
 *
 * The framework owns the event loop, the HTTP(S) listener, timers, outgoing callbacks, the
 * spool writer, the recording of received message ids and the fault injection common to every
 * module. A module only answers requests. Unlike a country plugin, a simulator module keeps
 * mutable state (its submissions): everything runs on the framework's single loop thread, so
 * create, handle, set, destroy and every timer function are never called concurrently, and the
 * ewtp_sim_* functions below may only be called from them.
 *
 * Requests to /_sim/... are the framework's own (never given to the module):
 *   GET  /_sim/received  {"total","unique","duplicates","ids":{ID:{"count","duplicates",
 *                        "first_ms"}},"faults","callbacks":{"sent","delivered","failed"}}
 *   GET  /_sim/control   the current fault settings
 *   POST /_sim/control   {"key": value, ...}: changes fault settings (below) or the module's
 *                        own (through set); "reset_received": true clears the recording.
 *                        Values may be JSON strings, integers, booleans; null restores the
 *                        default. Members are applied in order; an error stops at that member.
 *   GET  /_sim/health    {"status":"ok","module","country"}
 *
 * Fault settings (--set key=value or /_sim/control), applied to module requests only:
 *   latency_ms    every module answer is sent this many ms late                  (0)
 *   error_rate    integer percent of requests answered with error_status instead  (0)
 *   error_status  status of those answers                                         (503)
 *   seed          seed of the deterministic PRNG behind error_rate; setting it
 *                 restarts the sequence                                           (1)
 *   force_status  answer the next force_count requests with this status (0: off)  (0)
 *   force_count   how many requests force_status applies to                      (1)
 *   retry_after   seconds in Retry-After on injected 429/503 (0: no header)       (1)
 *   rate_limit    requests per second; more in the same second get 429           (0: off)
 * An injected answer is {"errors":[{"code":"SIM-<status>","message":"..."}]} and the module
 * never sees that request (it did not reach the authority).
 *
 * History:
 *   1.0  first release.
 *   1.1  the kit: _ex setters, bearer check, body parsing, form fields, spool scan/read/watch,
 *        receipts
 *        (ewtp_sim_deliver, _later); a module built with 1.1 needs a 1.1 library.
 */
#ifndef EWTP_SIM_H
#define EWTP_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/host.h>
#include <ewtp/settings.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EWTP_SIM_ABI_MAJOR 1
#define EWTP_SIM_ABI_MINOR 1
#define EWTP_SIM_SYMBOL "ewtp_sim_module_v1"

struct ewtp_sim; /* one running simulator; opaque */

struct ewtp_sim_header {
    const char *name, *value;
};

/* One request as the module sees it. Everything is borrowed for the duration of handle();
 * allocate what the response needs in arena (it lives until the answer has been sent). */
struct ewtp_sim_request {
    const char *method; /* "GET", "POST", "PUT", "DELETE", ... */
    const char *path;   /* as sent, without the query: "/v1/submissions/ZZ-1" */
    const char *query;  /* raw query string without '?', or NULL */
    const struct ewtp_sim_header *headers;
    size_t n_headers;
    const void *body; /* NUL-terminated copy (body_len excludes the NUL); "" when empty */
    size_t body_len;
    const char *peer;           /* "127.0.0.1:54321" */
    const char *client_subject; /* TLS client certificate subject (one line), or NULL */
    struct ewtp_arena *arena;
};

/* Case-insensitive header lookup, NULL when absent. */
const char *ewtp_sim_request_header(const struct ewtp_sim_request *r, const char *name);

/* The answer. handle() gets it zeroed; a status of 0 after handle() is a 500. Strings and the
 * body must live in the request's arena (or be static). Content-Type defaults to
 * application/json when a body is set. */
#define EWTP_SIM_MAX_HEADERS 16
struct ewtp_sim_response {
    int status;
    const char *content_type;
    struct ewtp_sim_header headers[EWTP_SIM_MAX_HEADERS];
    size_t n_headers;
    const void *body;
    size_t body_len;
};

/* Sets status, content type and body (borrowed: arena or static). */
void ewtp_sim_reply(struct ewtp_sim_response *resp, int status, const char *content_type,
                    const void *body, size_t len);
/* Sets status and a JSON body (a NUL-terminated string, borrowed). */
void ewtp_sim_reply_json(struct ewtp_sim_response *resp, int status, const char *json);
/* {"errors":[{"code","message"[,"path"]}]} built in the request's arena; path may be NULL. */
void ewtp_sim_reply_error(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                          int status, const char *code, const char *message, const char *path);
/* Adds a response header (borrowed); -EWTP_ERANGE beyond EWTP_SIM_MAX_HEADERS. */
int ewtp_sim_reply_header(struct ewtp_sim_response *resp, const char *name, const char *value);

/* Matches a path against a pattern of '/'-separated segments where "*" matches exactly one
 * non-empty segment: "/v1/submissions/ * /cancel" (without the spaces). The matched segments
 * are stored in params (up to max, copied into the arena) in order. */
bool ewtp_sim_route(const char *path, const char *pattern, struct ewtp_arena *a,
                    const char **params, size_t max);

/* Parses a setting value: a decimal integer in [min, max]. 0 or -EWTP_EINVAL. */
int ewtp_sim_parse_int(const char *value, int64_t min, int64_t max, int64_t *out);

/* ---- A module's settings (for its set and create) ---------------------------------------
 * In each, value NULL restores the default def. */
/* *field := a malloc'd copy of value (def when value is NULL; NULL when it is "" or def is
 * NULL), the old one freed. 0 or -EWTP_ENOMEM. */
int ewtp_sim_set_string(char **field, const char *value, const char *def);
/* Flags of the _ex setters: an empty value ("") restores the default def as NULL does, where
 * it would otherwise clear a string or be refused as a number. */
#define EWTP_SIM_EMPTY_IS_DEFAULT 1u
int ewtp_sim_set_string_ex(char **field, const char *value, const char *def, unsigned flags);
/* "true"/"1" or "false"/"0"; anything else adds a "type" error for key to why: -EWTP_EINVAL. */
int ewtp_sim_set_bool(const char *key, const char *value, bool def, struct ewtp_errors *why,
                      bool *out);
/* A decimal integer from min to max; else a "range" error for key: -EWTP_EINVAL. */
int ewtp_sim_set_int(const char *key, const char *value, int64_t def, int64_t min, int64_t max,
                     struct ewtp_errors *why, int64_t *out);
int ewtp_sim_set_int_ex(const char *key, const char *value, int64_t def, int64_t min, int64_t max,
                        unsigned flags, struct ewtp_errors *why, int64_t *out);
/* What a module's create does with its settings: set(state, key, NULL) for each key of
 * defaults (NULL-terminated, may be NULL; stops at the first failure), then set(state, name,
 * value) for every setting in order, collecting every error: an unknown name (set returned
 * -EWTP_ENOTFOUND) is an "unknown_member" error "unknown setting NAME (known: KNOWN)" (known
 * may be NULL). 0, or the first failure's code (-EWTP_EINVAL for an unknown name). */
typedef int (*ewtp_sim_set_fn)(void *state, const char *key, const char *value,
                               struct ewtp_errors *why);
int ewtp_sim_apply_settings(void *state, ewtp_sim_set_fn set, const char *const *defaults,
                            const struct ewtp_settings *settings, const char *known,
                            struct ewtp_errors *why);

/* ---- Request plumbing (the kit) ----------------------------------------------------------
 * What every authority does the same way, so that a module writes its routes, its validation
 * and its receipts only. Each answer below is {"errors":[{"code","message"}]} (the framework's
 * shape); a module whose authority answers in another shape passes code NULL, gets resp
 * untouched and writes its own. */

struct ewtp_json;
struct ewtp_xml_doc;
struct ewtp_xsd;

/* {"errors":[{"code","message"}...]}: every entry of errs under code (one "invalid" when
 * errs is empty). */
void ewtp_sim_reply_errors(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                           int status, const char *code, const struct ewtp_errors *errs);

/* The token of "Authorization: Bearer <token>" (the scheme in any case), NULL when there is
 * none or it is empty. */
const char *ewtp_sim_bearer(const struct ewtp_sim_request *req);
/* A 401: WWW-Authenticate "Bearer realm=\"realm\"" (with error="invalid_token" when
 * invalid_token; realm NULL: without the realm) and ewtp_sim_reply_error(code, message). */
void ewtp_sim_reply_401(const struct ewtp_sim_request *req, struct ewtp_sim_response *resp,
                        const char *realm, bool invalid_token, const char *code,
                        const char *message);
/* The bearer check most authorities make: the request's token, or NULL after a 401 (code,
 * realm as above) when it has none ("a bearer token is required") or expected is set and the
 * token differs ("the bearer token is not valid", invalid_token). */
const char *ewtp_sim_require_bearer(const struct ewtp_sim_request *req,
                                    struct ewtp_sim_response *resp, const char *expected,
                                    const char *realm, const char *code);

/* The body as a JSON object, in the request's arena. NULL when it is not one; with code set,
 * resp then holds a 400 "the body is not a JSON object" under code. */
const struct ewtp_json *ewtp_sim_body_json(const struct ewtp_sim_request *req,
                                           struct ewtp_sim_response *resp, const char *code);
/* The body as an XML document (free it with ewtp_xml_free), checked against xsd when xsd is
 * not NULL. NULL when it is not well-formed or not valid: the reasons are added to errs (may
 * be NULL) and, with code set, resp holds a 400 listing them under code. */
struct ewtp_xml_doc *ewtp_sim_body_xml(const struct ewtp_sim_request *req,
                                       struct ewtp_sim_response *resp, const struct ewtp_xsd *xsd,
                                       const char *code, struct ewtp_errors *errs);

/* The value of name in an application/x-www-form-urlencoded body ("+" and %XX decoded, in
 * the request's arena), or NULL when the body has no such field. */
const char *ewtp_sim_form_field(const struct ewtp_sim_request *req, const char *name);

/* ---- Spool folders (the kit) -------------------------------------------------------------
 * An authority reached through folders: it reads the gateway's out-folder and writes its
 * answers into the gateway's in-folder. Names starting with '.' are files being written
 * (ewtp_sim_spool_write's temporary names) and are never read. */

/* Reads dir/name (openat, O_NOFOLLOW: a link is refused; a regular file of at most max bytes)
 * into the arena, NUL-terminated. 0, -EWTP_EINVAL (a bad name, not a regular file, too large)
 * or -EWTP_EIO. */
int ewtp_sim_spool_read(const char *dir, const char *name, size_t max, struct ewtp_arena *a,
                        char **data, size_t *len);

/* One file of a scan (its bytes NUL-terminated); a lives until fn returns. */
typedef void (*ewtp_sim_spool_fn)(void *arg, const char *name, const char *data, size_t len,
                                  struct ewtp_arena *a);
/* One pass over dir: up to max_files regular files (and links, which are refused) are read
 * (up to max_size bytes each), given to fn and moved into dir/sent/ (made when missing; a
 * file that cannot be moved is deleted, so that no file is taken twice). One that cannot be
 * read is logged and moved without fn. Names are read first, then the files, oldest entry
 * first as readdir gives them. Returns how many
 * files were taken, or -EWTP_EIO when dir cannot be opened. */
int ewtp_sim_spool_scan(struct ewtp_sim *sim, const char *dir, size_t max_files, size_t max_size,
                        ewtp_sim_spool_fn fn, void *arg);
/* ewtp_sim_spool_scan of dir every poll_ms, from poll_ms from now, until unwatched (dir is
 * copied). A module keeps the handle, replaces it when its folder or period changes, and
 * unwatches it in destroy. NULL when dir is NULL or out of memory. */
struct ewtp_sim_spool_watch;
struct ewtp_sim_spool_watch *ewtp_sim_spool_watch(struct ewtp_sim *sim, const char *dir,
                                                  int64_t poll_ms, size_t max_files,
                                                  size_t max_size, ewtp_sim_spool_fn fn, void *arg);
void ewtp_sim_spool_unwatch(struct ewtp_sim_spool_watch *w); /* NULL: no-op */

/* ---- Receipts (the kit) ------------------------------------------------------------------ */

/* Where an authority's receipts go: POSTed to callback_url (with callback_token as bearer)
 * and/or written into spool_in as a file; either may be NULL. */
struct ewtp_sim_deliver_to {
    const char *callback_url, *callback_token, *spool_in;
};
/* Delivers one receipt now (name: its spool file name). 0, or the first failure. */
int ewtp_sim_deliver(struct ewtp_sim *sim, const struct ewtp_sim_deliver_to *to, const char *name,
                     const char *content_type, const void *body, size_t len);
/* A scripted receipt: the same delay_ms from now (everything copied). The timer is cancelled
 * as any other (its copies are freed then, and at shutdown). NULL when out of memory. */
struct ewtp_sim_timer *ewtp_sim_deliver_later(struct ewtp_sim *sim, int64_t delay_ms,
                                              const struct ewtp_sim_deliver_to *to,
                                              const char *name, const char *content_type,
                                              const void *body, size_t len);

/* ---- Services for modules (loop thread only) ------------------------------------------- */

/* Wall clock, ms since the epoch. */
int64_t ewtp_sim_now_ms(const struct ewtp_sim *sim);

/* A line on stderr prefixed with the module name. */
void ewtp_sim_log(struct ewtp_sim *sim, enum ewtp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records that the authority received message id (the module decides what its ids are).
 * Returns how many times it has now been received (1 the first time). 0 when out of memory. */
uint64_t ewtp_sim_record(struct ewtp_sim *sim, const char *id);

/* Delayed work (late receipts, decisions). fn runs once on the loop after delay_ms unless
 * cancelled; the handle is invalid once fn has started or after ewtp_sim_timer_cancel. Timers
 * still pending at shutdown never run (the module frees its own args in destroy). NULL when
 * out of memory. */
struct ewtp_sim_timer;
typedef void (*ewtp_sim_timer_fn)(struct ewtp_sim *sim, void *arg);
struct ewtp_sim_timer *ewtp_sim_timer_add(struct ewtp_sim *sim, int64_t delay_ms,
                                          ewtp_sim_timer_fn fn, void *arg);
void ewtp_sim_timer_cancel(struct ewtp_sim *sim, struct ewtp_sim_timer *t); /* NULL: no-op */

/* POSTs body to url (http:// or https://; TLS peers are not verified: a test authority) in the
 * background, with "Authorization: Bearer <bearer>" when bearer is not NULL. Everything is
 * copied. A transport failure or a 5xx/429 answer is retried up to 3 more times (0.5 s, 1 s,
 * 2 s apart); the outcome is counted in /_sim/received "callbacks". 0, -EWTP_EINVAL (bad
 * url) or -EWTP_ENOMEM. */
int ewtp_sim_post(struct ewtp_sim *sim, const char *url, const char *bearer,
                  const char *content_type, const void *body, size_t len);

/* Writes data as dir/name atomically (a new temporary ".name.<n>.tmp" made with O_EXCL and
 * O_NOFOLLOW in dir, fsync, rename over name, fsync of dir), so a reader of the spool
 * in-folder never sees a partial file. name must not contain '/' nor start with '.'.
 * 0, -EWTP_EINVAL or -EWTP_EIO. */
int ewtp_sim_spool_write(struct ewtp_sim *sim, const char *dir, const char *name, const void *data,
                         size_t len);

/* ---- Module descriptor ----------------------------------------------------------------- */

struct ewtp_sim_module {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t size;           /* sizeof(struct ewtp_sim_module) the module was built with */
    const char *name;      /* "zz": file name ewtp-sim-zz.so */
    const char *country;   /* "ZZ" */
    const char *authority; /* "ZZ test authority" */

    /* settings: the module's own settings (every --set key that is not a fault setting), all
     * values strings. 0 and *state, or a negative code with the reasons in why. */
    int (*create)(struct ewtp_sim *sim, const struct ewtp_settings *settings, void **state,
                  struct ewtp_errors *why);
    /* Answers one request (not /_sim/...). Returns 0; a negative code becomes a 500. */
    int (*handle)(void *state, const struct ewtp_sim_request *req, struct ewtp_sim_response *resp);
    void (*destroy)(void *state);
    /* Optional: changes one of the module's settings at run time (POST /_sim/control).
     * value NULL restores the default. -EWTP_ENOTFOUND for an unknown key, -EWTP_EINVAL with a
     * reason in why for a bad value. */
    int (*set)(void *state, const char *key, const char *value, struct ewtp_errors *why);
};

#define EWTP_SIM_MODULE_MIN_SIZE                                                                   \
    (offsetof(struct ewtp_sim_module, destroy) + sizeof(void (*)(void *)))

#define EWTP_SIM_MODULE(...)                                                                       \
    __attribute__((visibility("default")))                                                         \
    const struct ewtp_sim_module ewtp_sim_module_v1 = {.abi_major = EWTP_SIM_ABI_MAJOR,            \
                                                       .abi_minor = EWTP_SIM_ABI_MINOR,            \
                                                       .size = sizeof(struct ewtp_sim_module),     \
                                                       __VA_ARGS__}

/* ---- Hosts (ewtp-sim, tests) ----------------------------------------------------------- */

struct ewtp_sim_options {
    const char *listen;    /* "127.0.0.1:8081", "[::1]:0"; port 0 picks a free port */
    const char *tls_cert;  /* PEM certificate (chain) file: serve HTTPS; NULL: plain HTTP */
    const char *tls_key;   /* PEM private key file */
    const char *client_ca; /* PEM CA file: require a client certificate signed by it */
    const struct ewtp_settings *settings; /* --set values (strings); borrowed during new */
};

/* Loads the module at path (dlopen RTLD_NOW|RTLD_LOCAL, ABI check), applies the fault
 * settings, creates the module with the rest and binds the listener. 0 and *out (free with
 * ewtp_sim_free), or a negative code and *why (malloc'd sentences, caller frees). */
int ewtp_sim_new(const char *module_path, const struct ewtp_sim_options *opt, struct ewtp_sim **out,
                 char **why);
/* The bound port (useful with port 0). */
int ewtp_sim_port(const struct ewtp_sim *sim);
const struct ewtp_sim_module *ewtp_sim_descriptor(const struct ewtp_sim *sim);
/* Runs the loop until SIGTERM or SIGINT (when handle_signals) or ewtp_sim_stop. 0 or
 * -EWTP_EIO. */
int ewtp_sim_run(struct ewtp_sim *sim, bool handle_signals);
/* Asks a running loop to stop; safe from the loop thread only. */
void ewtp_sim_stop(struct ewtp_sim *sim);
/* Answers still delayed are sent, pending timers and callbacks are dropped, the module is
 * destroyed and unloaded. NULL is a no-op. */
void ewtp_sim_free(struct ewtp_sim *sim);

#ifdef __cplusplus
}
#endif
#endif
