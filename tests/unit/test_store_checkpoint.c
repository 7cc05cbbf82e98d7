/* test_store_checkpoint.c — issue 20: the SQLite store checkpoints its WAL on a thread of its
 * own, never inside a group commit, and API reads use reader connections; the shared
 * connection's commits are made durable by fdatasyncs of the WAL that concurrent commits share.
 *
 * No clock: the checkpointer's work is seen in the database file, which only a checkpoint
 * writes while the store is open (commits go to the WAL); the wait for it is a bounded loop
 * on that condition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <ewtp/errors.h>

#include "store.h"
#include "store_sqlite.h"

#define T0 INT64_C(1795000000000)

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A 4 KB canonical form per message: a thousand WAL pages every few hundred accepts. */
static void accept_many(struct ewtp_store *st, int from, int n)
{
    static char canon[4200];
    for (int i = from; i < from + n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "m%d", i);
        int k = snprintf(canon, sizeof(canon), "{\"id\":\"%s\",\"p\":\"", id);
        memset(canon + k, 'x', 4000);
        snprintf(canon + k + 4000, sizeof(canon) - (size_t)k - 4000, "\"}");
        char hash[65];
        snprintf(hash, sizeof(hash), "%064d", i);
        struct ewtp_store_accept_req req = {
            .tenant = "t1",
            .id = id,
            .kind = "order",
            .destination = "CN",
            .plugin = "cn",
            .canonical = canon,
            .hash = hash,
            .ordering_key = i % 2 ? "k" : NULL,
            .now = T0,
        };
        enum ewtp_store_accept_result res = EWTP_STORE_CONFLICT;
        assert_int_equal(ewtp_store_accept_wait(st, &req, &res, NULL), 0);
        assert_int_equal(res, EWTP_STORE_NEW);
    }
}

static void test_checkpointer(void **state)
{
    (void)state;
    char dir[] = "/tmp/ewtp-ckpt.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[300], wal[320];
    snprintf(path, sizeof(path), "%s/store.db", dir);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    struct ewtp_store *st = NULL;
    char *why = NULL;
    assert_int_equal(ewtp_store_open_sqlite(path, NULL, &st, &why), 0);
    off_t empty = file_size(path);
    assert_true(empty >= 0);
    uint64_t before = ewtp_store_sqlite_checkpoints();
    /* Over CHECKPOINT_PAGES (1,000) of WAL: the commits wake the checkpointer. */
    accept_many(st, 0, 600);
    assert_true(file_size(wal) > 1000 * 4096);
    /* The checkpoint copies the pages into the database file while the store is open. Bounded:
     * each round accepts one more message (a commit, so another wake-up) and gives the
     * checkpointer a moment. */
    bool grown = false;
    for (int round = 0; round < 200 && !grown; round++) {
        accept_many(st, 1000 + round, 1);
        grown = file_size(path) > empty + 2 * 1024 * 1024; /* 600 messages of 4 KB */
        if (!grown)
            usleep(50 * 1000);
    }
    assert_true(grown);
    /* Done by the checkpointer: no commit checkpoints (their WAL hook is the store's). */
    assert_true(ewtp_store_sqlite_checkpoints() > before);
    /* The readers see every committed message, the writer's last ones included. */
    struct ewtp_store_msg *m = NULL;
    assert_int_equal(ewtp_store_get(st, "t1", "m599", &m), 0);
    assert_string_equal(m->id, "m599");
    ewtp_store_msgs_free(m, 1);
    const char *keys[] = {"nothing-related"};
    struct ewtp_store_msg *rel = NULL;
    size_t n_rel = 5;
    assert_int_equal(ewtp_store_related(st, keys, 1, "t1", "m1", &rel, &n_rel), 0);
    assert_int_equal(n_rel, 0);
    ewtp_store_close(st);
    /* What was acknowledged is in the file after close. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_true(sqlite3_column_int(s, 0) >= 601);
    sqlite3_finalize(s);
    sqlite3_close(db);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Records the outcome of each of its messages (claimed by the test), one transaction each. */
struct outcome_thread {
    struct ewtp_store *st;
    const struct ewtp_store_msg *msgs;
    size_t n;
    int failed;
};

static void *record_outcomes(void *arg)
{
    struct outcome_thread *t = arg;
    for (size_t i = 0; i < t->n; i++) {
        struct ewtp_store_outcome o = {.key = t->msgs[i].key,
                                       .attempt = t->msgs[i].attempts,
                                       .state = EWTP_STORE_SUBMITTED,
                                       .authority_ref = "REF",
                                       .now = T0 + 2};
        if (ewtp_store_record_outcome(t->st, &o) != 0)
            t->failed++;
    }
    return NULL;
}

/* Every write transaction of the shared connection returns only after an fdatasync of the WAL
 * that followed its commit (synchronous=NORMAL there, store_sqlite.c): one alone costs exactly
 * one, a read none, and transactions committed at once share them. What was recorded is in the
 * file after close. */
static void test_shared_commits_synced(void **state)
{
    (void)state;
    char dir[] = "/tmp/ewtp-wsync.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof(path), "%s/store.db", dir);
    struct ewtp_store *st = NULL;
    char *why = NULL;
    assert_int_equal(ewtp_store_open_sqlite(path, NULL, &st, &why), 0);
    enum { THREADS = 8, EACH = 25 };
    accept_many(st, 0, THREADS * EACH);

    /* One claim alone: one transaction, one fdatasync after it. */
    uint64_t before = ewtp_store_sqlite_wal_syncs();
    struct ewtp_store_msg *c = NULL;
    size_t n = 0;
    assert_int_equal(ewtp_store_claim_due(st, T0 + 1, THREADS * EACH, 60000, "node", &c, &n), 0);
    assert_int_equal(n, THREADS * EACH / 2 + 1); /* half share key "k": its first one only */
    assert_int_equal(ewtp_store_sqlite_wal_syncs() - before, 1);
    /* A read: none. */
    before = ewtp_store_sqlite_wal_syncs();
    struct ewtp_store_msg *m = NULL;
    assert_int_equal(ewtp_store_get(st, "t1", "m0", &m), 0);
    ewtp_store_msgs_free(m, 1);
    assert_int_equal(ewtp_store_sqlite_wal_syncs() - before, 0);

    /* Outcomes from eight threads at once: each returns synced, never more syncs than
     * commits. */
    struct outcome_thread t[THREADS];
    pthread_t tid[THREADS];
    size_t per = n / THREADS, from = 0;
    before = ewtp_store_sqlite_wal_syncs();
    for (int i = 0; i < THREADS; i++) {
        size_t k = i == THREADS - 1 ? n - from : per;
        t[i] = (struct outcome_thread){.st = st, .msgs = c + from, .n = k};
        from += k;
        assert_int_equal(pthread_create(&tid[i], NULL, record_outcomes, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(t[i].failed, 0);
    }
    uint64_t syncs = ewtp_store_sqlite_wal_syncs() - before;
    assert_true(syncs >= 1);
    assert_true(syncs <= n);
    print_message("%zu outcomes from %d threads: %llu fdatasyncs of the WAL\n", n, THREADS,
                  (unsigned long long)syncs);
    ewtp_store_msgs_free(c, n);
    ewtp_store_close(st);

    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM messages WHERE state = 'submitted'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), (int)n);
    sqlite3_finalize(s);
    sqlite3_close(db);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpointer),
        cmocka_unit_test(test_shared_commits_synced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
