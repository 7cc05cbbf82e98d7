/* test_claim_cost.c — issue 20: a claim costs the same with 1,000 or 100,000 messages queued,
 * ordering keys stay strict (a dead message blocks only its own key), China orders each get a
 * key of their own, and an accept's INSERT builds no temporary b-tree (schema version 8).
 *
 * No clock (DECISIONS "Tests, CI and measurements"): the work is counted in SQLite VM steps of
 * the claim select (store_sqlite.h), the two backlogs compared in one run with a generous
 * factor. The backlogs are seeded into the SQLite file directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/message.h>
#include <ewtp/plugin.h>
#include <ewtp/settings.h>

#include "store.h"
#include "store_sqlite.h"

#define T0 INT64_C(1795000000000)
#define BATCH 64

struct fix {
    char dir[256];
    char path[300];
    struct ewtp_store *st;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ewtp-claimcost.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
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

static void open_store(struct fix *f)
{
    char *why = NULL;
    assert_int_equal(ewtp_store_open_sqlite(f->path, NULL, &f->st, &why), 0);
    assert_null(why);
}

static void close_store(struct fix *f)
{
    ewtp_store_close(f->st);
    f->st = NULL;
}

static void sql(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, text, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        print_error("%s: %s\n", text, err ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

static int64_t sql_int(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, text, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* n messages queued, as a festival backlog looks: the first half on one ordering key whose
 * head is dead (a whole channel, as China's key was), the second half in orders of two
 * messages each, one in ten without a key. Inserted through the store's own schema and
 * triggers. */
static void seed(struct fix *f, int n)
{
    open_store(f);
    close_store(f);
    char text[1600];
    snprintf(text, sizeof(text),
             "BEGIN;"
             "WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < %d)"
             " INSERT INTO messages(tenant, id, kind, destination, plugin, state, hash, canonical,"
             " ordering_key, created_at, updated_at)"
             " SELECT 't1', 'm' || x, 'order', 'ZZ', 'zz', CASE WHEN x = 1 THEN 'dead'"
             " ELSE 'accepted' END, 'h', '{}',"
             " CASE WHEN x <= %d THEN 'chan' WHEN x %% 10 = 0 THEN NULL"
             " ELSE 'ord:' || (x / 2) END, %" PRId64 ", %" PRId64 " FROM i;"
             "COMMIT;",
             n, n / 2, T0, T0);
    sql(f->path, text);
    open_store(f);
}

/* No claimed (delivering) message has a live message of its key before it. */
static void assert_keys_strict(struct fix *f)
{
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM messages m WHERE m.state = 'delivering'"
                                      " AND m.ordering_key IS NOT NULL AND EXISTS(SELECT 1 FROM"
                                      " messages p WHERE p.ordering_key = m.ordering_key AND"
                                      " p.seq < m.seq AND p.state IN ('accepted', 'delivering',"
                                      " 'retrying', 'dead'))"),
                     0);
}

/* VM steps of three claims of BATCH on a backlog of n. */
static uint64_t claim_work(int n)
{
    struct fix *f = NULL;
    setup((void **)&f);
    seed(f, n);
    uint64_t before = ewtp_store_sqlite_claim_steps();
    for (int k = 0; k < 3; k++) {
        struct ewtp_store_msg *msgs = NULL;
        size_t got = 0;
        assert_int_equal(ewtp_store_claim_due(f->st, T0 + 1000, BATCH, 60000, "t", &msgs, &got), 0);
        assert_int_equal(got, BATCH);
        for (size_t i = 0; i < got; i++)
            assert_true(msgs[i].ordering_key == NULL || strcmp(msgs[i].ordering_key, "chan") != 0);
        ewtp_store_msgs_free(msgs, got);
    }
    uint64_t work = ewtp_store_sqlite_claim_steps() - before;
    assert_keys_strict(f);
    teardown((void **)&f);
    return work;
}

static void test_claim_cost_flat(void **state)
{
    (void)state;
    uint64_t small = claim_work(1000);
    uint64_t big = claim_work(100000);
    print_message("claim work (SQLite VM steps, 3 claims of %d): %" PRIu64 " with 1,000 queued,"
                  " %" PRIu64 " with 100,000 queued\n",
                  BATCH, small, big);
    assert_true(small > 0);
    /* Generous: the same batch must not cost more than twice as much with 100 times the
     * backlog (before issue 20 it cost about 100 times as much). */
    assert_true(big <= 2 * small + 1000);
}

/* VM steps of claiming the one pending operation (a cancel) among n messages the authority
 * has (submitted and approved, each with a reference), as after a day's festival. */
