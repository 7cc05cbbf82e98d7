/* test_store.c — the message store (daemon/store.h): one contract suite, two backends.
 *
 * Without arguments on real SQLite files in a temp dir. With --pg the shared cases run
 * against the PostgreSQL server named by EWTP_TEST_PG_CONNINFO (a libpq connection string;
 * tests/pg_test_server.sh starts a throwaway server and sets it), each case in a schema of its
 * own; the SQLite-only cases (schema upgrades of old files, direct sqlite3 access) do not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <ewtp/errors.h>

#include "api_json.h"
#include "store.h"
#include "store_sqlite.h"

#define T0 INT64_C(1795000000000) /* 2026-11-18T11:06:40Z */

struct fix {
    char dir[256];
    char path[600]; /* SQLite: the file; PostgreSQL: the conninfo of the case's schema */
    struct ewtp_store *st;
};

/* The backend under test: NULL for SQLite, else the PostgreSQL server's conninfo. */
static const char *pg_conninfo;

/* Where a store called name of the case lives, into out: a file of dir, or a fresh schema of
 * the PostgreSQL database (created here) selected through the connection's search_path. */
static void store_locate(struct fix *f, const char *name, char *out, size_t size)
{
    if (!pg_conninfo) {
        snprintf(out, size, "%s/%s.db", f->dir, name);
        return;
    }
    static atomic_int n;
    char schema[64];
    snprintf(schema, sizeof(schema), "t%ld_%d_%s", (long)getpid(), atomic_fetch_add(&n, 1), name);
    PGconn *pg = PQconnectdb(pg_conninfo);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    PGresult *r = PQexec(pg, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(pg);
    snprintf(out, size, "%s options='-csearch_path=%s'", pg_conninfo, schema);
}

static int store_open(const char *where, const struct ewtp_store_opts *opts,
                      struct ewtp_store **out, char **why)
{
    if (pg_conninfo)
        return ewtp_store_open_pg(where, 2, opts, out, why);
    return ewtp_store_open_sqlite(where, opts, out, why);
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/ewtp-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    store_locate(f, "store", f->path, sizeof(f->path));
    char *why = NULL;
    assert_int_equal(store_open(f->path, NULL, &f->st, &why), 0);
    assert_null(why);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    ewtp_store_close(f->st);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A message: canonical text built from id and a payload, hash computed from it. */
struct msgbuf {
    char canon[256];
    char hash[65];
    struct ewtp_store_accept_req req;
};

static void mk(struct msgbuf *m, const char *tenant, const char *id, const char *payload,
               const char *okey, int64_t now)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->canon, sizeof(m->canon),
             "{\"destination\":\"CN\",\"id\":\"%s\",\"kind\":\"order\",\"p\":\"%s\"}", id, payload);
    sha256_hex(m->canon, m->hash);
    m->req = (struct ewtp_store_accept_req){
        .tenant = tenant,
        .id = id,
        .kind = "order",
        .destination = "CN",
        .plugin = "cn",
        .canonical = m->canon,
        .hash = m->hash,
        .body = m->canon,
        .body_len = strlen(m->canon),
        .ordering_key = okey,
        .now = now,
    };
}

static void accept_ok(struct ewtp_store *st, const char *tenant, const char *id, const char *okey,
                      int64_t now)
{
    struct msgbuf m;
    mk(&m, tenant, id, "x", okey, now);
    enum ewtp_store_accept_result res = EWTP_STORE_CONFLICT;
    assert_int_equal(ewtp_store_accept_wait(st, &m.req, &res, NULL), 0);
    assert_int_equal(res, EWTP_STORE_NEW);
}

static json_t *status(struct ewtp_store *st, const char *tenant, const char *id)
{
    char *text = NULL;
    assert_int_equal(ewtp_api_status_json(st, tenant, id, &text), 0);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    free(text);
    return j;
}

static json_t *events(struct ewtp_store *st, const char *tenant, const char *id)
{
    char *text = NULL;
    assert_int_equal(ewtp_api_events_json(st, tenant, id, &text), 0);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    free(text);
    json_t *a = json_incref(json_object_get(j, "events"));
    json_decref(j);
    assert_true(json_is_array(a));
    return a;
}

static uint64_t key_of(struct ewtp_store *st, const char *tenant, const char *id)
{
    struct ewtp_store_msg *m = NULL;
    assert_int_equal(ewtp_store_get(st, tenant, id, &m), 0);
    uint64_t k = m->key;
    ewtp_store_msgs_free(m, 1);
    return k;
}

static enum ewtp_store_state state_of(struct ewtp_store *st, const char *tenant, const char *id)
{
    struct ewtp_store_msg *m = NULL;
    assert_int_equal(ewtp_store_get(st, tenant, id, &m), 0);
    enum ewtp_store_state s = m->state;
    ewtp_store_msgs_free(m, 1);
    return s;
}

/* ---- accept -------------------------------------------------------------------------------- */

static void test_accept_new_repeat_conflict(void **state)
{
    struct fix *f = *state;
    struct msgbuf m;
    mk(&m, "t1", "ord-1", "a", NULL, T0);
    const char *rel[] = {"order:SO-1"};
    m.req.relations = rel;
    m.req.n_relations = 1;
    m.req.warnings = "[{\"pointer\":\"/order\",\"code\":\"rule\",\"message\":\"split?\","
                     "\"severity\":\"warning\"}]";
    enum ewtp_store_accept_result res;
    enum ewtp_store_state st;
    assert_int_equal(ewtp_store_accept_wait(f->st, &m.req, &res, &st), 0);
    assert_int_equal(res, EWTP_STORE_NEW);
    assert_int_equal(st, EWTP_STORE_ACCEPTED);

    /* Same content again: a repeat with the current state, nothing new stored. */
    assert_int_equal(ewtp_store_accept_wait(f->st, &m.req, &res, &st), 0);
    assert_int_equal(res, EWTP_STORE_REPEAT);
    assert_int_equal(st, EWTP_STORE_ACCEPTED);

    /* Same id, other content: conflict. */
    struct msgbuf m2;
    mk(&m2, "t1", "ord-1", "b", NULL, T0);
    assert_int_equal(ewtp_store_accept_wait(f->st, &m2.req, &res, &st), 0);
    assert_int_equal(res, EWTP_STORE_CONFLICT);

    /* Same id in another tenant is another message. */
    mk(&m2, "t2", "ord-1", "b", NULL, T0);
    assert_int_equal(ewtp_store_accept_wait(f->st, &m2.req, &res, &st), 0);
    assert_int_equal(res, EWTP_STORE_NEW);

    json_t *j = status(f->st, "t1", "ord-1");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "ord-1");
    assert_string_equal(json_string_value(json_object_get(j, "tenant")), "t1");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "order");
    assert_string_equal(json_string_value(json_object_get(j, "destination")), "CN");
    assert_string_equal(json_string_value(json_object_get(j, "plugin")), "cn");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "accepted");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2026-11-18T11:06:40.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "next_attempt_at")),
                        "2026-11-18T11:06:40.000Z");
    assert_true(json_is_null(json_object_get(j, "authority_ref")));
    assert_int_equal(json_array_size(json_object_get(j, "receipts")), 0);
    json_t *errs = json_object_get(j, "errors");
    assert_int_equal(json_array_size(errs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errs, 0), "severity")),
                        "warning");
    json_decref(j);

    struct ewtp_store_msg *got = NULL;
    assert_int_equal(ewtp_store_get(f->st, "t1", "ord-1", &got), 0);
    assert_string_equal(got->canonical, m.canon);
    assert_int_equal(got->canonical_len, strlen(m.canon));
    assert_string_equal(got->hash, m.hash);
    ewtp_store_msgs_free(got, 1);

    /* Another tenant's id is not found, and neither is an unknown one. */
    char *text = NULL;
    assert_int_equal(ewtp_api_status_json(f->st, "t3", "ord-1", &text), -EWTP_ENOTFOUND);
    assert_int_equal(ewtp_api_status_json(f->st, "t1", "nope", &text), -EWTP_ENOTFOUND);

    json_t *ev = events(f->st, "t1", "ord-1");
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "type")),
                        "accepted");
    /* The accepted event names the digest it was accepted with. */
    json_t *detail = json_object_get(json_array_get(ev, 0), "detail");
    assert_int_equal(json_object_size(detail), 1);
    assert_string_equal(json_string_value(json_object_get(detail, "hash")), m.hash);
    json_decref(ev);

    /* Bad requests are refused up front and change nothing. */
    struct msgbuf bad;
    mk(&bad, "t1", "ord-bad", "a", NULL, T0);
    bad.req.warnings = "{not json";
    assert_int_equal(ewtp_store_accept_wait(f->st, &bad.req, NULL, NULL), -EWTP_EINVAL);
    bad.req.warnings = NULL;
    bad.req.hash = NULL;
    assert_int_equal(ewtp_store_accept_wait(f->st, &bad.req, NULL, NULL), -EWTP_EINVAL);
    struct ewtp_store_msg *none = NULL;
    assert_int_equal(ewtp_store_get(f->st, "t1", "ord-bad", &none), -EWTP_ENOTFOUND);
}

/* ---- group commit -------------------------------------------------------------------------- */

#define GC_THREADS 8
#define GC_PER 200

struct gc_ctx {
    struct ewtp_store *st;
    int thread;
    atomic_int *calls; /* per accept: how many times its callback ran */
    atomic_int *done;
    atomic_int *fails;
};

struct gc_arg {
    struct gc_ctx *ctx;
    int index;
};

static void gc_cb(void *arg, int rc, enum ewtp_store_accept_result result,
                  enum ewtp_store_state state)
{
    struct gc_arg *a = arg;
    if (rc != 0 || result != EWTP_STORE_NEW || state != EWTP_STORE_ACCEPTED)
        atomic_fetch_add(a->ctx->fails, 1);
    atomic_fetch_add(&a->ctx->calls[a->index], 1);
    atomic_fetch_add(a->ctx->done, 1);
}

static struct gc_arg gc_args[GC_THREADS * GC_PER];

static void *gc_thread(void *p)
{
    struct gc_ctx *ctx = p;
    for (int i = 0; i < GC_PER; i++) {
        int index = ctx->thread * GC_PER + i;
        char id[32];
        snprintf(id, sizeof(id), "m-%d-%d", ctx->thread, i);
        struct msgbuf m;
        mk(&m, "t1", id, "gc", NULL, T0 + index);
        gc_args[index] = (struct gc_arg){.ctx = ctx, .index = index};
        if (ewtp_store_accept_async(ctx->st, &m.req, gc_cb, &gc_args[index]) != 0)
            atomic_fetch_add(ctx->fails, 1);
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    struct fix *f = *state;
    static atomic_int calls[GC_THREADS * GC_PER];
    atomic_int done = 0, fails = 0;
    for (int i = 0; i < GC_THREADS * GC_PER; i++)
        atomic_init(&calls[i], 0);
    struct gc_ctx ctx[GC_THREADS];
    pthread_t th[GC_THREADS];
    for (int t = 0; t < GC_THREADS; t++) {
        ctx[t] = (struct gc_ctx){
            .st = f->st, .thread = t, .calls = calls, .done = &done, .fails = &fails};
        assert_int_equal(pthread_create(&th[t], NULL, gc_thread, &ctx[t]), 0);
    }
    for (int t = 0; t < GC_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int spin = 0; atomic_load(&done) < GC_THREADS * GC_PER && spin < 60000; spin++)
        usleep(1000);
    assert_int_equal(atomic_load(&done), GC_THREADS * GC_PER);
    assert_int_equal(atomic_load(&fails), 0);
    for (int i = 0; i < GC_THREADS * GC_PER; i++)
        assert_int_equal(atomic_load(&calls[i]), 1);

    struct ewtp_store_stats s;
    ewtp_store_stats(f->st, &s);
    assert_int_equal(s.accepts, GC_THREADS * GC_PER);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.queued, 0);
    /* Group commit: far fewer transactions than accepts. */
    assert_true(s.batches * 4 <= GC_THREADS * GC_PER);
    assert_true(s.max_batch > 1);
    print_message("group commit: %d accepts in %llu batches, largest %zu\n", GC_THREADS * GC_PER,
                  (unsigned long long)s.batches, s.max_batch);

    /* Every row is in the database: count it from a separate connection. */
    if (pg_conninfo) {
        PGconn *pg = PQconnectdb(f->path);
        PGresult *r = PQexec(pg, "SELECT count(*) FROM messages WHERE tenant='t1'");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(atoi(PQgetvalue(r, 0, 0)), GC_THREADS * GC_PER);
        PQclear(r);
        PQfinish(pg);
    }
    sqlite3 *db = NULL;
    if (!pg_conninfo) {
        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *q = NULL;
        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT count(*) FROM messages WHERE tenant='t1'", -1, &q, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), GC_THREADS * GC_PER);
        sqlite3_finalize(q);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
        sqlite3_finalize(q);
        sqlite3_close(db);
    }

    uint64_t depth = 0;
    int64_t age = -1;
    assert_int_equal(ewtp_store_backlog(f->st, T0 + 10000, &depth, &age), 0);
    assert_int_equal(depth, GC_THREADS * GC_PER);
    assert_int_equal(age, 10000);
}

