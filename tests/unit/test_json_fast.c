/* Unit tests for sdk/src/json_fast.c: the one-pass reader builds exactly jansson's tree or
 * gives up, and the canonical writer writes exactly json_dumps(JSON_SORT_KEYS |
 * JSON_COMPACT). jansson itself is the oracle throughout. The internal functions are not
 * exported by libewtp, so the source is compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ewtp/errors.h>
#include <ewtp/message.h>

#include "json_fast.c"

#define FLAGS JSON_REJECT_DUPLICATES

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        if (k == 0)
            break;
        n += k;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The property every input must keep. Returns whether the fast reader took it. */
static bool same_as_jansson(const char *data, size_t len)
{
    json_error_t je;
    json_t *want = json_loadb(data, len, FLAGS, &je);
    json_t *got = ewtp_json_load_fast_(data, len, FLAGS, NULL);
    if (!want) {
        if (got)
            fail_msg("the fast reader took what jansson refuses (%s): %.*s", je.text,
                     (int)(len > 200 ? 200 : len), data);
        return false;
    }
    if (!got) {
        json_decref(want);
        return false;
    }
    assert_true(json_equal(want, got));
    /* Member order too: jansson dumps in insertion order without JSON_SORT_KEYS. */
    char *a = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    /* And the canonical writer against jansson's canonical dump of jansson's own tree. */
    char *ca = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    size_t clen = 0;
    char *cb = ewtp_json_dump_canonical_(got, &clen);
    assert_non_null(ca);
    assert_non_null(cb);
    assert_string_equal(ca, cb);
    assert_int_equal(clen, strlen(ca));
    free(a);
    free(b);
    free(ca);
    free(cb);
    json_decref(want);
    json_decref(got);
    return true;
}

static void test_vectors(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob(EWTP_SOURCE_DIR "/plugins/*/vectors/*/input.json", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 50);
    size_t taken = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        size_t len;
        char *data = read_all(g.gl_pathv[i], &len);
        assert_non_null(data);
        json_t *j = json_loadb(data, len, FLAGS, NULL);
        if (j && json_is_object(j)) {
            /* Every vector jansson reads as an object, the fast reader reads too. */
            if (!same_as_jansson(data, len))
                fail_msg("the fast reader gave up on %s", g.gl_pathv[i]);
            taken++;
        } else {
            same_as_jansson(data, len);
        }
        json_decref(j);
        free(data);
    }
    assert_true(taken >= 50);
    globfree(&g);
}

/* Inputs at each edge of the grammar: accepted ones must be taken and equal. */
static void test_crafted_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "{}",
        "[]",
        " \t\r\n{ \"a\" : 1 , \"b\":[ ] ,\"c\":{}}\n ",
        "{\"s\":\"plain\",\"e\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"}",
        "{\"u\":\"\\u00e9\\u4e2d\\uD83D\\uDE00\\u0001\\u001f\\u007F\"}",
        "{\"utf8\":\"caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\"}",
        "{\"i\":[0,-0,1,-1,9223372036854775807,-9223372036854775808,1234567890123456789]}",
        "{\"l\":[true,false,null]}",
        "[[[[[[[[[[{\"deep\":[1]}]]]]]]]]]]",
        "{\"a\":1,\"A\":2,\"ab\":3,\"b\":4,\"\":5,\"\xc3\xa9\":6,\"a\\u0001\":7}",
        "{\"k\\n\":\"key with an escape\",\"x\":{\"k\\u00e9\":[\"\\\\\"]}}",
        "{\"del\":\"\x7f\"}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!same_as_jansson(ok[i], strlen(ok[i])))
            fail_msg("gave up on a valid input: %s", ok[i]);
}

/* Invalid inputs (jansson refuses each) and valid ones left to jansson. */
static void test_crafted_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "\"top-level string\"",
        "1",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{'a':1}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":1e+}",
        "{\"a\":+1}",
        "{\"a\":9223372036854775808}",
        "{\"a\":-9223372036854775809}",
        "{\"a\":1e400}",
        "{\"a\":truex}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":True}",
        "{\"a\":\"\\u0000\"}",
        "{\"a\\u0000\":1}",
        "{\"a\":\"\\uD800\"}",
        "{\"a\":\"\\uDC00\"}",
        "{\"a\":\"\\uD800\\u0041\"}",
        "{\"a\":\"\\u12G4\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"line\nbreak\"}",
        "{\"a\":\"unterminated}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\xe4\xb8\"}",
        "{\"a\":1,\"a\":2}",
        "\xef\xbb\xbf{}",
        "{\"a\":[1 2]}",
        "{\"a\" 1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        if (same_as_jansson(bad[i], len))
            fail_msg("took an input jansson refuses: %s", bad[i]);
        assert_null(ewtp_json_load_fast_(bad[i], len, FLAGS, NULL));
    }
    /* A NUL byte inside the buffer. */
    static const char nul[] = "{\"a\":\"x\0y\"}";
    assert_null(ewtp_json_load_fast_(nul, sizeof(nul) - 1, FLAGS, NULL));
    assert_false(same_as_jansson(nul, sizeof(nul) - 1));
    /* Duplicates are jansson's business only when asked to refuse them. */
    json_t *dup = ewtp_json_load_fast_("{\"a\":1,\"a\":2}", 13, 0, NULL);
    assert_non_null(dup);
    json_t *jdup = json_loadb("{\"a\":1,\"a\":2}", 13, 0, NULL);
    assert_true(json_equal(dup, jdup));
    json_decref(dup);
    json_decref(jdup);
    /* Reals: valid, left to jansson (no binary floating point in sdk/). */
    static const char reals[] = "{\"r\":[0.0,-0.0,1.5,-2.25e-3,1E10,1e+10,1e-10,1e308,1e-400]}";
    assert_null(ewtp_json_load_fast_(reals, sizeof(reals) - 1, FLAGS, NULL));
    json_t *jr = json_loadb(reals, sizeof(reals) - 1, FLAGS, NULL);
    assert_non_null(jr);
    json_decref(jr);
    /* Deeper than the reader's own limit: valid, left to jansson. */
    char deep[2 * (FAST_MAX_DEPTH + 2) + 1];
    size_t d = 0;
    for (int i = 0; i < FAST_MAX_DEPTH + 2; i++)
        deep[d++] = '[';
    for (int i = 0; i < FAST_MAX_DEPTH + 2; i++)
        deep[d++] = ']';
    deep[d] = '\0';
    assert_null(ewtp_json_load_fast_(deep, d, FLAGS, NULL));
    json_t *jdeep = json_loadb(deep, d, FLAGS, NULL);
    assert_non_null(jdeep);
    json_decref(jdeep);
}