static uint64_t op_claim_work(int n)
{
    struct fix *f = NULL;
    setup((void **)&f);
    open_store(f);
    close_store(f);
    char text[1600];
    snprintf(text, sizeof(text),
             "BEGIN;"
             "WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < %d)"
             " INSERT INTO messages(tenant, id, kind, destination, plugin, state, hash, canonical,"
             " authority_ref, created_at, updated_at)"
             " SELECT 't1', 'm' || x, 'order', 'ZZ', 'zz', CASE WHEN x %% 3 = 0 THEN 'submitted'"
             " ELSE 'approved' END, 'h', '{}', 'REF-' || x, %" PRId64 ", %" PRId64 " FROM i;"
             "COMMIT;",
             n, T0, T0);
    sql(f->path, text);
    open_store(f);
    bool repeat = true;
    enum ewtp_store_state state;
    assert_int_equal(
        ewtp_store_op_request(f->st, "t1", "m3", "cancel", "test", T0, &repeat, &state), 0);
    assert_false(repeat);
    uint64_t before = ewtp_store_sqlite_op_claim_steps();
    struct ewtp_store_op *ops = NULL;
    size_t got = 0;
    assert_int_equal(ewtp_store_op_claim(f->st, T0 + 1000, 8, 60000, "t", &ops, &got), 0);
    assert_int_equal(got, 1);
    assert_string_equal(ops[0].msg.id, "m3");
    ewtp_store_ops_free(ops, got);
    uint64_t work = ewtp_store_sqlite_op_claim_steps() - before;
    teardown((void **)&f);
    return work;
}

/* The operation claim, run at every dispatcher scan, walks the live operations, not every
 * message that ever reached the authority (it did: 5 % of ewtpd's CPU while 10,000 drained). */
static void test_op_claim_cost_flat(void **state)
{
    (void)state;
    uint64_t small = op_claim_work(1000);
    uint64_t big = op_claim_work(100000);
    print_message("operation claim work (SQLite VM steps): %" PRIu64 " with 1,000 messages,"
                  " %" PRIu64 " with 100,000\n",
                  small, big);
    assert_true(small > 0);
    assert_true(big <= 2 * small + 100);
}

static size_t claim_ids(struct fix *f, char ids[][16], size_t max)
{
    struct ewtp_store_msg *msgs = NULL;
    size_t got = 0;
    assert_int_equal(ewtp_store_claim_due(f->st, T0 + 1000, max, 60000, "t", &msgs, &got), 0);
    for (size_t i = 0; i < got; i++)
        snprintf(ids[i], 16, "%s", msgs[i].id);
    ewtp_store_msgs_free(msgs, got);
    return got;
}

/* A dead message blocks its own key only; its follower goes once it is replayed and
 * submitted, and a message replayed into a key blocks that key's later ones again. */
static void test_dead_blocks_only_its_key(void **state)
{
    struct fix *f = *state;
    open_store(f);
    close_store(f);
    sql(f->path,
        "INSERT INTO messages(tenant, id, kind, destination, plugin, state, hash,"
        " canonical, ordering_key, created_at, updated_at) VALUES"
        " ('t1', 'o1-order', 'order', 'CN', 'cn', 'dead', 'h', '{}', 'cn:t1:D:P:O1', 0, 0),"
        " ('t1', 'o1-inv', 'declaration', 'CN', 'cn', 'accepted', 'h', '{}',"
        "  'cn:t1:D:P:O1', 0, 0),"
        " ('t1', 'o2-order', 'order', 'CN', 'cn', 'accepted', 'h', '{}', 'cn:t1:D:P:O2', 0, 0),"
        " ('t1', 'o2-inv', 'declaration', 'CN', 'cn', 'accepted', 'h', '{}',"
        "  'cn:t1:D:P:O2', 0, 0),"
        " ('t1', 'manifest', 'manifest', 'CN', 'cn', 'accepted', 'h', '{}', NULL, 0, 0)");
    open_store(f);
    char ids[8][16];
    size_t n = claim_ids(f, ids, 8);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "o2-order");
    assert_string_equal(ids[1], "manifest");
    /* o2's order submitted: its inventory goes; o1's still waits behind the dead order. */
    sql(f->path, "UPDATE messages SET state = 'submitted' WHERE id = 'o2-order'");
    n = claim_ids(f, ids, 8);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "o2-inv");
    /* The dead order replayed: it goes first, then its inventory. */
    assert_int_equal(ewtp_store_replay(f->st, "t1", "o1-order", T0), 0);
    n = claim_ids(f, ids, 8);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "o1-order");
    assert_int_equal(claim_ids(f, ids, 8), 0);
    sql(f->path, "UPDATE messages SET state = 'approved' WHERE id = 'o1-order'");
    n = claim_ids(f, ids, 8);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "o1-inv");
    /* A finished order brought back (replayed) blocks the inventory behind it again. */
    sql(f->path, "UPDATE messages SET state = 'retrying' WHERE id = 'o1-inv';"
                 "UPDATE messages SET state = 'accepted' WHERE id = 'o1-order'");
    n = claim_ids(f, ids, 8);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "o1-order");
    assert_keys_strict(f);
}