/* Accepts still queued at close are committed and their callbacks run. */
static void test_close_flushes_queue(void **state)
{
    struct fix *f = *state;
    static atomic_int calls[50];
    atomic_int done = 0, fails = 0;
    struct gc_ctx ctx = {.st = f->st, .calls = calls, .done = &done, .fails = &fails};
    static struct gc_arg args[50];
    for (int i = 0; i < 50; i++) {
        atomic_init(&calls[i], 0);
        char id[16];
        snprintf(id, sizeof(id), "c-%d", i);
        struct msgbuf m;
        mk(&m, "t1", id, "c", NULL, T0);
        args[i] = (struct gc_arg){.ctx = &ctx, .index = i};
        assert_int_equal(ewtp_store_accept_async(f->st, &m.req, gc_cb, &args[i]), 0);
    }
    ewtp_store_close(f->st);
    assert_int_equal(atomic_load(&done), 50);
    assert_int_equal(atomic_load(&fails), 0);
    char *why = NULL;
    assert_int_equal(store_open(f->path, NULL, &f->st, &why), 0);
    uint64_t depth = 0;
    assert_int_equal(ewtp_store_backlog(f->st, T0, &depth, NULL), 0);
    assert_int_equal(depth, 50);
}

/* Blocking accepts from several threads while a dispatcher claims and records on the other
 * connection: both connections contend for SQLite's write lock and nothing may fail. */
#define CW_THREADS 8
#define CW_PER 50

struct cw_ctx {
    struct ewtp_store *st;
    int thread;
    atomic_int *bad;
};

static void *cw_accept(void *p)
{
    struct cw_ctx *ctx = p;
    for (int i = 0; i < CW_PER; i++) {
        char id[32];
        snprintf(id, sizeof(id), "w-%d-%d", ctx->thread, i);
        struct msgbuf m;
        /* Each thread its own ordering key: the dispatcher must keep per-key order. */
        char okey[16];
        snprintf(okey, sizeof(okey), "k%d", ctx->thread);
        mk(&m, "t1", id, "w", okey, T0);
        enum ewtp_store_accept_result res = EWTP_STORE_CONFLICT;
        if (ewtp_store_accept_wait(ctx->st, &m.req, &res, NULL) != 0 || res != EWTP_STORE_NEW)
            atomic_fetch_add(ctx->bad, 1);
    }
    return NULL;
}

struct cw_disp {
    struct ewtp_store *st;
    atomic_int *stop;
    atomic_int *bad;
    int delivered;
    int last[CW_THREADS]; /* last index delivered per key */
};

static void *cw_dispatch(void *p)
{
    struct cw_disp *d = p;
    for (int i = 0; i < CW_THREADS; i++)
        d->last[i] = -1;
    for (;;) {
        int stopping = atomic_load(d->stop);
        struct ewtp_store_msg *c = NULL;
        size_t n = 0;
        if (ewtp_store_claim_due(d->st, T0 + 1, 16, 60000, "d", &c, &n) != 0) {
            atomic_fetch_add(d->bad, 1);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            int th = -1, idx = -1;
            if (sscanf(c[i].id, "w-%d-%d", &th, &idx) != 2 || th < 0 || th >= CW_THREADS ||
                idx != d->last[th] + 1)
                atomic_fetch_add(d->bad, 1);
            else
                d->last[th] = idx;
            struct ewtp_store_outcome o = {.key = c[i].key,
                                           .attempt = c[i].attempts,
                                           .state = EWTP_STORE_SUBMITTED,
                                           .now = T0 + 2};
            if (ewtp_store_record_outcome(d->st, &o) != 0)
                atomic_fetch_add(d->bad, 1);
            d->delivered++;
        }
        ewtp_store_msgs_free(c, n);
        if (stopping && n == 0)
            return NULL;
    }
}

static void test_concurrent_wait_and_dispatch(void **state)
{
    struct fix *f = *state;
    atomic_int bad = 0, stop = 0;
    struct cw_ctx ctx[CW_THREADS];
    pthread_t th[CW_THREADS], disp;
    struct cw_disp d = {.st = f->st, .stop = &stop, .bad = &bad};
    assert_int_equal(pthread_create(&disp, NULL, cw_dispatch, &d), 0);
    for (int t = 0; t < CW_THREADS; t++) {
        ctx[t] = (struct cw_ctx){.st = f->st, .thread = t, .bad = &bad};
        assert_int_equal(pthread_create(&th[t], NULL, cw_accept, &ctx[t]), 0);
    }
    for (int t = 0; t < CW_THREADS; t++)
        pthread_join(th[t], NULL);
    atomic_store(&stop, 1);
    pthread_join(disp, NULL);
    assert_int_equal(atomic_load(&bad), 0);
    assert_int_equal(d.delivered, CW_THREADS * CW_PER);
    for (int t = 0; t < CW_THREADS; t++)
        assert_int_equal(d.last[t], CW_PER - 1);
    struct ewtp_store_stats s;
    ewtp_store_stats(f->st, &s);
    assert_int_equal(s.accepts, CW_THREADS * CW_PER);
    assert_int_equal(s.failed, 0);
    print_message("blocking accepts: %d in %llu batches, largest %zu\n", CW_THREADS * CW_PER,
                  (unsigned long long)s.batches, s.max_batch);
    uint64_t depth = 1;
    assert_int_equal(ewtp_store_backlog(f->st, T0, &depth, NULL), 0);
    assert_int_equal(depth, 0);
}

/* When the batch cannot commit (here: another process holds the write lock past the busy
 * timeout), every accept of it fails with an error and nothing is stored. */
static void test_failed_batch(void **state)
{
    struct fix *f = *state;
    ewtp_store_close(f->st);
    struct ewtp_store_opts opts = {.busy_timeout_ms = 100};
    assert_int_equal(ewtp_store_open_sqlite(f->path, &opts, &f->st, NULL), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct msgbuf m;
    mk(&m, "t1", "blocked", "b", NULL, T0);
    assert_int_equal(ewtp_store_accept_wait(f->st, &m.req, NULL, NULL), -EWTP_EIO);
    struct ewtp_store_stats s;
    ewtp_store_stats(f->st, &s);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.batches, 0);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct ewtp_store_msg *none = NULL;
    assert_int_equal(ewtp_store_get(f->st, "t1", "blocked", &none), -EWTP_ENOTFOUND);
    enum ewtp_store_accept_result res = EWTP_STORE_CONFLICT;
    assert_int_equal(ewtp_store_accept_wait(f->st, &m.req, &res, NULL), 0);
    assert_int_equal(res, EWTP_STORE_NEW);
}

/* ---- durability ---------------------------------------------------------------------------- */

/* A child accepts and is killed with SIGKILL right after accept_wait returned: no close, no
 * checkpoint. A fresh open must see the row. */
static void test_durable_after_kill(void **state)
{
    struct fix *f = *state;
    char path[600];
    store_locate(f, "crash", path, sizeof(path));
    /* fork() from a single-threaded process: stop the fixture's writer thread first. */
    ewtp_store_close(f->st);
    f->st = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ewtp_store *st = NULL;
        if (store_open(path, NULL, &st, NULL) != 0)
            _exit(3);
        struct msgbuf m;
        mk(&m, "t1", "durable-1", "d", "k", T0);
        enum ewtp_store_accept_result res;
        if (ewtp_store_accept_wait(st, &m.req, &res, NULL) != 0 || res != EWTP_STORE_NEW)
            _exit(4);
        /* Leave a claim behind too: crash recovery must requeue it. */
        struct ewtp_store_msg *c = NULL;
        size_t n = 0;
        if (ewtp_store_claim_due(st, T0, 1, 30000, "node-a", &c, &n) != 0 || n != 1)
            _exit(5);
        kill(getpid(), SIGKILL);
        _exit(6);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    struct ewtp_store *st = NULL;
    assert_int_equal(store_open(path, NULL, &st, NULL), 0);
    assert_int_equal(state_of(st, "t1", "durable-1"), EWTP_STORE_DELIVERING);
    size_t n = 99;
    /* Lease still valid: nothing to requeue; once expired it goes back to retrying. */
    assert_int_equal(ewtp_store_requeue_expired(st, T0 + 29999, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ewtp_store_requeue_expired(st, T0 + 30000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(state_of(st, "t1", "durable-1"), EWTP_STORE_RETRYING);
    struct ewtp_store_msg *c = NULL;
    assert_int_equal(ewtp_store_claim_due(st, T0 + 30000, 5, 1000, "node-b", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "durable-1");
    assert_int_equal(c[0].attempts, 2);
    assert_string_equal(c[0].lease_owner, "node-b");
    ewtp_store_msgs_free(c, n);
    ewtp_store_close(st);
}

/* ---- dispatcher ---------------------------------------------------------------------------- */

static void outcome(struct ewtp_store *st, uint64_t key, uint32_t attempt, enum ewtp_store_state s,
                    int64_t next, int expect_rc)
{
    struct ewtp_store_outcome o = {
        .key = key, .attempt = attempt, .state = s, .next_attempt_at = next, .now = T0 + 1};
    assert_int_equal(ewtp_store_record_outcome(st, &o), expect_rc);
}

/* A submitted outcome carries its next receipt poll (poll_at) in its own transaction: never
 * (< 0), at a time, or now (0, the default). */
static void test_outcome_poll_at(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "p-never", NULL, T0);
    accept_ok(f->st, "t1", "p-later", NULL, T0);
    accept_ok(f->st, "t1", "p-now", NULL, T0);
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 1, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        struct ewtp_store_outcome o = {.key = c[i].key,
                                       .attempt = c[i].attempts,
                                       .state = EWTP_STORE_SUBMITTED,
                                       .authority_ref = c[i].id,
                                       .poll_at = strcmp(c[i].id, "p-never") == 0   ? -1
                                                  : strcmp(c[i].id, "p-later") == 0 ? T0 + 5000
                                                                                    : 0,
                                       .now = T0 + 2};
        assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    }
    ewtp_store_msgs_free(c, n);
    /* Before T0 + 5000 only p-now is due for a poll; then p-later; p-never never. */
    struct ewtp_store_msg *p = NULL;
    assert_int_equal(ewtp_store_claim_poll(f->st, T0 + 3, 10, T0 + 100000, &p, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(p[0].id, "p-now");
    ewtp_store_msgs_free(p, n);
    assert_int_equal(ewtp_store_claim_poll(f->st, T0 + 5000, 10, T0 + 100000, &p, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(p[0].id, "p-later");
    ewtp_store_msgs_free(p, n);
    assert_int_equal(ewtp_store_claim_poll(f->st, T0 + 99999, 10, T0 + 200000, &p, &n), 0);
    assert_int_equal(n, 0);
    ewtp_store_msgs_free(p, n);
}

static void test_ordering_keys(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "a1", "k", T0);
    accept_ok(f->st, "t1", "a2", "k", T0);
    accept_ok(f->st, "t2", "a3", "k", T0); /* the key is shared across tenants */
    accept_ok(f->st, "t1", "b1", "j", T0);
    accept_ok(f->st, "t1", "c1", NULL, T0);
    accept_ok(f->st, "t1", "late", NULL, T0 + 5000);

    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[0].id, "a1");
    assert_string_equal(c[1].id, "b1");
    assert_string_equal(c[2].id, "c1");
    assert_int_equal(c[0].state, EWTP_STORE_DELIVERING);
    assert_int_equal(c[0].attempts, 1);
    assert_int_equal(c[0].lease_until, T0 + 60000);
    uint64_t a1 = c[0].key;
    ewtp_store_msgs_free(c, n);

    /* a1 in flight: a2 waits. */
    assert_int_equal(ewtp_store_claim_due(f->st, T0, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 0);
    assert_null(c);

    /* A stale attempt number or a non-outcome state is refused and changes nothing. */
    outcome(f->st, a1, 2, EWTP_STORE_SUBMITTED, 0, -EWTP_EINVAL);
    outcome(f->st, a1, 1, EWTP_STORE_DELIVERING, 0, -EWTP_EINVAL);
    assert_int_equal(state_of(f->st, "t1", "a1"), EWTP_STORE_DELIVERING);

    outcome(f->st, a1, 1, EWTP_STORE_SUBMITTED, 0, 0);
    assert_int_equal(ewtp_store_claim_due(f->st, T0, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "a2");
    uint64_t a2 = c[0].key;
    ewtp_store_msgs_free(c, n);

    /* a2 retrying later: a3 must still wait, strictly in order. */
    outcome(f->st, a2, 1, EWTP_STORE_RETRYING, T0 + 2000, 0);
    json_t *j = status(f->st, "t1", "a2");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "retrying");
    assert_string_equal(json_string_value(json_object_get(j, "next_attempt_at")),
                        "2026-11-18T11:06:42.000Z");
    json_decref(j);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 1999, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 2000, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "a2");
    assert_int_equal(c[0].attempts, 2);
    ewtp_store_msgs_free(c, n);

    /* a2 dead: it holds the key until replayed. */
    outcome(f->st, a2, 2, EWTP_STORE_DEAD, 0, 0);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 6000, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "late"); /* due at T0 + 5000, unordered */
    ewtp_store_msgs_free(c, n);

    /* Replay: dead -> accepted, attempts reset, then it goes before a3. */
    assert_int_equal(ewtp_store_replay(f->st, "t1", "a2", T0 + 7000), 0);
    assert_int_equal(ewtp_store_replay(f->st, "t1", "a2", T0 + 7000), -EWTP_EINVAL);
    assert_int_equal(ewtp_store_replay(f->st, "t1", "zz", T0 + 7000), -EWTP_ENOTFOUND);
    j = status(f->st, "t1", "a2");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "accepted");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 0);
    json_decref(j);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 7000, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "a2");
    assert_int_equal(c[0].attempts, 1);
    ewtp_store_msgs_free(c, n);
    outcome(f->st, a2, 1, EWTP_STORE_APPROVED, 0, 0);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 7000, 10, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "a3");
    assert_string_equal(c[0].tenant, "t2");
    ewtp_store_msgs_free(c, n);

    /* The audit trail of a2, in order. */
    json_t *ev = events(f->st, "t1", "a2");
    const char *want[][2] = {{"accepted", "accepted"},  {"claimed", "delivering"},
                             {"outcome", "retrying"},   {"claimed", "delivering"},
                             {"outcome", "dead"},       {"replay", "accepted"},
                             {"claimed", "delivering"}, {"outcome", "approved"}};
    assert_int_equal(json_array_size(ev), sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        assert_string_equal(json_string_value(json_object_get(e, "type")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(e, "state")), want[i][1]);
    }
    json_decref(ev);
}

