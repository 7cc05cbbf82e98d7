/* sim_internal.h — libewtp-sim's private parts, shared by its source files only. */
#ifndef EWTP_SIM_INTERNAL_H
#define EWTP_SIM_INTERNAL_H

#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include <ewtp/sim.h>

/* Fault settings; integers only (percentages, not fractions). */
struct sim_faults {
    int64_t latency_ms;
    int64_t error_rate; /* 0..100 */
    int64_t error_status;
    int64_t seed;
    int64_t force_status;
    int64_t force_count; /* how many requests one force_status setting applies to */
    int64_t force_left;  /* force_status answers still due */
    int64_t retry_after;
    int64_t rate_limit;
};

/* One received id, in arrival order. */
struct sim_rec {
    char *id;
    uint64_t count;
    int64_t first_ms;
};

struct ewtp_sim_timer {
    struct ewtp_sim_timer *prev, *next;
    struct ewtp_sim *sim;
    struct event *ev;
    ewtp_sim_timer_fn fn;
    void *arg;
    void (*free_arg)(void *arg); /* the kit's own args: freed when the timer never runs */
};

struct sim_post;    /* an outgoing callback (sim_client.c) */
struct sim_pending; /* an answer sent late (latency_ms) */

struct ewtp_sim {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *sig_term, *sig_int;
    SSL_CTX *tls;        /* server side, NULL for plain HTTP */
    SSL_CTX *client_tls; /* for https callbacks, made on first use */
    int port;

    void *dl;
    const struct ewtp_sim_module *mod;
    void *state;

    struct sim_faults faults;
    uint64_t prng;
    int64_t rate_second; /* the second rate_count counts */
    int64_t rate_count;
    uint64_t n_faults;

    struct sim_rec *recs;
    size_t n_recs, cap_recs;
    size_t *index; /* open addressing into recs (index + 1; 0 is empty) */
    size_t cap_index;
    uint64_t rec_total;

    uint64_t cb_sent, cb_delivered, cb_failed;

    struct ewtp_sim_timer timers; /* list head */
    struct sim_post *posts;       /* in flight */
    struct sim_pending *pending;  /* delayed answers */
};

/* sim_client.c */
void sim_timers_init(struct ewtp_sim *sim);
void sim_timers_free(struct ewtp_sim *sim);
void sim_posts_free(struct ewtp_sim *sim);

/* sim_util.c */
void sim_record_reset(struct ewtp_sim *sim);
/* The /_sim/received document, in the arena. */
const char *sim_record_json(struct ewtp_sim *sim, struct ewtp_arena *a);

#endif