/* An upgraded version 5 file gets the flag computed for what is queued. */
static void test_v5_upgrade(void **state)
{
    struct fix *f = *state;
    open_store(f);
    close_store(f);
    sql(f->path, "DROP TRIGGER messages_key_new; DROP TRIGGER messages_key_leave;"
                 "DROP TRIGGER messages_key_back; DROP INDEX messages_ready;"
                 "ALTER TABLE messages DROP COLUMN blocked;"
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES(5);"
                 "INSERT INTO messages(tenant, id, kind, destination, plugin, state, hash,"
                 " canonical, ordering_key, created_at, updated_at) VALUES"
                 " ('t1', 'a', 'order', 'ZZ', 'zz', 'accepted', 'h', '{}', 'k', 0, 0),"
                 " ('t1', 'b', 'order', 'ZZ', 'zz', 'accepted', 'h', '{}', 'k', 0, 0)");
    open_store(f);
    assert_int_equal(sql_int(f->path, "SELECT max(version) FROM schema_version"), 8);
    char ids[4][16];
    assert_int_equal(claim_ids(f, ids, 4), 1);
    assert_string_equal(ids[0], "a");
}

/* Temporary b-trees (OpenEphemeral) an accept's INSERT opens, with its triggers' programs:
 * SQLite builds one per statement for a constant IN list of more than two values. */
static int64_t insert_temp_btrees(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "EXPLAIN INSERT INTO messages(tenant, id, kind, destination,"
                           " plugin, state, hash, canonical, ordering_key, created_at,"
                           " updated_at) VALUES('t1', 'x', 'order', 'ZZ', 'zz',"
                           " 'accepted', 'h', '{}', 'k', 0, 0)",
                           -1, &s, NULL),
        SQLITE_OK);
    int64_t n = 0, ops = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        ops++;
        const char *op = (const char *)sqlite3_column_text(s, 1);
        n += op && strcmp(op, "OpenEphemeral") == 0;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_true(ops > 10);
    return n;
}

/* A version 7 file (the live states as `IN (...)` in messages_live_key and the triggers)
 * is upgraded in place to version 8's comparisons: the same claims, and an accept's INSERT
 * no longer builds temporary b-trees (issue 20). */
static void test_v7_upgrade(void **state)
{
    struct fix *f = *state;
    open_store(f);
    close_store(f);
    assert_int_equal(insert_temp_btrees(f->path), 0);
    sql(f->path,
        "DROP TRIGGER messages_key_new; DROP TRIGGER messages_key_leave;"
        " DROP TRIGGER messages_key_back; DROP INDEX messages_live_key;"
        "CREATE INDEX messages_live_key ON messages(ordering_key, seq)"
        " WHERE ordering_key IS NOT NULL AND state IN ('accepted','delivering','retrying','dead');"
        "CREATE TRIGGER messages_key_new AFTER INSERT ON messages"
        " WHEN new.ordering_key IS NOT NULL AND new.state IN"
        " ('accepted','delivering','retrying','dead') BEGIN UPDATE messages SET blocked = 1"
        " WHERE seq = new.seq AND EXISTS(SELECT 1 FROM messages p WHERE p.ordering_key ="
        " new.ordering_key AND p.state IN ('accepted','delivering','retrying','dead')"
        " AND p.seq < new.seq); END;"
        "DELETE FROM schema_version; INSERT INTO schema_version VALUES(7);"
        "INSERT INTO messages(tenant, id, kind, destination, plugin, state, hash, canonical,"
        " ordering_key, created_at, updated_at) VALUES"
        " ('t1', 'a', 'order', 'ZZ', 'zz', 'accepted', 'h', '{}', 'k', 0, 0),"
        " ('t1', 'b', 'order', 'ZZ', 'zz', 'accepted', 'h', '{}', 'k', 0, 0)");
    /* What version 7 cost: the check could fail. */
    assert_true(insert_temp_btrees(f->path) > 0);
    assert_int_equal(sql_int(f->path, "SELECT blocked FROM messages WHERE id = 'b'"), 1);
    open_store(f);
    assert_int_equal(sql_int(f->path, "SELECT max(version) FROM schema_version"), 8);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                      " ('messages_live_key', 'messages_key_new',"
                                      " 'messages_key_leave', 'messages_key_back')"
                                      " AND sql NOT LIKE '% IN (%'"),
                     4);
    close_store(f);
    assert_int_equal(insert_temp_btrees(f->path), 0);
    open_store(f);
    char ids[4][16];
    assert_int_equal(claim_ids(f, ids, 4), 1);
    assert_string_equal(ids[0], "a");
    /* a leaves the live states: b is unblocked by the upgraded trigger and goes next. */
    sql(f->path, "UPDATE messages SET state = 'submitted' WHERE id = 'a'");
    assert_int_equal(claim_ids(f, ids, 4), 1);
    assert_string_equal(ids[0], "b");
    assert_keys_strict(f);
}