static void test_retry_now(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "r1", NULL, T0);
    assert_int_equal(ewtp_store_retry_now(f->st, "t1", "r1", T0), -EWTP_EINVAL);
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0, 1, 1000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    outcome(f->st, c[0].key, 1, EWTP_STORE_RETRYING, T0 + 3600000, 0);
    ewtp_store_msgs_free(c, n);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 10, 1, 1000, "w", &c, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ewtp_store_retry_now(f->st, "t1", "r1", T0 + 10), 0);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 10, 1, 1000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].attempts, 2);
    ewtp_store_msgs_free(c, n);
}

static void test_lease_expiry(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "l1", NULL, T0);
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0, 5, 1000, "node-a", &c, &n), 0);
    assert_int_equal(n, 1);
    uint64_t key = c[0].key;
    ewtp_store_msgs_free(c, n);

    /* Close and reopen as after a crash: the claim survives, as delivering. */
    ewtp_store_close(f->st);
    assert_int_equal(store_open(f->path, NULL, &f->st, NULL), 0);
    assert_int_equal(state_of(f->st, "t1", "l1"), EWTP_STORE_DELIVERING);
    assert_int_equal(ewtp_store_requeue_expired(f->st, T0 + 999, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ewtp_store_requeue_expired(f->st, T0 + 1000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(state_of(f->st, "t1", "l1"), EWTP_STORE_RETRYING);

    /* The old holder's late answer no longer applies. */
    outcome(f->st, key, 1, EWTP_STORE_SUBMITTED, 0, -EWTP_EINVAL);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 1000, 5, 1000, "node-b", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].attempts, 2);
    ewtp_store_msgs_free(c, n);
    outcome(f->st, key, 1, EWTP_STORE_SUBMITTED, 0, -EWTP_EINVAL);
    outcome(f->st, key, 2, EWTP_STORE_SUBMITTED, 0, 0);

    json_t *ev = events(f->st, "t1", "l1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 2), "type")),
                        "lease_expired");
    json_decref(ev);
}

/* ---- chains -------------------------------------------------------------------------------- */

static uint64_t claim_one(struct ewtp_store *st, const char *id)
{
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(st, T0 + 100, 1, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, id);
    uint64_t k = c[0].key;
    ewtp_store_msgs_free(c, n);
    return k;
}

static void test_chain_atomic(void **state)
{
    struct fix *f = *state;
    int64_t num = -1;
    char *ref = NULL;
    assert_int_equal(ewtp_store_chain_get(f->st, "inv:seller-1", &num, &ref), 0);
    assert_int_equal(num, 0);
    assert_null(ref);

    struct msgbuf m;
    mk(&m, "t1", "inv-1", "1", "inv:seller-1", T0);
    m.req.needs_chain = true;
    assert_int_equal(ewtp_store_accept_wait(f->st, &m.req, NULL, NULL), 0);
    mk(&m, "t1", "inv-2", "2", "inv:seller-1", T0);
    m.req.needs_chain = true;
    assert_int_equal(ewtp_store_accept_wait(f->st, &m.req, NULL, NULL), 0);

    uint64_t k1 = claim_one(f->st, "inv-1");
    struct ewtp_store_chain_advance ch = {.key = "inv:seller-1", .number = 2, .ref = "R1"};
    struct ewtp_store_receipt rc = {.state = EWTP_STORE_SUBMITTED, .code = "0", .message = "ok"};
    struct ewtp_store_outcome o = {.key = k1,
                                   .attempt = 1,
                                   .state = EWTP_STORE_SUBMITTED,
                                   .authority_ref = "R1",
                                   .receipt = &rc,
                                   .chain = &ch,
                                   .now = T0 + 200};
    /* A gap: refused, and the outcome is not recorded either. */
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), -EWTP_ERANGE);
    assert_int_equal(state_of(f->st, "t1", "inv-1"), EWTP_STORE_DELIVERING);
    json_t *j = status(f->st, "t1", "inv-1");
    assert_int_equal(json_array_size(json_object_get(j, "receipts")), 0);
    assert_true(json_is_null(json_object_get(j, "authority_ref")));
    json_decref(j);
    assert_int_equal(ewtp_store_chain_get(f->st, "inv:seller-1", &num, NULL), 0);
    assert_int_equal(num, 0);

    ch.number = 1;
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    assert_int_equal(ewtp_store_chain_get(f->st, "inv:seller-1", &num, &ref), 0);
    assert_int_equal(num, 1);
    assert_string_equal(ref, "R1");
    free(ref);

    /* The next one: a duplicate number is refused, the next number works. */
    uint64_t k2 = claim_one(f->st, "inv-2");
    o.key = k2;
    o.authority_ref = "R2";
    ch.ref = "R2";
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), -EWTP_ERANGE);
    assert_int_equal(state_of(f->st, "t1", "inv-2"), EWTP_STORE_DELIVERING);
    ch.number = 2;
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);

    /* Survives a reopen. */
    ewtp_store_close(f->st);
    assert_int_equal(store_open(f->path, NULL, &f->st, NULL), 0);
    assert_int_equal(ewtp_store_chain_get(f->st, "inv:seller-1", &num, &ref), 0);
    assert_int_equal(num, 2);
    assert_string_equal(ref, "R2");
    free(ref);
    j = status(f->st, "t1", "inv-2");
    assert_string_equal(json_string_value(json_object_get(j, "authority_ref")), "R2");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "submitted");
    assert_true(json_is_null(json_object_get(j, "next_attempt_at")));
    json_t *r0 = json_array_get(json_object_get(j, "receipts"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "code")), "0");
    assert_string_equal(json_string_value(json_object_get(r0, "message")), "ok");
    assert_string_equal(json_string_value(json_object_get(r0, "state")), "submitted");
    json_decref(j);
}

/* A plugin's state blob and first number (ABI 1.2) with the outcome, whatever its state;
 * chain_first only for a key without a chain; ewtpctl chain set. */
static void test_chain_first_and_key_state(void **state)
{
    struct fix *f = *state;
    const char *key = "rw:ebm:t1:999991130:00";
    void *data = NULL;
    size_t len = 0;
    int64_t num = -1;
    char *ref = NULL;
    assert_int_equal(ewtp_store_key_state_get(f->st, key, &data, &len), -EWTP_ENOTFOUND);
    struct msgbuf m;
    mk(&m, "t1", "inv-1", "1", key, T0);
    m.req.needs_chain = true;
    assert_int_equal(ewtp_store_accept_wait(f->st, &m.req, NULL, NULL), 0);
    uint64_t k = claim_one(f->st, "inv-1");
    /* The device's initialisation: a retry that keeps the state and sets the first number. */
    struct ewtp_store_outcome o = {.key = k,
                                   .attempt = 1,
                                   .state = EWTP_STORE_RETRYING,
                                   .next_attempt_at = T0 + 50,
                                   .now = T0 + 50,
                                   .okey = key,
                                   .key_state = "{\"v\":1}",
                                   .key_state_len = 7,
                                   .chain_first = 41};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    assert_int_equal(ewtp_store_key_state_get(f->st, key, &data, &len), 0);
    assert_int_equal(len, 7);
    assert_string_equal(data, "{\"v\":1}");
    free(data);
    assert_int_equal(ewtp_store_chain_get(f->st, key, &num, &ref), 0);
    assert_int_equal(num, 40); /* the next message gets 41 */
    assert_null(ref);
    /* A first number never moves an existing chain. */
    k = claim_one(f->st, "inv-1");
    struct ewtp_store_chain_advance ch = {.key = key, .number = 41, .ref = "SDC/1/41"};
    o = (struct ewtp_store_outcome){.key = k,
                                    .attempt = 2,
                                    .state = EWTP_STORE_APPROVED,
                                    .authority_ref = "SDC/1/41",
                                    .chain = &ch,
                                    .now = T0 + 300,
                                    .okey = key,
                                    .key_state = "{\"v\":1,\"items\":[\"X\"]}",
                                    .key_state_len = 22,
                                    .chain_first = 7};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    assert_int_equal(ewtp_store_chain_get(f->st, key, &num, &ref), 0);
    assert_int_equal(num, 41);
    assert_string_equal(ref, "SDC/1/41");
    free(ref);
    assert_int_equal(ewtp_store_key_state_get(f->st, key, &data, &len), 0);
    assert_int_equal(len, 22);
    free(data);
    /* An admin moves the chain: the next message gets 100, after REF-99. */
    assert_int_equal(ewtp_store_chain_set(f->st, key, 0, NULL, T0), -EWTP_EINVAL);
    assert_int_equal(ewtp_store_chain_set(f->st, key, 100, "REF-99", T0 + 400), 0);
    assert_int_equal(ewtp_store_chain_get(f->st, key, &num, &ref), 0);
    assert_int_equal(num, 99);
    assert_string_equal(ref, "REF-99");
    free(ref);
    /* A state without its key is refused. */
    o.okey = NULL;
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), -EWTP_EINVAL);
}

/* ---- receipts ------------------------------------------------------------------------------ */

