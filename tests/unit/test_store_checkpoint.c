/* test_store_checkpoint.c — issue 20: the SQLite store checkpoints its WAL on a thread of its
 * own, never inside a group commit, and API reads use reader connections.
 *
 * No clock: the checkpointer's work is seen in the database file, which only a checkpoint
 * writes while the store is open (commits go to the WAL); the wait for it is a bounded loop
 * on that condition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpointer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