/* ---- China: one key per tenant, channel and order ------------------------------------- */

static struct ewtp_message *load_msg(const char *rel)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/plugins/cn/vectors/%s", EWTP_SOURCE_DIR, rel);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t len = fread(buf, 1, (1 << 20) - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m = NULL;
    assert_int_equal(ewtp_message_parse(buf, len, NULL, &m, e), 0);
    ewtp_errors_free(e);
    free(buf);
    return m;
}

static char *classify(const struct ewtp_plugin *p, const void *st, const char *tenant,
                      const struct ewtp_message *m)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_host host = {.size = sizeof(host)};
    struct ewtp_call c = EWTP_CALL_INIT(.tenant = tenant, .msg = m, .op = EWTP_OP_SUBMIT,
                                        .arena = a, .host = &host, .now_ms = T0);
    struct ewtp_route_info r = EWTP_ROUTE_INFO_INIT();
    p->classify(st, &c, &r);
    char *key = r.ordering_key ? strdup(r.ordering_key) : NULL;
    ewtp_arena_free(a);
    return key;
}

static void test_cn_order_keys(void **state)
{
    (void)state;
    char so[600];
    snprintf(so, sizeof(so), "%s/plugins/ewtp-cn.so", EWTP_BUILD_DIR);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        print_error("%s\n", dlerror());
    assert_non_null(h);
    const struct ewtp_plugin *p = dlsym(h, EWTP_PLUGIN_SYMBOL);
    assert_non_null(p);
    struct ewtp_errors *why = ewtp_errors_new();
    struct ewtp_settings *s = ewtp_settings_from_json("{}", 2, why);
    struct ewtp_host host = {.size = sizeof(host)};
    void *st = NULL;
    assert_int_equal(p->create(&host, s, &st, why), 0);

    struct ewtp_message *order = load_msg("import-declaration-621/related/1-order.json");
    struct ewtp_message *inv = load_msg("import-declaration-621/input.json");
    struct ewtp_message *other = load_msg("import-order-311/input.json");
    struct ewtp_message *manifest = load_msg("import-manifest-711/input.json");
    char *k_order = classify(p, st, "t1", order);
    char *k_inv = classify(p, st, "t1", inv);
    char *k_other = classify(p, st, "t1", other);
    char *k_order_t2 = classify(p, st, "t2", order);
    char *k_manifest = classify(p, st, "t1", manifest);
    assert_non_null(k_order);
    assert_non_null(k_inv);
    assert_non_null(k_other);
    /* An order and its inventory: one key, scoped to the tenant and channel. */
    assert_string_equal(k_order, k_inv);
    assert_memory_equal(k_order, "cn:t1:", 6);
    /* Another order, or another tenant: another key; no order number: no key. */
    if (order->order && other->order && strcmp(order->order->number, other->order->number) != 0)
        assert_string_not_equal(k_order, k_other);
    assert_string_not_equal(k_order, k_order_t2);
    assert_null(k_manifest);
    free(k_order);
    free(k_inv);
    free(k_other);
    free(k_order_t2);
    free(k_manifest);
    ewtp_message_free(order);
    ewtp_message_free(inv);
    ewtp_message_free(other);
    ewtp_message_free(manifest);
    p->destroy(st);
    ewtp_settings_free(s);
    ewtp_errors_free(why);
    dlclose(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_cost_flat),
        cmocka_unit_test(test_op_claim_cost_flat),
        cmocka_unit_test_setup_teardown(test_dead_blocks_only_its_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v5_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v7_upgrade, setup, teardown),
        cmocka_unit_test(test_cn_order_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