static void test_receipts_by_ref(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "p1", NULL, T0);
    uint64_t k = claim_one(f->st, "p1");
    struct ewtp_store_receipt ack = {.state = EWTP_STORE_SUBMITTED,
                                     .code = "2",
                                     .message = "received",
                                     .raw = "<ack>2</ack>",
                                     .raw_len = 12};
    struct ewtp_store_outcome o = {.key = k,
                                   .attempt = 1,
                                   .state = EWTP_STORE_SUBMITTED,
                                   .authority_ref = "GUID-77",
                                   .receipt = &ack,
                                   .detail = "{\"http_status\":200}",
                                   .now = T0 + 300};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);

    struct ewtp_store_msg *m = NULL;
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "GUID-77", &m), 0);
    assert_int_equal(m->key, k);
    assert_int_equal(m->key, key_of(f->st, "t1", "p1"));
    assert_string_equal(m->id, "p1");
    ewtp_store_msgs_free(m, 1);
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "be", "GUID-77", &m), -EWTP_ENOTFOUND);

    /* A polled decision with a raw answer that is not UTF-8. */
    static const unsigned char gbk[] = {0xc9, 0xf3, 0xba, 0xcb, 0x20, 0xcd, 0xa8, 0xb9, 0xfd};
    struct ewtp_store_receipt dec = {.state = EWTP_STORE_APPROVED,
                                     .code = "120",
                                     .message = "cleared",
                                     .raw = gbk,
                                     .raw_len = sizeof(gbk),
                                     .at = T0 + 400};
    struct ewtp_store_receipt_rec r = {.key = k,
                                       .set_state = true,
                                       .state = EWTP_STORE_APPROVED,
                                       .authority_ref = "INVT-2026-1",
                                       .receipt = &dec,
                                       .now = T0 + 500};
    assert_int_equal(ewtp_store_record_receipt(f->st, &r), 0);
    /* The authority replaced its reference: both the old and the new one find the message
     * (China: copNo first, then the customs invtNo). */
    struct ewtp_store_msg *alias = NULL;
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "GUID-77", &alias), 0);
    assert_int_equal(alias->key, k);
    assert_string_equal(alias->authority_ref, "INVT-2026-1");
    ewtp_store_msgs_free(alias, 1);
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "INVT-2026-1", &alias), 0);
    assert_int_equal(alias->key, k);
    ewtp_store_msgs_free(alias, 1);
    r.authority_ref = NULL;
    /* A late contradicting answer is recorded but does not change a terminal state. */
    struct ewtp_store_receipt late = {.state = EWTP_STORE_REJECTED, .code = "300"};
    r.receipt = &late;
    r.state = EWTP_STORE_REJECTED;
    r.errors = "{}"; /* errors must be an array */
    assert_int_equal(ewtp_store_record_receipt(f->st, &r), -EWTP_EINVAL);
    /* ... and replace the message's errors only when the state changes. */
    r.errors = "[{\"pointer\":\"/declaration/lines/0/amount\",\"code\":\"300\",\"message\":\"x\"}]";
    assert_int_equal(ewtp_store_record_receipt(f->st, &r), 0);
    r.errors = NULL;
    r.key = 999999;
    assert_int_equal(ewtp_store_record_receipt(f->st, &r), -EWTP_ENOTFOUND);

    json_t *j = status(f->st, "t1", "p1");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "approved");
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 0);
    json_t *rs = json_object_get(j, "receipts");
    assert_int_equal(json_array_size(rs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rs, 1), "at")),
                        "2026-11-18T11:06:40.400Z");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rs, 2), "code")), "300");
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2026-11-18T11:06:40.500Z");
    json_decref(j);

    json_t *ev = events(f->st, "t1", "p1");
    assert_int_equal(json_array_size(ev), 5); /* accepted, claimed, outcome, 2 receipts */
    json_t *d = json_object_get(json_array_get(ev, 2), "detail");
    assert_string_equal(json_string_value(json_object_get(d, "raw")), "<ack>2</ack>");
    assert_int_equal(json_integer_value(json_object_get(d, "http_status")), 200);
    assert_string_equal(json_string_value(json_object_get(d, "authority_ref")), "GUID-77");
    d = json_object_get(json_array_get(ev, 3), "detail");
    assert_null(json_object_get(d, "raw"));
    assert_string_equal(json_string_value(json_object_get(d, "raw_base64")), "yfO6yyDNqLn9");
    d = json_object_get(json_array_get(ev, 4), "detail");
    assert_true(json_is_true(json_object_get(d, "ignored")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 4), "state")),
                        "approved");
    json_decref(ev);

    /* A caller event (e.g. a cancel request) keeps the state. */
    assert_int_equal(
        ewtp_store_add_event(f->st, k, "cancel_requested", 1, "{\"reason\":\"x\"}", T0 + 600), 0);
    assert_int_equal(ewtp_store_add_event(f->st, k, "x", 1, "[1]", T0), -EWTP_EINVAL);
    ev = events(f->st, "t1", "p1");
    assert_int_equal(json_array_size(ev), 6);
    json_t *e = json_array_get(ev, 5);
    assert_string_equal(json_string_value(json_object_get(e, "type")), "cancel_requested");
    assert_string_equal(json_string_value(json_object_get(e, "state")), "approved");
    json_decref(ev);
}

/* ---- the instance secret (issue 19) -----------------------------------------------------------
 */

/* Generated once, then the same for every call, every reopen (a restart) and every other
 * connection to the store (another node): cursors and copNos keyed by it stay valid. */
static void test_instance_key(void **state)
{
    struct fix *f = *state;
    unsigned char a[32], b[32], zero[32] = {0};
    assert_int_equal(ewtp_store_instance_key(f->st, a), 0);
    assert_memory_not_equal(a, zero, 32);
    assert_int_equal(ewtp_store_instance_key(f->st, b), 0);
    assert_memory_equal(a, b, 32);
    struct ewtp_store *other = NULL;
    assert_int_equal(store_open(f->path, NULL, &other, NULL), 0);
    memset(b, 0, sizeof(b));
    assert_int_equal(ewtp_store_instance_key(other, b), 0);
    assert_memory_equal(a, b, 32);
    ewtp_store_close(other);
    ewtp_store_close(f->st);
    assert_int_equal(store_open(f->path, NULL, &f->st, NULL), 0);
    memset(b, 0, sizeof(b));
    assert_int_equal(ewtp_store_instance_key(f->st, b), 0);
    assert_memory_equal(a, b, 32);
}

/* ---- references across tenants (issue 19) --------------------------------------------------- */

/* A document id kept with the outcome finds its message; a reference that messages of two
 * tenants hold (the same business key) finds nothing rather than the newest. */
static void test_refs_across_tenants(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "ta", "x1", NULL, T0);
    uint64_t ka = claim_one(f->st, "x1");
    struct ewtp_store_outcome o = {.key = ka,
                                   .attempt = 1,
                                   .state = EWTP_STORE_SUBMITTED,
                                   .authority_ref = "CEB311:P:SO-1",
                                   .doc_ref = "doc:GUID-A",
                                   .now = T0 + 200};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    struct ewtp_store_msg *m = NULL;
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "CEB311:P:SO-1", &m), 0);
    assert_int_equal(m->key, ka);
    ewtp_store_msgs_free(m, 1);
    /* Another tenant's message with the same business key, newer. */
    accept_ok(f->st, "tb", "x1", NULL, T0 + 300);
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 400, 1, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    uint64_t kb = c[0].key;
    ewtp_store_msgs_free(c, n);
    o.key = kb;
    o.doc_ref = "doc:GUID-B";
    o.now = T0 + 500;
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "CEB311:P:SO-1", &m),
                     -EWTP_ENOTFOUND);
    /* Each document id finds its own message, under its plugin only. */
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "doc:GUID-A", &m), 0);
    assert_int_equal(m->key, ka);
    assert_string_equal(m->tenant, "ta");
    ewtp_store_msgs_free(m, 1);
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "doc:GUID-B", &m), 0);
    assert_int_equal(m->key, kb);
    assert_string_equal(m->tenant, "tb");
    ewtp_store_msgs_free(m, 1);
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "be", "doc:GUID-A", &m),
                     -EWTP_ENOTFOUND);
}

/* ---- relations ----------------------------------------------------------------------------- */

static void accept_rel(struct ewtp_store *st, const char *tenant, const char *id,
                       const char *const *rel, size_t n)
{
    struct msgbuf m;
    mk(&m, tenant, id, id, NULL, T0);
    m.req.relations = rel;
    m.req.n_relations = n;
    assert_int_equal(ewtp_store_accept_wait(st, &m.req, NULL, NULL), 0);
}

static void test_relations(void **state)
{
    struct fix *f = *state;
    const char *r1[] = {"order:SO-1"};
    const char *r2[] = {"order:SO-1", "waybill:W1"};
    const char *r3[] = {"waybill:W1", "waybill:W1"};
    const char *r4[] = {"other"};
    accept_rel(f->st, "t1", "m1", r1, 1);
    accept_rel(f->st, "t2", "m2", r2, 2);
    accept_rel(f->st, "t1", "m3", r3, 2);
    accept_rel(f->st, "t1", "m4", r4, 1);

    struct ewtp_store_msg *v = NULL;
    size_t n = 0;
    const char *q1[] = {"order:SO-1"};
    assert_int_equal(ewtp_store_related(f->st, q1, 1, "t1", "m1", &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].tenant, "t2");
    assert_string_equal(v[0].id, "m2");
    assert_non_null(strstr(v[0].canonical, "\"p\":\"m2\""));
    assert_int_equal(v[0].state, EWTP_STORE_ACCEPTED);
    ewtp_store_msgs_free(v, n);

    const char *q2[] = {"order:SO-1", "waybill:W1"};
    assert_int_equal(ewtp_store_related(f->st, q2, 2, "t2", "m2", &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "m3"); /* newest first (issue 19) */
    assert_string_equal(v[1].id, "m1");
    ewtp_store_msgs_free(v, n);

    /* Without exclusion: each message once even when it matches two keys. */
    assert_int_equal(ewtp_store_related(f->st, q2, 2, NULL, NULL, &v, &n), 0);
    assert_int_equal(n, 3);
    ewtp_store_msgs_free(v, n);

    const char *q3[] = {"nothing"};
    assert_int_equal(ewtp_store_related(f->st, q3, 1, NULL, NULL, &v, &n), 0);
    assert_int_equal(n, 0);
}

/* ---- waiting for another message ---------------------------------------------------------- */

static void accept_waiting(struct ewtp_store *st, const char *id, const char *key,
                           enum ewtp_store_state need, int64_t until)
{
    struct msgbuf m;
    mk(&m, "t1", id, id, NULL, T0);
    m.req.wait_key = key;
    m.req.wait_state = need;
    m.req.wait_until = until;
    assert_int_equal(ewtp_store_accept_wait(st, &m.req, NULL, NULL), 0);
}

/* Claims everything due at now; returns the count and the first key (0 when none). */
static size_t claim_all(struct ewtp_store *st, int64_t now, const char *first_id, uint64_t *key)
{
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(st, now, 10, 60000, "w", &c, &n), 0);
    if (first_id) {
        assert_true(n >= 1);
        assert_string_equal(c[0].id, first_id);
    }
    if (key)
        *key = n ? c[0].key : 0;
    ewtp_store_msgs_free(c, n);
    return n;
}

static enum ewtp_store_wait decide(struct ewtp_store *st, const char *id, int64_t now, char **cause)
{
    struct ewtp_store_msg *m = NULL;
    assert_int_equal(ewtp_store_get(st, "t1", id, &m), 0);
    enum ewtp_store_wait w = ewtp_store_wait_decide(st, m, now, cause);
    ewtp_store_msgs_free(m, 1);
    return w;
}

static void test_wait_for_approved(void **state)
{
    struct fix *f = *state;
    const char *rel[] = {"inv:T:INV-1"};
    accept_rel(f->st, "t2", "orig", rel, 1); /* the original may be another tenant's */
    accept_waiting(f->st, "note", "inv:T:INV-1", EWTP_STORE_APPROVED, T0 + 60000);

    /* Only the original is due: the note waits for it, whatever its place in the queue. */
    uint64_t k = 0;
    assert_int_equal(claim_all(f->st, T0 + 1, "orig", &k), 1);
    char *cause = NULL;
    assert_int_equal(decide(f->st, "note", T0 + 1, &cause), EWTP_STORE_WAIT_PENDING);
    assert_null(cause);
    outcome(f->st, k, 1, EWTP_STORE_SUBMITTED, 0, 0);
    assert_int_equal(claim_all(f->st, T0 + 2, NULL, NULL), 0); /* submitted is not approved */
    struct ewtp_store_receipt rc = {.state = EWTP_STORE_APPROVED, .code = "Valid"};
    struct ewtp_store_receipt_rec r = {
        .key = k, .set_state = true, .state = EWTP_STORE_APPROVED, .receipt = &rc, .now = T0 + 3};
    assert_int_equal(ewtp_store_record_receipt(f->st, &r), 0);
    assert_int_equal(claim_all(f->st, T0 + 4, "note", NULL), 1);
    assert_int_equal(decide(f->st, "note", T0 + 4, &cause), EWTP_STORE_WAIT_READY);
    assert_null(cause);
}

/* A batch of receipts recorded with durability deferred (the spool scan's) shares one WAL
 * sync: each is visible once recorded, and ewtp_store_durable_end makes them durable with a
 * single sync; without the deferral each receipt waits for a sync of its own. */
static void test_durable_deferred_batch(void **state)
{
    struct fix *f = *state;
    static const char *ids[] = {"d1", "d2", "d3"};
    uint64_t keys[3];
    for (int i = 0; i < 3; i++) {
        accept_ok(f->st, "t1", ids[i], NULL, T0);
        keys[i] = claim_one(f->st, ids[i]);
        outcome(f->st, keys[i], 1, EWTP_STORE_SUBMITTED, 0, 0);
    }
    struct ewtp_store_receipt rc = {.state = EWTP_STORE_APPROVED, .code = "120"};
    struct ewtp_store_receipt_rec r = {
        .set_state = true, .state = EWTP_STORE_APPROVED, .receipt = &rc, .now = T0 + 3};

    uint64_t before = ewtp_store_sqlite_wal_syncs();
    ewtp_store_durable_defer(f->st);
    for (int i = 0; i < 3; i++) {
        r.key = keys[i];
        assert_int_equal(ewtp_store_record_receipt(f->st, &r), 0);
        json_t *j = status(f->st, "t1", ids[i]);
        assert_string_equal(json_string_value(json_object_get(j, "state")), "approved");
        json_decref(j);
    }
    assert_int_equal(ewtp_store_sqlite_wal_syncs(), before);
    assert_int_equal(ewtp_store_durable_end(f->st), 0);
    assert_int_equal(ewtp_store_sqlite_wal_syncs(), before + 1);
    /* Nothing deferred: ending at once is 0 and syncs nothing. */
    ewtp_store_durable_defer(f->st);
    assert_int_equal(ewtp_store_durable_end(f->st), 0);
    assert_int_equal(ewtp_store_sqlite_wal_syncs(), before + 1);

    /* Undeferred, a receipt returns once its own sync is done. */
    struct ewtp_store_receipt late = {.state = EWTP_STORE_APPROVED, .code = "399"};
    r.receipt = &late;
    r.set_state = false;
    for (int i = 0; i < 3; i++) {
        r.key = keys[i];
        assert_int_equal(ewtp_store_record_receipt(f->st, &r), 0);
    }
    assert_int_equal(ewtp_store_sqlite_wal_syncs(), before + 4);
}