/* Random edits of a real message: whatever the reader takes, jansson reads the same way,
 * and it refuses everything jansson refuses. Deterministic (fixed seed), bounded. */
static void test_mutations(void **state)
{
    (void)state;
    size_t len;
    char *base = read_all(EWTP_SOURCE_DIR "/plugins/cn/vectors/import-order-311/input.json", &len);
    assert_non_null(base);
    static const char pieces[] = "\"\\,:{}[]0123456789-+.eEtfnul \t\n\x01\x7f\xc3\xa9\xe4\xff\0";
    char *buf = malloc(len + 16);
    assert_non_null(buf);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t taken = 0, refused = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, base, len);
        size_t n = len;
        int edits = 1 + round % 3;
        for (int e = 0; e < edits; e++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = (size_t)(x % n);
            char c = pieces[(x >> 32) % (sizeof(pieces) - 1)];
            switch ((x >> 48) % 3) {
            case 0: /* replace */
                buf[at] = c;
                break;
            case 1: /* insert */
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = c;
                n++;
                break;
            default: /* delete */
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
        }
        if (same_as_jansson(buf, n))
            taken++;
        else
            refused++;
    }
    /* Both outcomes were exercised. */
    assert_true(taken > 1000);
    assert_true(refused > 1000);
    free(buf);
    free(base);
}

/* Through the public API: the canonical form of a parsed message is jansson's, and the
 * 400 answers (the fallback's errors) keep jansson's text and position. */
static void test_message_canonical_and_errors(void **state)
{
    (void)state;
    size_t len;
    char *data = read_all(EWTP_SOURCE_DIR "/plugins/cn/vectors/import-order-311/input.json", &len);
    assert_non_null(data);
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_message *m = NULL;
    assert_int_equal(ewtp_message_parse(data, len, NULL, &m, errs), 0);
    char *canon = ewtp_message_canonical(m);
    json_t *j = json_loadb(data, len, FLAGS, NULL);
    char *want = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(canon, want);
    free(canon);
    free(want);
    json_decref(j);
    ewtp_message_free(m);

    static const char broken[] = "{\"schema\": \"ewtp/1\",\n \"id\": 01}";
    ewtp_errors_clear(errs);
    assert_int_equal(ewtp_message_parse(broken, sizeof(broken) - 1, NULL, &m, errs), -EWTP_EFORMAT);
    char *got = ewtp_errors_to_json(errs);
    json_error_t je;
    assert_null(json_loadb(broken, sizeof(broken) - 1, FLAGS, &je));
    char expect[300];
    snprintf(expect, sizeof(expect), "not valid JSON: %s at line %d, column %d", je.text, je.line,
             je.column);
    assert_non_null(strstr(got, expect));
    free(got);

    /* Too deep for the message limit (EWTP_MESSAGE_MAX_DEPTH) but not for the fast reader:
     * prescan's error. */
    char deep[256];
    size_t n = (size_t)snprintf(deep, sizeof(deep), "{\"x\":");
    for (int i = 0; i < 70; i++)
        deep[n++] = '[';
    for (int i = 0; i < 70; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    unsigned depth = 0;
    json_t *dj = ewtp_json_load_fast_(deep, n, FLAGS, &depth);
    assert_non_null(dj);
    assert_int_equal(depth, 71);
    json_decref(dj);
    ewtp_errors_clear(errs);
    assert_int_equal(ewtp_message_parse(deep, n, NULL, &m, errs), -EWTP_EFORMAT);
    got = ewtp_errors_to_json(errs);
    assert_non_null(strstr(got, "\"depth\""));
    char limit[64];
    snprintf(limit, sizeof(limit), "nesting deeper than %u levels", EWTP_MESSAGE_MAX_DEPTH);
    assert_non_null(strstr(got, limit));
    free(got);
    ewtp_errors_free(errs);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_crafted_valid),
        cmocka_unit_test(test_crafted_refused),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_message_canonical_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
