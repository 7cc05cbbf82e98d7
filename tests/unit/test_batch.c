/* Unit tests of the dispatcher's batching rules (daemon/batch.c): maximum wait, limits after
 * translation (split or reject), splitting into pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "batch.h"

/* MyInvois' published limits. */
static const struct ewtp_batch_limits my = {.max_documents = 100,
                                            .max_request_bytes = 5u * 1024u * 1024u,
                                            .max_document_bytes = 300u * 1024u,
                                            .max_wait_ms = 2000};

static void test_wait(void **state)
{
    (void)state;
    /* Not full: wait until the oldest has waited max_wait_ms. */
    assert_int_equal(ewtp_batch_wait(&my, 1, 1000, 1000, 300000), 2000);
    assert_int_equal(ewtp_batch_wait(&my, 99, 1000, 2500, 300000), 500);
    assert_int_equal(ewtp_batch_wait(&my, 99, 1000, 3000, 300000), 0);
    assert_int_equal(ewtp_batch_wait(&my, 99, 1000, 9000, 300000), 0);
    /* Full: now. */
    assert_int_equal(ewtp_batch_wait(&my, 100, 1000, 1000, 300000), 0);
    assert_int_equal(ewtp_batch_wait(&my, 250, 1000, 1000, 300000), 0);
    /* Never so long that the lease could expire while held. */
    assert_int_equal(ewtp_batch_wait(&my, 1, 1000, 1000, 4000), 1000);
    assert_int_equal(ewtp_batch_wait(&my, 1, 1000, 1000, 0), 2000);
    /* No maximum wait declared: what one claim brings goes at once. */
    struct ewtp_batch_limits nowait = my;
    nowait.max_wait_ms = 0;
    assert_int_equal(ewtp_batch_wait(&nowait, 1, 1000, 1000, 300000), 0);
    assert_int_equal(ewtp_batch_wait(NULL, 1, 0, 0, 0), 0);
    assert_int_equal(ewtp_batch_max(&my), 100);
    assert_int_equal(ewtp_batch_max(&nowait), 100);
    struct ewtp_batch_limits none = {0};
    assert_int_equal(ewtp_batch_max(&none), 1);
    assert_int_equal(ewtp_batch_max(NULL), 1);
}

static void test_fit(void **state)
{
    (void)state;
    size_t pieces, size, limit;
    const char *what;
    size_t docs[3] = {10000, 20000, 30000};
    size_t req[1] = {80000};
    assert_int_equal(ewtp_batch_fit(&my, 3, req, 1, docs, 3, &pieces, &what, &size, &limit),
                     EWTP_BATCH_FITS);
    assert_int_equal(pieces, 1);
    /* One document over 300 KB in a batch of three: halve until it is alone. */
    docs[1] = 300u * 1024u + 1;
    assert_int_equal(ewtp_batch_fit(&my, 3, req, 1, docs, 3, &pieces, &what, &size, &limit),
                     EWTP_BATCH_SPLIT);
    assert_int_equal(pieces, 2);
    assert_string_equal(what, "document");
    assert_int_equal(size, 300u * 1024u + 1);
    assert_int_equal(limit, 300u * 1024u);
    /* Alone, it is rejected. */
    assert_int_equal(ewtp_batch_fit(&my, 1, req, 1, docs + 1, 1, &pieces, &what, &size, &limit),
                     EWTP_BATCH_TOO_BIG);
    assert_string_equal(what, "document");
    /* Exactly at the limit is fine. */
    docs[1] = 300u * 1024u;
    assert_int_equal(ewtp_batch_fit(&my, 3, req, 1, docs, 3, &pieces, &what, &size, &limit),
                     EWTP_BATCH_FITS);
    /* A 12 MB request of 100 documents: ceil(12/5) = 3, plus one for the envelopes. */
    size_t big[1] = {12u * 1024u * 1024u};
    assert_int_equal(ewtp_batch_fit(&my, 100, big, 1, NULL, 0, &pieces, &what, &size, &limit),
                     EWTP_BATCH_SPLIT);
    assert_int_equal(pieces, 4);
    assert_string_equal(what, "request");
    /* Never more pieces than messages. */
    assert_int_equal(ewtp_batch_fit(&my, 2, big, 1, NULL, 0, &pieces, &what, &size, &limit),
                     EWTP_BATCH_SPLIT);
    assert_int_equal(pieces, 2);
    /* A single message whose request alone is too big. */
    assert_int_equal(ewtp_batch_fit(&my, 1, big, 1, NULL, 0, &pieces, &what, &size, &limit),
                     EWTP_BATCH_TOO_BIG);
    assert_string_equal(what, "request");
    assert_int_equal(limit, 5u * 1024u * 1024u);
    /* No byte limits declared. */
    struct ewtp_batch_limits docs_only = {.max_documents = 10};
    assert_int_equal(ewtp_batch_fit(&docs_only, 1, big, 1, docs, 3, &pieces, &what, &size, &limit),
                     EWTP_BATCH_FITS);
}

static void test_piece(void **state)
{
    (void)state;
    size_t start, total = 0, next = 0;
    /* 250 in 3: 84 + 83 + 83, contiguous. */
    size_t want[3] = {84, 83, 83};
    for (size_t i = 0; i < 3; i++) {
        size_t len = ewtp_batch_piece(250, 3, i, &start);
        assert_int_equal(len, want[i]);
        assert_int_equal(start, next);
        next = start + len;
        total += len;
    }
    assert_int_equal(total, 250);
    assert_int_equal(ewtp_batch_piece(3, 2, 0, &start), 2);
    assert_int_equal(start, 0);
    assert_int_equal(ewtp_batch_piece(3, 2, 1, &start), 1);
    assert_int_equal(start, 2);
    assert_int_equal(ewtp_batch_piece(3, 2, 2, &start), 0);
    assert_int_equal(ewtp_batch_piece(3, 0, 0, &start), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_fit),
        cmocka_unit_test(test_piece),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