static void test_wait_failed_and_timeout(void **state)
{
    struct fix *f = *state;
    const char *rel[] = {"inv:T:INV-2"};
    accept_rel(f->st, "t1", "orig2", rel, 1);
    accept_waiting(f->st, "note2", "inv:T:INV-2", EWTP_STORE_SUBMITTED, T0 + 60000);
    accept_waiting(f->st, "note3", "inv:T:NEVER", EWTP_STORE_SUBMITTED, T0 + 60000);
    uint64_t k = 0;
    assert_int_equal(claim_all(f->st, T0 + 1, "orig2", &k), 1);
    outcome(f->st, k, 1, EWTP_STORE_REJECTED, 0, 0);

    /* The rejected original decides the note: claimed, then rejected by its caller. */
    assert_int_equal(claim_all(f->st, T0 + 2, "note2", NULL), 1);
    char *cause = NULL;
    assert_int_equal(decide(f->st, "note2", T0 + 2, &cause), EWTP_STORE_WAIT_FAILED);
    assert_non_null(cause);
    assert_non_null(strstr(cause, "inv:T:INV-2"));
    assert_null(strstr(cause, "orig2")); /* never the other message's id */
    free(cause);

    /* Nothing ever came for note3: due only when its wait ends. */
    assert_int_equal(claim_all(f->st, T0 + 59999, NULL, NULL), 0);
    assert_int_equal(claim_all(f->st, T0 + 60000, "note3", NULL), 1);
    assert_int_equal(decide(f->st, "note3", T0 + 60000, &cause), EWTP_STORE_WAIT_TIMEOUT);
    assert_non_null(strstr(cause, "wait timeout"));
    free(cause);
}

/* ---- operations (durable cancel) ----------------------------------------------------------- */

static size_t op_claim(struct ewtp_store *st, int64_t now, struct ewtp_store_op *out)
{
    struct ewtp_store_op *ops = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_op_claim(st, now, 10, 1000, "w", &ops, &n), 0);
    if (n && out) {
        assert_int_equal(n, 1);
        out->oid = ops[0].oid;
        out->attempts = ops[0].attempts;
        out->msg.state = ops[0].msg.state;
        assert_string_equal(ops[0].op, "cancel");
        assert_string_equal(ops[0].reason, "buyer withdrew");
        assert_string_equal(ops[0].msg.id, "c1");
        assert_string_equal(ops[0].msg.authority_ref, "REF-1");
    }
    ewtp_store_ops_free(ops, n);
    return n;
}

static uint64_t ops_pending(struct ewtp_store *st)
{
    uint64_t n = 99;
    assert_int_equal(ewtp_store_ops_pending(st, &n), 0);
    return n;
}

static void test_op_cancel_durable(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "c1", NULL, T0);
    bool repeat = true;
    enum ewtp_store_state st;
    assert_int_equal(ewtp_store_op_request(f->st, "t2", "c1", "cancel", "x", T0, &repeat, &st),
                     -EWTP_ENOTFOUND); /* another tenant's id is not found */
    assert_int_equal(
        ewtp_store_op_request(f->st, "t1", "c1", "cancel", "buyer withdrew", T0, &repeat, &st), 0);
    assert_false(repeat);
    assert_int_equal(st, EWTP_STORE_ACCEPTED);
    assert_int_equal(ewtp_store_op_request(f->st, "t1", "c1", "cancel", "again", T0, &repeat, &st),
                     0);
    assert_true(repeat);
    assert_int_equal(ops_pending(f->st), 1);

    /* Ordered after its message: nothing to claim before the authority has it. */
    assert_int_equal(op_claim(f->st, T0 + 1, NULL), 0);
    uint64_t k = 0;
    assert_int_equal(claim_all(f->st, T0 + 1, "c1", &k), 1);
    struct ewtp_store_outcome o = {.key = k,
                                   .attempt = 1,
                                   .state = EWTP_STORE_SUBMITTED,
                                   .authority_ref = "REF-1",
                                   .now = T0 + 2};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);

    /* A restart in between changes nothing: the request is on disk. */
    ewtp_store_close(f->st);
    assert_int_equal(store_open(f->path, NULL, &f->st, NULL), 0);
    struct ewtp_store_op got = {0};
    assert_int_equal(op_claim(f->st, T0 + 3, &got), 1);
    assert_int_equal(got.attempts, 1);
    assert_int_equal(op_claim(f->st, T0 + 3, NULL), 0); /* leased */

    /* The authority was down: pending again with backoff; a lost lease records nothing. */
    assert_int_equal(ewtp_store_op_finish(f->st, got.oid, 1, EWTP_STORE_OP_RETRY, T0 + 500,
                                          "{\"code\":\"HTTP 503\"}", T0 + 4),
                     0);
    assert_int_equal(ewtp_store_op_finish(f->st, got.oid, 1, EWTP_STORE_OP_DONE, 0, NULL, T0 + 5),
                     -EWTP_EINVAL);
    assert_int_equal(op_claim(f->st, T0 + 499, NULL), 0);
    assert_int_equal(op_claim(f->st, T0 + 500, &got), 1);
    assert_int_equal(got.attempts, 2);

    /* Its holder died: the lease expires and another claim takes it over. */
    size_t n = 0;
    assert_int_equal(ewtp_store_requeue_expired(f->st, T0 + 1500, &n), 0);
    assert_int_equal(op_claim(f->st, T0 + 1500, &got), 1);
    assert_int_equal(got.attempts, 3);
    assert_int_equal(
        ewtp_store_op_finish(f->st, got.oid, 3, EWTP_STORE_OP_DONE, 0, NULL, T0 + 1600), 0);
    assert_int_equal(ops_pending(f->st), 0);
    assert_int_equal(op_claim(f->st, T0 + 9999, NULL), 0);

    json_t *ev = events(f->st, "t1", "c1");
    const char *want[] = {"cancel_requested", "op_claimed", "op_retry",
                          "op_claimed",       "op_claimed", "op_done"};
    size_t w = 0;
    for (size_t i = 0; i < json_array_size(ev) && w < 6; i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(ev, i), "type")), want[w]) == 0)
            w++;
    assert_int_equal(w, 6);
    json_decref(ev);
}

static void test_op_on_ended_message(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "r1", NULL, T0);
    bool repeat = false;
    enum ewtp_store_state st;
    assert_int_equal(ewtp_store_op_request(f->st, "t1", "r1", "cancel", NULL, T0, &repeat, &st), 0);
    uint64_t k = 0;
    assert_int_equal(claim_all(f->st, T0 + 1, "r1", &k), 1);
    outcome(f->st, k, 1, EWTP_STORE_REJECTED, 0, 0);
    /* The pending cancel is handed over once, for its caller to close. */
    struct ewtp_store_op *ops = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_op_claim(f->st, T0 + 2, 10, 1000, "w", &ops, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ops[0].msg.state, EWTP_STORE_REJECTED);
    assert_null(ops[0].reason);
    assert_int_equal(
        ewtp_store_op_finish(f->st, ops[0].oid, 1, EWTP_STORE_OP_FAILED, 0, NULL, T0 + 3), 0);
    ewtp_store_ops_free(ops, n);
    /* A new request on a rejected message is refused. */
    assert_int_equal(ewtp_store_op_request(f->st, "t1", "r1", "cancel", NULL, T0, &repeat, &st),
                     -EWTP_EINVAL);
    assert_int_equal(st, EWTP_STORE_REJECTED);
}

/* ---- listing ------------------------------------------------------------------------------- */

