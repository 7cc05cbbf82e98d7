/* Unit tests for sdk/src/arena.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <ewtp/arena.h>

#include "arena_internal.h"

static void test_alloc_aligned_zeroed(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    assert_non_null(a);
    for (size_t sz = 1; sz < 200; sz += 7) {
        unsigned char *p = ewtp_arena_alloc(a, sz);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        for (size_t i = 0; i < sz; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xAB, sz);
    }
    ewtp_arena_free(a);
}

static void test_many_and_large(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    size_t before = ewtp_arena_used(a);
    char *ptrs[2000];
    for (int i = 0; i < 2000; i++) {
        ptrs[i] = ewtp_arena_printf(a, "item-%d", i);
        assert_non_null(ptrs[i]);
    }
    unsigned char *big = ewtp_arena_alloc(a, 1 << 20);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % _Alignof(max_align_t), 0);
    assert_int_equal(big[0], 0);
    assert_int_equal(big[(1 << 20) - 1], 0);
    memset(big, 1, 1 << 20);
    /* Earlier allocations are untouched by later ones. */
    for (int i = 0; i < 2000; i += 97) {
        char want[32];
        snprintf(want, sizeof want, "item-%d", i);
        assert_string_equal(ptrs[i], want);
    }
    assert_true(ewtp_arena_used(a) >= before + (1 << 20));
    ewtp_arena_free(a);
}

static void test_dup(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    assert_string_equal(ewtp_arena_strdup(a, "hello"), "hello");
    assert_null(ewtp_arena_strdup(a, NULL));
    assert_string_equal(ewtp_arena_strndup(a, "hello", 3), "hel");
    assert_string_equal(ewtp_arena_strndup(a, "hi", 10), "hi");
    const char bytes[4] = {'a', 0, 'b', 'c'};
    char *m = ewtp_arena_memdup(a, bytes, 4);
    assert_memory_equal(m, bytes, 4);
    assert_int_equal(m[4], 0);
    assert_string_equal(ewtp_arena_printf(a, "%s-%03d", "x", 7), "x-007");
    ewtp_arena_free(a);
    ewtp_arena_free(NULL);
}

static int order[4];
static int norder;

static void hook(void *p)
{
    order[norder++] = *(int *)p;
}

static void test_on_free_hooks(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    int *one = ewtp_arena_alloc(a, sizeof(int)), *two = ewtp_arena_alloc(a, sizeof(int));
    *one = 1;
    *two = 2;
    norder = 0;
    assert_int_equal(ewtp_arena_on_free(a, hook, one), 0);
    assert_int_equal(ewtp_arena_on_free(a, hook, two), 0);
    assert_int_equal(norder, 0);
    ewtp_arena_free(a);
    /* Reverse order of registration, and arena memory still readable by the hooks. */
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_zeroed),
        cmocka_unit_test(test_many_and_large),
        cmocka_unit_test(test_dup),
        cmocka_unit_test(test_on_free_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