static void test_list_pagination(void **state)
{
    struct fix *f = *state;
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof(id), "l-%02d", i);
        accept_ok(f->st, i % 5 == 0 ? "t2" : "t1", id, NULL, T0 + i);
    }
    /* Make two of t1's non-accepted. */
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 2, 2, 1000, "w", &c, &n), 0);
    assert_int_equal(n, 2); /* l-00 (t2), l-01 (t1) */
    ewtp_store_msgs_free(c, n);

    char seen[25] = {0};
    int total = 0, pages = 0;
    char cursor[64] = "";
    for (;;) {
        struct ewtp_store_filter flt = {.tenant = "t1", .limit = 7, .after = cursor};
        char *text = NULL;
        assert_int_equal(ewtp_api_list_json(f->st, &flt, &text), 0);
        json_t *j = json_loads(text, 0, NULL);
        free(text);
        assert_non_null(j);
        json_t *items = json_object_get(j, "items");
        pages++;
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *it = json_array_get(items, i);
            assert_string_equal(json_string_value(json_object_get(it, "tenant")), "t1");
            int idx = atoi(json_string_value(json_object_get(it, "id")) + 2);
            assert_int_equal(seen[idx], 0);
            seen[idx] = 1;
            total++;
        }
        json_t *next = json_object_get(j, "next");
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        assert_int_equal(json_array_size(items), 7);
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        json_decref(j);
        assert_true(pages < 10);
    }
    assert_int_equal(total, 20);
    assert_int_equal(pages, 3);

    struct ewtp_store_filter flt = {.state = "delivering"};
    char *text = NULL;
    assert_int_equal(ewtp_api_list_json(f->st, &flt, &text), 0);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
    assert_true(json_is_null(json_object_get(j, "next")));
    json_decref(j);
    /* the same page as rows, as a backend returns it */
    struct ewtp_store_page page;
    assert_int_equal(ewtp_store_list(f->st, &flt, &page), 0);
    assert_int_equal(page.n, 2);
    assert_null(page.next);
    assert_int_equal(page.items[0].state, EWTP_STORE_DELIVERING);
    assert_int_equal(page.items[0].attempts, 1);
    ewtp_store_page_free(&page);

    flt = (struct ewtp_store_filter){.tenant = "t2", .state = "accepted", .destination = "CN"};
    assert_int_equal(ewtp_api_list_json(f->st, &flt, &text), 0);
    j = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 4);
    json_decref(j);

    flt = (struct ewtp_store_filter){.after = "x1"};
    assert_int_equal(ewtp_api_list_json(f->st, &flt, &text), -EWTP_EINVAL);
    flt = (struct ewtp_store_filter){.state = "lost"};
    assert_int_equal(ewtp_api_list_json(f->st, &flt, &text), -EWTP_EINVAL);

    struct ewtp_store_count *cnt = NULL;
    assert_int_equal(ewtp_store_counts(f->st, &cnt, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(cnt[0].plugin, "cn");
    assert_int_equal(cnt[0].state, EWTP_STORE_ACCEPTED);
    assert_int_equal(cnt[0].n, 23);
    assert_int_equal(cnt[1].state, EWTP_STORE_DELIVERING);
    assert_int_equal(cnt[1].n, 2);
    ewtp_store_counts_free(cnt, n);
}

/* ---- schema -------------------------------------------------------------------------------- */

static void test_newer_schema_refused(void **state)
{
    struct fix *f = *state;
    ewtp_store_close(f->st);
    f->st = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES(99)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char *why = NULL;
    assert_int_equal(ewtp_store_open_sqlite(f->path, NULL, &f->st, &why), -EWTP_EUNSUPP);
    assert_null(f->st);
    assert_non_null(why);
    assert_non_null(strstr(why, "99"));
    assert_non_null(strstr(why, f->path));
    free(why);

    assert_int_equal(ewtp_store_open_sqlite("/nonexistent-dir/x.db", NULL, &f->st, &why),
                     -EWTP_EIO);
    assert_non_null(why);
    assert_non_null(strstr(why, "/nonexistent-dir/x.db"));
    free(why);
}

/* ---- webhook outbox ------------------------------------------------------------------------ */

static size_t wh_claim(struct ewtp_store *st, int64_t now, struct ewtp_store_webhook **w)
{
    size_t n = 99;
    assert_int_equal(ewtp_store_webhook_claim(st, now, 10, 5000, w, &n), 0);
    return n;
}

static uint64_t wh_pending(struct ewtp_store *st)
{
    uint64_t n = 99;
    assert_int_equal(ewtp_store_webhook_pending(st, &n), 0);
    return n;
}

static void test_webhook_outbox(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "w1", NULL, T0);
    accept_ok(f->st, "t1", "w2", NULL, T0);
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0, 2, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 2);
    uint64_t k1 = c[0].key, k2 = c[1].key;
    ewtp_store_msgs_free(c, n);

    /* The webhook is queued with the state change, only when asked for. */
    struct ewtp_store_outcome o = {
        .key = k1, .attempt = 1, .state = EWTP_STORE_SUBMITTED, .now = T0 + 1, .webhook = true};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    outcome(f->st, k2, 1, EWTP_STORE_SUBMITTED, 0, 0);
    assert_int_equal(wh_pending(f->st), 1);
    /* A failed outcome (lost lease) queues nothing either. */
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), -EWTP_EINVAL);
    assert_int_equal(wh_pending(f->st), 1);

    struct ewtp_store_receipt rec = {.state = EWTP_STORE_APPROVED, .code = "OK"};
    struct ewtp_store_receipt_rec r = {.key = k1,
                                       .set_state = true,
                                       .state = EWTP_STORE_APPROVED,
                                       .receipt = &rec,
                                       .now = T0 + 2,
                                       .webhook = true};
    assert_int_equal(ewtp_store_record_receipt(f->st, &r), 0);
    assert_int_equal(wh_pending(f->st), 2);
    /* A late receipt that changes nothing (terminal already) queues nothing. */
    r.now = T0 + 3;
    assert_int_equal(ewtp_store_record_receipt(f->st, &r), 0);
    assert_int_equal(wh_pending(f->st), 2);

    /* Claims: oldest first, leased. */
    struct ewtp_store_webhook *w = NULL;
    assert_int_equal(wh_claim(f->st, T0 + 10, &w), 2);
    assert_string_equal(w[0].tenant, "t1");
    assert_string_equal(w[0].id, "w1");
    assert_string_equal(w[0].state, "submitted");
    assert_int_equal(w[0].at, T0 + 1);
    assert_int_equal(w[0].attempts, 1);
    assert_int_equal(w[0].key, k1);
    assert_string_equal(w[1].state, "approved");
    assert_int_equal(w[1].at, T0 + 2);
    uint64_t sub = w[0].wid, appr = w[1].wid;
    ewtp_store_webhooks_free(w, 2);
    w = NULL;
    assert_int_equal(wh_claim(f->st, T0 + 10, &w), 0);
    assert_null(w);
    /* The claimer died: due again after the lease, attempts counted. */
    assert_int_equal(wh_claim(f->st, T0 + 5010, &w), 2);
    assert_int_equal(w[0].attempts, 2);
    ewtp_store_webhooks_free(w, 2);

    /* Retry: due again at next_at, not before. */
    assert_int_equal(ewtp_store_webhook_retry(f->st, sub, T0 + 20000, "HTTP 503"), 0);
    assert_int_equal(wh_claim(f->st, T0 + 19999, &w), 1);
    assert_int_equal(w[0].wid, appr);
    ewtp_store_webhooks_free(w, 1);
    assert_int_equal(wh_claim(f->st, T0 + 20000, &w), 1);
    assert_int_equal(w[0].wid, sub);
    assert_int_equal(w[0].attempts, 3);
    ewtp_store_webhooks_free(w, 1);

    /* Done leaves the outbox; give-up too, with an event on the message. */
    assert_int_equal(ewtp_store_webhook_done(f->st, sub), 0);
    assert_int_equal(ewtp_store_webhook_done(f->st, sub), -EWTP_ENOTFOUND);
    assert_int_equal(wh_pending(f->st), 1);
    assert_int_equal(ewtp_store_webhook_give_up(f->st, appr, "HTTP 410", T0 + 30000), 0);
    assert_int_equal(wh_pending(f->st), 0);
    json_t *ev = events(f->st, "t1", "w1");
    json_t *last = json_array_get(ev, json_array_size(ev) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "type")), "webhook_failed");
    assert_string_equal(json_string_value(json_object_get(last, "state")), "approved");
    json_t *d = json_object_get(last, "detail");
    assert_string_equal(json_string_value(json_object_get(d, "state")), "approved");
    assert_string_equal(json_string_value(json_object_get(d, "error")), "HTTP 410");
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 3);
    json_decref(ev);

    /* Explicit enqueue; an unknown message is refused. */
    assert_int_equal(ewtp_store_webhook_enqueue(f->st, k2, EWTP_STORE_SUBMITTED, T0 + 40, T0 + 40),
                     0);
    assert_int_equal(ewtp_store_webhook_enqueue(f->st, 999999, EWTP_STORE_SUBMITTED, 0, T0),
                     -EWTP_ENOTFOUND);
    assert_int_equal(wh_claim(f->st, T0 + 40, &w), 1);
    assert_string_equal(w[0].id, "w2");
    ewtp_store_webhooks_free(w, 1);
}

/* Evidence (issue 18): the bytes sent and answered per message, in order; purge by age; the
 * bytes held (bytes, not characters). Both backends. */
static size_t evidence_count(struct ewtp_store *st, const char *tenant, const char *id)
{
    struct ewtp_store_evidence_row *r = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_evidence_get(st, tenant, id, &r, &n), 0);
    ewtp_store_evidence_free(r, n);
    return n;
}

static void test_evidence(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "e1", NULL, T0);
    uint64_t k = claim_one(f->st, "e1");
    size_t n = 0;
    const char doc[] = "<signed>\0bytes</signed>";
    const char meta[] = "{\"attempt\":1,\"peer\":\"caf\xc3\xa9\"}"; /* é: 2 bytes, 1 character */
    struct ewtp_store_evidence e[2] = {
        {.kind = "request",
         .name = "attempt-1/request-0",
         .meta = meta,
         .body = doc,
         .body_len = sizeof(doc),
         .at = T0 + 1},
        {.kind = "answer", .name = "attempt-1/answer", .body = "ok", .body_len = 2, .at = T0 + 2}};
    assert_int_equal(ewtp_store_evidence_add(f->st, k, e, 2), 0);
    struct ewtp_store_evidence_row *r = NULL;
    assert_int_equal(ewtp_store_evidence_get(f->st, "t1", "e1", &r, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].kind, "request");
    assert_string_equal(r[0].name, "attempt-1/request-0");
    assert_int_equal(r[0].at, T0 + 1);
    assert_int_equal(r[0].body_len, sizeof(doc));
    assert_memory_equal(r[0].body, doc, sizeof(doc));
    assert_string_equal(r[0].meta, meta);
    assert_null(r[1].meta);
    assert_int_equal(r[1].body_len, 2);
    assert_int_equal(r[1].body[2], 0); /* NUL-terminated beyond the length */
    ewtp_store_evidence_free(r, n);
    assert_int_equal(ewtp_store_evidence_get(f->st, "t2", "e1", &r, &n), -EWTP_ENOTFOUND);
    /* An unknown message, an entry without a name: refused, nothing added. */
    assert_int_equal(ewtp_store_evidence_add(f->st, k + 1000, e, 2), -EWTP_ENOTFOUND);
    struct ewtp_store_evidence unnamed = {.kind = "answer", .body = "x", .body_len = 1};
    assert_int_equal(ewtp_store_evidence_add(f->st, k, &unnamed, 1), -EWTP_EINVAL);
    assert_int_equal(evidence_count(f->st, "t1", "e1"), 2);
    uint64_t bytes = 0;
    assert_int_equal(ewtp_store_evidence_bytes(f->st, &bytes), 0);
    assert_int_equal(bytes, sizeof(doc) + 2 + strlen(meta));
    uint64_t purged = 0;
    assert_int_equal(ewtp_store_evidence_purge(f->st, T0 + 2, &purged), 0);
    assert_int_equal(purged, 1);
    assert_int_equal(ewtp_store_evidence_get(f->st, "t1", "e1", &r, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].kind, "answer");
    ewtp_store_evidence_free(r, n);
    assert_int_equal(ewtp_store_evidence_bytes(f->st, &bytes), 0);
    assert_int_equal(bytes, 2);
}

/* Runs sql directly on the case's store (sqlite_sql on the SQLite file, pg_sql on the
 * PostgreSQL schema), beside the store's own connections. */
static void store_exec(struct fix *f, const char *sqlite_sql, const char *pg_sql)
{
    if (pg_conninfo) {
        PGconn *pg = PQconnectdb(f->path);
        assert_int_equal(PQstatus(pg), CONNECTION_OK);
        PGresult *r = PQexec(pg, pg_sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            print_error("%s: %s\n", pg_sql, PQerrorMessage(pg));
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(pg);
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    int x = sqlite3_exec(db, sqlite_sql, NULL, NULL, &err);
    if (x != SQLITE_OK)
        print_error("%s: %s\n", sqlite_sql, err ? err : "?");
    sqlite3_free(err);
    assert_int_equal(x, SQLITE_OK);
    sqlite3_close(db);
}

/* How many "outcome" events tenant/id has. */
static size_t outcome_events(struct ewtp_store *st, const char *tenant, const char *id)
{
    json_t *ev = events(st, tenant, id);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(ev); i++) {
        const char *type = json_string_value(json_object_get(json_array_get(ev, i), "type"));
        n += type && strcmp(type, "outcome") == 0;
    }
    json_decref(ev);
    return n;
}

/* A delivery attempt's evidence is written in its outcome's transaction (issue 18): both are
 * there after the call; an evidence row the database refuses takes the outcome down with it
 * (still delivering, no outcome event, no receipt); an outcome refused (a chain out of
 * sequence, a lost lease) leaves no evidence. */
static void test_evidence_with_outcome(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "o1", "K", T0);
    uint64_t k = claim_one(f->st, "o1");
    const char sent[] = "<doc>signed</doc>";
    struct ewtp_store_evidence e[2] = {
        {.kind = "request",
         .name = "attempt-1/request-0-doc",
         .meta = "{\"attempt\":1,\"peer\":\"sha256:00ff\"}",
         .body = sent,
         .body_len = strlen(sent)},
        {.kind = "answer", .name = "attempt-1/answer", .body = "{\"ok\":1}", .body_len = 8}};
    struct ewtp_store_receipt rec = {
        .state = EWTP_STORE_SUBMITTED, .raw = "{\"ok\":1}", .raw_len = 8};
    struct ewtp_store_chain_advance bad = {.key = "K", .number = 5, .ref = "R"};
    struct ewtp_store_outcome o = {.key = k,
                                   .attempt = 1,
                                   .state = EWTP_STORE_SUBMITTED,
                                   .authority_ref = "R-1",
                                   .receipt = &rec,
                                   .chain = &bad,
                                   .now = T0 + 10,
                                   .evidence = e,
                                   .n_evidence = 2};
    /* The chain refuses: nothing of the outcome, none of its evidence. */
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), -EWTP_ERANGE);
    assert_int_equal(evidence_count(f->st, "t1", "o1"), 0);
    assert_int_equal(state_of(f->st, "t1", "o1"), EWTP_STORE_DELIVERING);

    /* The database refuses the evidence: the outcome is not committed either. */
    store_exec(f,
               "CREATE TRIGGER evidence_refused BEFORE INSERT ON evidence"
               " BEGIN SELECT RAISE(ABORT, 'refused'); END",
               "CREATE FUNCTION evidence_refused() RETURNS trigger LANGUAGE plpgsql AS"
               " $f$ BEGIN RAISE EXCEPTION 'refused'; END $f$;"
               "CREATE TRIGGER evidence_refused BEFORE INSERT ON evidence"
               " FOR EACH ROW EXECUTE FUNCTION evidence_refused()");
    o.chain = NULL;
    assert_true(ewtp_store_record_outcome(f->st, &o) < 0);
    assert_int_equal(state_of(f->st, "t1", "o1"), EWTP_STORE_DELIVERING);
    assert_int_equal(outcome_events(f->st, "t1", "o1"), 0);
    json_t *j = status(f->st, "t1", "o1");
    assert_int_equal(json_array_size(json_object_get(j, "receipts")), 0);
    assert_true(json_is_null(json_object_get(j, "authority_ref")));
    json_decref(j);
    store_exec(f, "DROP TRIGGER evidence_refused", "DROP TRIGGER evidence_refused ON evidence");

    /* Both together. */
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    assert_int_equal(state_of(f->st, "t1", "o1"), EWTP_STORE_SUBMITTED);
    assert_int_equal(outcome_events(f->st, "t1", "o1"), 1);
    struct ewtp_store_evidence_row *r = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_evidence_get(f->st, "t1", "o1", &r, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].name, "attempt-1/request-0-doc");
    assert_int_equal(r[0].at, T0 + 10); /* at <= 0: the outcome's now */
    assert_int_equal(r[0].body_len, strlen(sent));
    assert_memory_equal(r[0].body, sent, strlen(sent));
    assert_string_equal(r[0].meta, "{\"attempt\":1,\"peer\":\"sha256:00ff\"}");
    assert_string_equal(r[1].kind, "answer");
    ewtp_store_evidence_free(r, n);

    /* The same attempt again (its lease is gone): refused, no second copy of the evidence. */
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), -EWTP_EINVAL);
    assert_int_equal(evidence_count(f->st, "t1", "o1"), 2);
    /* Malformed evidence is refused before anything is written. */
    accept_ok(f->st, "t1", "o2", NULL, T0);
    uint64_t k2 = claim_one(f->st, "o2");
    struct ewtp_store_evidence nameless = {.kind = "request", .body = "x", .body_len = 1};
    struct ewtp_store_outcome o2 = {.key = k2,
                                    .attempt = 1,
                                    .state = EWTP_STORE_SUBMITTED,
                                    .now = T0 + 11,
                                    .evidence = &nameless,
                                    .n_evidence = 1};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o2), -EWTP_EINVAL);
    assert_int_equal(state_of(f->st, "t1", "o2"), EWTP_STORE_DELIVERING);
}

/* A process killed (SIGKILL) while it records outcomes with their evidence, one message after
 * the other, leaves every message either still delivering without evidence or decided with
 * all of its evidence: never one without the other. */
#define CRASH_MSGS 300
static void test_evidence_outcome_crash(void **state)
{
    struct fix *f = *state;
    char path[600];
    store_locate(f, "evcrash", path, sizeof(path));
    struct ewtp_store *st = NULL;
    assert_int_equal(store_open(path, NULL, &st, NULL), 0);
    for (int i = 0; i < CRASH_MSGS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c-%03d", i);
        accept_ok(st, "t1", id, NULL, T0);
    }
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(st, T0, CRASH_MSGS, 600000, "w", &c, &n), 0);
    assert_int_equal(n, CRASH_MSGS);
    uint64_t keys[CRASH_MSGS];
    for (size_t i = 0; i < n; i++)
        keys[i] = c[i].key;
    ewtp_store_msgs_free(c, n);
    ewtp_store_close(st);
    /* fork() from a single-threaded process: no writer thread may be running. */
    ewtp_store_close(f->st);
    f->st = NULL;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        if (store_open(path, NULL, &st, NULL) != 0)
            _exit(3);
        static char big[40000];
        memset(big, 'b', sizeof(big));
        for (int i = 0; i < CRASH_MSGS; i++) {
            struct ewtp_store_evidence e[3] = {
                {.kind = "request", .name = "attempt-1/request-0", .body = big, .body_len = 40000},
                {.kind = "request", .name = "attempt-1/request-1", .body = big, .body_len = 30000},
                {.kind = "answer", .name = "attempt-1/answer", .body = "ok", .body_len = 2}};
            struct ewtp_store_outcome o = {.key = keys[i],
                                           .attempt = 1,
                                           .state = EWTP_STORE_SUBMITTED,
                                           .now = T0 + 1,
                                           .evidence = e,
                                           .n_evidence = 3};
            if (ewtp_store_record_outcome(st, &o) != 0)
                _exit(4);
            if (i == 10 && write(pipefd[1], "x", 1) != 1) /* the parent may kill from now on */
                _exit(5);
        }
        _exit(0); /* no close: like the kill, nothing is tidied on the way out */
    }
    close(pipefd[1]);
    char x;
    assert_int_equal(read(pipefd[0], &x, 1), 1);
    close(pipefd[0]);
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));

    assert_int_equal(store_open(path, NULL, &st, NULL), 0);
    size_t decided = 0;
    for (int i = 0; i < CRASH_MSGS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c-%03d", i);
        enum ewtp_store_state s = state_of(st, "t1", id);
        size_t ev = evidence_count(st, "t1", id);
        size_t outcomes = outcome_events(st, "t1", id);
        if (s == EWTP_STORE_SUBMITTED) {
            decided++;
            assert_int_equal(ev, 3);
            assert_int_equal(outcomes, 1);
        } else {
            assert_int_equal(s, EWTP_STORE_DELIVERING);
            assert_int_equal(ev, 0);
            assert_int_equal(outcomes, 0);
        }
    }
    assert_true(decided >= 11); /* those recorded before the child said "kill me" */
    print_message("killed after %zu of %d outcomes\n", decided, CRASH_MSGS);
    ewtp_store_close(st);
}

/* A version 2 database gets the outbox in place and keeps its messages. */
static void test_schema_v2_upgrade(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "old", NULL, T0);
    ewtp_store_close(f->st);
    f->st = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE webhooks; DROP TABLE ops; DROP TABLE key_states;"
                                  "ALTER TABLE messages DROP COLUMN wait_key;"
                                  "ALTER TABLE messages DROP COLUMN wait_state;"
                                  "ALTER TABLE messages DROP COLUMN wait_until;"
                                  "DELETE FROM schema_version;"
                                  "INSERT INTO schema_version VALUES(2);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char *why = NULL;
    assert_int_equal(ewtp_store_open_sqlite(f->path, NULL, &f->st, &why), 0);
    assert_null(why);
    assert_int_equal(state_of(f->st, "t1", "old"), EWTP_STORE_ACCEPTED);
    assert_int_equal(wh_pending(f->st), 0);
    assert_int_equal(
        ewtp_store_webhook_enqueue(f->st, key_of(f->st, "t1", "old"), EWTP_STORE_ACCEPTED, 0, T0),
        0);
    assert_int_equal(wh_pending(f->st), 1);
    ewtp_store_close(f->st);
    f->st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 8);
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_int_equal(ewtp_store_open_sqlite(f->path, NULL, &f->st, &why), 0);
}

/* ---- PostgreSQL: several nodes on one database ----------------------------------------- */

static void pg_exec(const char *conninfo, const char *sql)
{
    PGconn *pg = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        print_error("%s: %s\n", sql, PQerrorMessage(pg));
    assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(pg);
}

/* A newer schema is refused; nodes starting together migrate once. */
static void *open_close(void *arg)
{
    struct ewtp_store *st = NULL;
    intptr_t rc = store_open(arg, NULL, &st, NULL);
    ewtp_store_close(st);
    return (void *)rc;
}

static void test_pg_schema(void **state)
{
    struct fix *f = *state;
    char fresh[600];
    store_locate(f, "fresh", fresh, sizeof(fresh));
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, open_close, fresh), 0);
    for (int i = 0; i < 4; i++) {
        void *rc = NULL;
        pthread_join(th[i], &rc);
        assert_int_equal((intptr_t)rc, 0);
    }
    PGconn *pg = PQconnectdb(fresh);
    /* Each version applied once, by one of them. */
    PGresult *r = PQexec(pg, "SELECT count(*), count(DISTINCT version), max(version)"
                             " FROM schema_version");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    assert_string_equal(PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 2));
    PQclear(r);
    PQfinish(pg);

    ewtp_store_close(f->st);
    f->st = NULL;
    pg_exec(f->path, "INSERT INTO schema_version VALUES(99)");
    char *why = NULL;
    assert_int_equal(store_open(f->path, NULL, &f->st, &why), -EWTP_EUNSUPP);
    assert_null(f->st);
    assert_non_null(strstr(why, "99"));
    free(why);
}

/* A version 2 database (issue 16's) gets the evidence table of version 3 in place, keeps its
 * messages, and the evidence works on it. */
static void test_pg_schema_v3_upgrade(void **state)
{
    struct fix *f = *state;
    accept_ok(f->st, "t1", "old", NULL, T0);
    ewtp_store_close(f->st);
    f->st = NULL;
    pg_exec(f->path, "DROP TABLE evidence; DELETE FROM schema_version WHERE version = 3");
    char *why = NULL;
    assert_int_equal(store_open(f->path, NULL, &f->st, &why), 0);
    assert_null(why);
    PGconn *pg = PQconnectdb(f->path);
    PGresult *r = PQexec(pg, "SELECT max(version), count(*) FROM schema_version");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "3");
    assert_string_equal(PQgetvalue(r, 0, 1), "3");
    PQclear(r);
    PQfinish(pg);
    assert_int_equal(state_of(f->st, "t1", "old"), EWTP_STORE_ACCEPTED);
    uint64_t k = claim_one(f->st, "old");
    struct ewtp_store_evidence e = {
        .kind = "request", .name = "attempt-1/request-0", .body = "doc", .body_len = 3};
    struct ewtp_store_outcome o = {.key = k,
                                   .attempt = 1,
                                   .state = EWTP_STORE_SUBMITTED,
                                   .owner = "w",
                                   .now = T0 + 1,
                                   .evidence = &e,
                                   .n_evidence = 1};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), 0);
    assert_int_equal(evidence_count(f->st, "t1", "old"), 1);
}

/* Two nodes (two stores on one database): a key's next message waits for the other node's
 * delivery; a message whose seq is older but committed later waits while a younger one of
 * its key is in flight; outcomes are fenced by the lease's owner and expiry. */
static void test_pg_two_nodes(void **state)
{
    struct fix *f = *state;
    struct ewtp_store *b = NULL;
    assert_int_equal(store_open(f->path, NULL, &b, NULL), 0);
    accept_ok(f->st, "t1", "k-1", "K", T0);
    accept_ok(b, "t1", "k-2", "K", T0);
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(b, T0, 10, 1000, "node-b", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "k-1");
    uint64_t k1 = c[0].key;
    ewtp_store_msgs_free(c, n);
    assert_int_equal(ewtp_store_claim_due(f->st, T0, 10, 1000, "node-a", &c, &n), 0);
    assert_int_equal(n, 0);

    /* Fencing: another owner, or the holder after its lease lapsed, records nothing. */
    struct ewtp_store_outcome o = {
        .key = k1, .attempt = 1, .state = EWTP_STORE_SUBMITTED, .owner = "node-a", .now = T0 + 10};
    assert_int_equal(ewtp_store_record_outcome(f->st, &o), -EWTP_EINVAL);
    o.owner = "node-b";
    o.now = T0 + 1000;
    assert_int_equal(ewtp_store_record_outcome(b, &o), -EWTP_EINVAL);
    o.now = T0 + 999;
    assert_int_equal(ewtp_store_record_outcome(b, &o), 0);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 1000, 10, 1000, "node-a", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "k-2");
    ewtp_store_msgs_free(c, n);

    /* seq 'x-old' taken first, committed after 'x-new' was claimed. */
    PGconn *pg = PQconnectdb(f->path);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *r = PQexec(pg, "BEGIN; INSERT INTO messages(tenant, id, kind, destination, plugin,"
                             " state, hash, canonical, ordering_key, created_at, updated_at)"
                             " VALUES('t1', 'x-old', 'order', 'CN', 'cn', 'accepted', 'h', '{}',"
                             " 'X', 1795000000000, 1795000000000)");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    accept_ok(b, "t1", "x-new", "X", T0);
    assert_int_equal(ewtp_store_claim_due(b, T0 + 2000, 10, 60000, "node-b", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "x-new");
    uint64_t knew = c[0].key;
    ewtp_store_msgs_free(c, n);
    r = PQexec(pg, "COMMIT");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(pg);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 2000, 10, 60000, "node-a", &c, &n), 0);
    assert_int_equal(n, 0); /* x-old waits: x-new of its key is in flight */
    outcome(b, knew, 1, EWTP_STORE_SUBMITTED, 0, 0);
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 2000, 10, 60000, "node-a", &c, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].id, "x-old");
    ewtp_store_msgs_free(c, n);
    ewtp_store_close(b);
}

/* Four claimers on two nodes race over 8 keys: never two messages of a key in flight, each
 * key in accept order, every message delivered once. */
#define RN_KEYS 8
#define RN_PER 25
struct rn_ctx {
    struct ewtp_store *st;
    char owner[16];
    atomic_int *inflight; /* per key */
    atomic_int *next;     /* per key: the index expected next */
    atomic_int *delivered;
    atomic_int *bad;
};

static void *rn_claimer(void *p)
{
    struct rn_ctx *x = p;
    for (int idle = 0; idle < 200 && atomic_load(x->delivered) < RN_KEYS * RN_PER;) {
        struct ewtp_store_msg *c = NULL;
        size_t n = 0;
        if (ewtp_store_claim_due(x->st, T0 + 1, 4, 60000, x->owner, &c, &n) != 0) {
            atomic_fetch_add(x->bad, 1);
            return NULL;
        }
        idle = n ? 0 : idle + 1;
        for (size_t i = 0; i < n; i++) {
            int k = -1, idx = -1;
            sscanf(c[i].id, "r-%d-%d", &k, &idx);
            if (k < 0 || k >= RN_KEYS || atomic_fetch_add(&x->inflight[k], 1) != 0 ||
                atomic_load(&x->next[k]) != idx)
                atomic_fetch_add(x->bad, 1);
        }
        usleep(1000);
        for (size_t i = 0; i < n; i++) {
            int k = 0, idx = 0;
            sscanf(c[i].id, "r-%d-%d", &k, &idx);
            atomic_store(&x->next[k], idx + 1);
            atomic_fetch_sub(&x->inflight[k], 1);
            struct ewtp_store_outcome o = {.key = c[i].key,
                                           .attempt = c[i].attempts,
                                           .state = EWTP_STORE_SUBMITTED,
                                           .owner = x->owner,
                                           .now = T0 + 2};
            if (ewtp_store_record_outcome(x->st, &o) != 0)
                atomic_fetch_add(x->bad, 1);
            atomic_fetch_add(x->delivered, 1);
        }
        ewtp_store_msgs_free(c, n);
        if (!n)
            usleep(2000);
    }
    return NULL;
}

static void test_pg_race_ordering(void **state)
{
    struct fix *f = *state;
    struct ewtp_store *b = NULL;
    assert_int_equal(store_open(f->path, NULL, &b, NULL), 0);
    for (int i = 0; i < RN_PER; i++)
        for (int k = 0; k < RN_KEYS; k++) {
            char id[32], okey[16];
            snprintf(id, sizeof(id), "r-%d-%d", k, i);
            snprintf(okey, sizeof(okey), "rk%d", k);
            accept_ok((i + k) % 2 ? b : f->st, "t1", id, okey, T0);
        }
    static atomic_int inflight[RN_KEYS], next[RN_KEYS];
    for (int k = 0; k < RN_KEYS; k++) {
        atomic_init(&inflight[k], 0);
        atomic_init(&next[k], 0);
    }
    atomic_int delivered = 0, bad = 0;
    struct rn_ctx ctx[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ctx[i] = (struct rn_ctx){.st = i % 2 ? b : f->st,
                                 .inflight = inflight,
                                 .next = next,
                                 .delivered = &delivered,
                                 .bad = &bad};
        snprintf(ctx[i].owner, sizeof(ctx[i].owner), "node-%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, rn_claimer, &ctx[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&bad), 0);
    assert_int_equal(atomic_load(&delivered), RN_KEYS * RN_PER);
    uint64_t depth = 1;
    assert_int_equal(ewtp_store_backlog(b, T0, &depth, NULL), 0);
    assert_int_equal(depth, 0);
    ewtp_store_close(b);
}

/* ewtpctl migrate-store: a SQLite store with every kind of row (evidence too), copied into an
 * empty PostgreSQL schema, reads the same through the API; without_evidence leaves the
 * evidence behind and says how many rows; a non-empty target is refused. */
static char *json_of(int (*fn)(struct ewtp_store *, const char *, const char *, char **),
                     struct ewtp_store *st, const char *id)
{
    char *text = NULL;
    assert_int_equal(fn(st, "t1", id, &text), 0);
    return text;
}

static void test_pg_migrate(void **state)
{
    struct fix *f = *state;
    char path[600];
    snprintf(path, sizeof(path), "%s/old.db", f->dir);
    struct ewtp_store *old = NULL;
    assert_int_equal(ewtp_store_open_sqlite(path, NULL, &old, NULL), 0);
    struct msgbuf m;
    mk(&m, "t1", "m-1", "1", "K", T0);
    const char *rel[] = {"order:SO-1"};
    m.req.relations = rel;
    m.req.n_relations = 1;
    m.req.needs_chain = true;
    m.req.warnings = "[{\"code\":\"w\",\"pointer\":\"/a\",\"message\":\"tab\\there\"}]";
    assert_int_equal(ewtp_store_accept_wait(old, &m.req, NULL, NULL), 0);
    accept_ok(old, "t1", "m-2", "K", T0 + 1);
    accept_ok(old, "t1", "m-3", NULL, T0 + 2);
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(old, T0 + 5, 1, 60000, "w", &c, &n), 0);
    assert_int_equal(n, 1);
    struct ewtp_store_chain_advance ch = {.key = "K", .number = 1, .ref = "R-1"};
    const unsigned char raw[] = {0xff, 0x00, '\\', '\n', 'x'};
    struct ewtp_store_receipt rc = {.state = EWTP_STORE_SUBMITTED,
                                    .code = "0",
                                    .message = "line\nbreak",
                                    .raw = raw,
                                    .raw_len = sizeof(raw)};
    static const char blob[] = {'s', 0, '\t', 1};
    struct ewtp_store_outcome o = {.key = c[0].key,
                                   .attempt = 1,
                                   .state = EWTP_STORE_SUBMITTED,
                                   .authority_ref = "R-1",
                                   .receipt = &rc,
                                   .chain = &ch,
                                   .webhook = true,
                                   .okey = "K",
                                   .key_state = blob,
                                   .key_state_len = sizeof(blob),
                                   .now = T0 + 6};
    const unsigned char sent[] = {'<', 0, 0xfe, '\\', '\n', '\t', '>'};
    struct ewtp_store_evidence ev[2] = {
        {.kind = "request",
         .name = "attempt-1/request-0-doc",
         .meta = "{\"peer\":\"tab\\there\"}",
         .body = sent,
         .body_len = sizeof(sent)},
        {.kind = "answer", .name = "attempt-1/answer", .body = "", .body_len = 0}};
    o.evidence = ev;
    o.n_evidence = 2;
    assert_int_equal(ewtp_store_record_outcome(old, &o), 0);
    ewtp_store_msgs_free(c, n);
    bool repeat = false;
    enum ewtp_store_state st;
    assert_int_equal(ewtp_store_op_request(old, "t1", "m-1", "cancel", "why", T0 + 7, &repeat, &st),
                     0);
    unsigned char secret[32], moved[32];
    assert_int_equal(ewtp_store_instance_key(old, secret), 0);
    ewtp_store_close(old);

    /* --without-evidence: the rest is copied, the evidence stays in the file. */
    char noev[600];
    store_locate(f, "noev", noev, sizeof(noev));
    uint64_t rows = 0, left = 0;
    char *why = NULL;
    assert_int_equal(ewtp_store_pg_import_sqlite(path, noev, true, &rows, &left, &why), 0);
    assert_null(why);
    assert_int_equal(left, 2);
    struct ewtp_store *plain = NULL;
    assert_int_equal(store_open(noev, NULL, &plain, NULL), 0);
    assert_int_equal(state_of(plain, "t1", "m-1"), EWTP_STORE_SUBMITTED);
    assert_int_equal(evidence_count(plain, "t1", "m-1"), 0);
    ewtp_store_close(plain);

    left = 99;
    assert_int_equal(ewtp_store_pg_import_sqlite(path, f->path, false, &rows, &left, &why), 0);
    assert_int_equal(left, 0);
    assert_null(why);
    assert_true(rows > 10);
    /* The instance secret moves with the messages (their copNos were derived from it). */
    assert_int_equal(ewtp_store_instance_key(f->st, moved), 0);
    assert_memory_equal(secret, moved, 32);
    assert_int_equal(ewtp_store_open_sqlite(path, NULL, &old, NULL), 0);
    /* The evidence byte for byte, and the same figure of bytes held. */
    struct ewtp_store_evidence_row *ra = NULL, *rb = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(ewtp_store_evidence_get(old, "t1", "m-1", &ra, &na), 0);
    assert_int_equal(ewtp_store_evidence_get(f->st, "t1", "m-1", &rb, &nb), 0);
    assert_int_equal(na, 2);
    assert_int_equal(nb, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ra[i].at, rb[i].at);
        assert_string_equal(ra[i].kind, rb[i].kind);
        assert_string_equal(ra[i].name, rb[i].name);
        assert_true((ra[i].meta == NULL) == (rb[i].meta == NULL));
        if (ra[i].meta)
            assert_string_equal(ra[i].meta, rb[i].meta);
        assert_int_equal(ra[i].body_len, rb[i].body_len);
        assert_memory_equal(ra[i].body, rb[i].body, ra[i].body_len);
    }
    assert_memory_equal(rb[0].body, sent, sizeof(sent));
    ewtp_store_evidence_free(ra, na);
    ewtp_store_evidence_free(rb, nb);
    uint64_t bytes_a = 0, bytes_b = 1;
    assert_int_equal(ewtp_store_evidence_bytes(old, &bytes_a), 0);
    assert_int_equal(ewtp_store_evidence_bytes(f->st, &bytes_b), 0);
    assert_int_equal(bytes_a, bytes_b);
    assert_int_equal(bytes_a, sizeof(sent) + strlen(ev[0].meta));
    const char *ids[] = {"m-1", "m-2", "m-3"};
    for (size_t i = 0; i < 3; i++) {
        char *a = json_of(ewtp_api_status_json, old, ids[i]);
        char *b = json_of(ewtp_api_status_json, f->st, ids[i]);
        assert_string_equal(a, b);
        free(a);
        free(b);
        a = json_of(ewtp_api_events_json, old, ids[i]);
        b = json_of(ewtp_api_events_json, f->st, ids[i]);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    int64_t num = 0;
    char *ref = NULL;
    assert_int_equal(ewtp_store_chain_get(f->st, "K", &num, &ref), 0);
    assert_int_equal(num, 1);
    assert_string_equal(ref, "R-1");
    free(ref);
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(ewtp_store_key_state_get(f->st, "K", &data, &len), 0);
    assert_int_equal(len, sizeof(blob));
    assert_memory_equal(data, blob, sizeof(blob));
    free(data);
    uint64_t cnt = 0;
    assert_int_equal(ewtp_store_webhook_pending(f->st, &cnt), 0);
    assert_int_equal(cnt, 1);
    assert_int_equal(ewtp_store_ops_pending(f->st, &cnt), 0);
    assert_int_equal(cnt, 1);
    assert_int_equal(ewtp_store_find_by_authority_ref(f->st, "cn", "R-1", &c), 0);
    assert_string_equal(c[0].id, "m-1");
    ewtp_store_msgs_free(c, 1);
    struct ewtp_store_msg *related = NULL;
    assert_int_equal(ewtp_store_related(f->st, rel, 1, NULL, NULL, &related, &n), 0);
    assert_int_equal(n, 1);
    ewtp_store_msgs_free(related, n);
    /* The accept order goes on after the copied messages; m-2 is next for its key. */
    accept_ok(f->st, "t1", "m-4", "K", T0 + 8);
    assert_true(key_of(f->st, "t1", "m-4") > key_of(f->st, "t1", "m-3"));
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 9, 10, 1000, "w", &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].id, "m-2");
    assert_string_equal(c[1].id, "m-3");
    ewtp_store_msgs_free(c, n);
    ewtp_store_close(old);

    assert_int_equal(ewtp_store_pg_import_sqlite(path, f->path, false, &rows, &left, &why),
                     -EWTP_EINVAL);
    assert_non_null(strstr(why, "not empty"));
    free(why);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--pg") == 0) {
        pg_conninfo = getenv("EWTP_TEST_PG_CONNINFO");
        if (!pg_conninfo || !*pg_conninfo) {
            fprintf(stderr, "test_store --pg: EWTP_TEST_PG_CONNINFO is not set "
                            "(run it through tests/pg_test_server.sh)\n");
            return 2;
        }
        /* The contract on PostgreSQL: every case but the SQLite-only ones. */
        const struct CMUnitTest pg_tests[] = {
            cmocka_unit_test_setup_teardown(test_accept_new_repeat_conflict, setup, teardown),
            cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_close_flushes_queue, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_wait_and_dispatch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_durable_after_kill, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ordering_keys, setup, teardown),
            cmocka_unit_test_setup_teardown(test_outcome_poll_at, setup, teardown),
            cmocka_unit_test_setup_teardown(test_outcome_poll_at, setup, teardown),
            cmocka_unit_test_setup_teardown(test_retry_now, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
            cmocka_unit_test_setup_teardown(test_chain_atomic, setup, teardown),
            cmocka_unit_test_setup_teardown(test_chain_first_and_key_state, setup, teardown),
            cmocka_unit_test_setup_teardown(test_receipts_by_ref, setup, teardown),
            cmocka_unit_test_setup_teardown(test_instance_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refs_across_tenants, setup, teardown),
            cmocka_unit_test_setup_teardown(test_relations, setup, teardown),
            cmocka_unit_test_setup_teardown(test_wait_for_approved, setup, teardown),
            cmocka_unit_test_setup_teardown(test_wait_failed_and_timeout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_op_cancel_durable, setup, teardown),
            cmocka_unit_test_setup_teardown(test_op_on_ended_message, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_pagination, setup, teardown),
            cmocka_unit_test_setup_teardown(test_webhook_outbox, setup, teardown),
            cmocka_unit_test_setup_teardown(test_evidence, setup, teardown),
            cmocka_unit_test_setup_teardown(test_evidence_with_outcome, setup, teardown),
            cmocka_unit_test_setup_teardown(test_evidence_outcome_crash, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pg_schema, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pg_schema_v3_upgrade, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pg_two_nodes, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pg_race_ordering, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pg_migrate, setup, teardown),
        };
        return cmocka_run_group_tests_name("store_pg", pg_tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accept_new_repeat_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_wait_and_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_after_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ordering_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_first_and_key_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_by_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refs_across_tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_approved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_deferred_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_failed_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_op_cancel_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_op_on_ended_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_v2_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence_with_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence_outcome_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
