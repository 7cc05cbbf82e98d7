/* Unit tests for sdk/src/decimal.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <ewtp/decimal.h>
#include <ewtp/errors.h>

static struct ewtp_dec D(const char *s) {
    struct ewtp_dec d;
    assert_int_equal(ewtp_dec_parse(s, &d), 0);
    return d;
}

/* Formats into a static buffer (tests only). */
static const char *
F(struct ewtp_dec d)
{
    static char buf[EWTP_DEC_STRMAX];
    assert_true(ewtp_dec_format(d, buf, sizeof buf) > 0);
    return buf;
}

static void test_parse_ok(void **state)
{
    (void)state;
    const char *ok[] = {
        "0",        "1",   "-1", "1.5",  "1.50", "123456789012345678", "-123456789012345678.123456",
        "0.000001", "007", "-0", "-0.00"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct ewtp_dec d;
        assert_int_equal(ewtp_dec_parse(ok[i], &d), 0);
    }
    struct ewtp_dec d = D("1.50");
    assert_int_equal(d.scale, 2);
    assert_true(d.units == 150);
    d = D("-0");
    assert_true(ewtp_dec_is_zero(d));
    assert_false(ewtp_dec_is_negative(d));
    assert_string_equal(F(D("-0.00")), "0.00");
    assert_string_equal(F(D("-123456789012345678.123456")), "-123456789012345678.123456");
}

static void test_parse_bad(void **state)
{
    (void)state;
    const char *bad[] = {"1e3",
                         "+1",
                         "1,5",
                         " 1",
                         "1 ",
                         "",
                         ".5",
                         "1.",
                         "-",
                         "--1",
                         "0x10",
                         "1.2.3",
                         "1234567890123456789",
                         "1.1234567",
                         "- 1",
                         "1.-5",
                         "NaN",
                         "\t1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct ewtp_dec d = {.units = 42, .scale = 1};
        assert_int_equal(ewtp_dec_parse(bad[i], &d), -EWTP_EFORMAT);
        assert_true(d.units == 42); /* untouched */
    }
    struct ewtp_dec d;
    assert_int_equal(ewtp_dec_parse(NULL, &d), -EWTP_EFORMAT);
    /* parse_ex: length-delimited, other limits. */
    assert_int_equal(ewtp_dec_parse_ex("12.345xyz", 6, 18, 3, &d), 0);
    assert_string_equal(F(d), "12.345");
    assert_int_equal(ewtp_dec_parse_ex("12.345", 6, 18, 2, &d), -EWTP_EFORMAT);
    assert_int_equal(ewtp_dec_parse_ex("123", 3, 2, 2, &d), -EWTP_EFORMAT);
    assert_int_equal(ewtp_dec_parse_ex("99999999999999999999999999999999999999", 38, 38, 0, &d), 0);
    assert_int_equal(ewtp_dec_parse_ex("1", 1, 0, 0, &d), -EWTP_EINVAL);
}

static void test_add_sub_mul(void **state)
{
    (void)state;
    struct ewtp_dec r;
    assert_int_equal(ewtp_dec_add(D("0.1"), D("0.2"), &r), 0);
    assert_string_equal(F(r), "0.3");
    assert_int_equal(ewtp_dec_add(D("1.5"), D("2.25"), &r), 0);
    assert_string_equal(F(r), "3.75");
    assert_int_equal(ewtp_dec_sub(D("1"), D("1.01"), &r), 0);
    assert_string_equal(F(r), "-0.01");
    assert_int_equal(ewtp_dec_sub(D("1.10"), D("1.1"), &r), 0);
    assert_string_equal(F(r), "0.00");
    assert_int_equal(ewtp_dec_mul(D("87.63"), D("3"), &r), 0);
    assert_string_equal(F(r), "262.89");
    assert_int_equal(ewtp_dec_mul(D("1.005"), D("-2.5"), &r), 0);
    assert_string_equal(F(r), "-2.5125");
    assert_int_equal(
        ewtp_dec_mul(D("123456789012345678.123456"), D("123456789012345678.123456"), &r),
        -EWTP_ERANGE);
    struct ewtp_dec big, out = {.units = 7, .scale = 0};
    assert_int_equal(ewtp_dec_parse_ex("99999999999999999999999999999999999999", 38, 38, 0, &big),
                     0);
    assert_int_equal(ewtp_dec_mul(big, D("10"), &out), -EWTP_ERANGE);
    assert_true(out.units == 7); /* untouched */
    assert_int_equal(ewtp_dec_add(big, big, &out), -EWTP_ERANGE);
    assert_int_equal(ewtp_dec_add(big, D("0.5"), &out), -EWTP_ERANGE); /* rescale overflows */
    /* Scale beyond 18. */
    assert_int_equal(ewtp_dec_mul(D("0.000001"), ewtp_dec_minor_unit(13), &out), -EWTP_ERANGE);
    assert_int_equal(ewtp_dec_mul(D("0.000001"), ewtp_dec_minor_unit(12), &out), 0);
    assert_int_equal(out.scale, 18);
}

static void test_round_and_format(void **state)
{
    (void)state;
    char buf[EWTP_DEC_STRMAX];
    struct {
        const char *in;
        unsigned places;
        const char *out;
    } c[] = {
        {"2.345", 2, "2.35"},   {"-2.345", 2, "-2.35"}, {"2.344", 2, "2.34"},
        {"-2.344", 2, "-2.34"}, {"7", 2, "7.00"},       {"0.5", 0, "1"},
        {"-0.5", 0, "-1"},      {"-0.4", 0, "0"},       {"-0.004", 2, "0.00"},
        {"9.995", 2, "10.00"},  {"1.5", 1, "1.5"},      {"0.000001", 5, "0.00000"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        int n = ewtp_dec_format_places(D(c[i].in), c[i].places, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(c[i].out));
        assert_string_equal(buf, c[i].out);
    }
    struct ewtp_dec r;
    assert_int_equal(ewtp_dec_round(D("1.2345"), 3, &r), 0);
    assert_int_equal(r.scale, 3);
    assert_string_equal(F(r), "1.235");
    /* Too small a buffer. */
    assert_int_equal(ewtp_dec_format(D("-12.5"), buf, 5), -EWTP_ERANGE);
    assert_int_equal(ewtp_dec_format(D("-12.5"), buf, 6), 5);
    assert_string_equal(buf, "-12.5");
    assert_string_equal(F(D("0.05")), "0.05");
    assert_string_equal(F(ewtp_dec_neg(D("0"))), "0");
    assert_string_equal(F(ewtp_dec_from_int(INT64_MIN)), "-9223372036854775808");
}

static void test_rescale_cmp(void **state)
{
    (void)state;
    struct ewtp_dec r;
    assert_int_equal(ewtp_dec_rescale(D("1.5"), 3, &r), 0);
    assert_string_equal(F(r), "1.500");
    assert_int_equal(ewtp_dec_rescale(D("1.50"), 1, &r), 0);
    assert_string_equal(F(r), "1.5");
    assert_int_equal(ewtp_dec_rescale(D("1.55"), 1, &r), -EWTP_EINVAL);
    assert_int_equal(ewtp_dec_cmp(D("1.50"), D("1.5")), 0);
    assert_int_equal(ewtp_dec_cmp(D("1.49"), D("1.5")), -1);
    assert_int_equal(ewtp_dec_cmp(D("-1.49"), D("-1.5")), 1);
    assert_int_equal(ewtp_dec_cmp(D("-0"), D("0.000")), 0);
    assert_int_equal(ewtp_dec_cmp(D("-1"), D("0.000001")), -1);
    struct ewtp_dec big;
    assert_int_equal(ewtp_dec_parse_ex("99999999999999999999999999999999999999", 38, 38, 0, &big),
                     0);
    /* Scaling big to 6 decimals overflows: cmp must still answer. */
    assert_int_equal(ewtp_dec_cmp(big, D("0.000001")), 1);
    assert_int_equal(ewtp_dec_cmp(D("0.000001"), big), -1);
    assert_int_equal(ewtp_dec_cmp(ewtp_dec_neg(big), D("-0.000001")), -1);
    assert_true(ewtp_dec_within(D("100.00"), D("100.01"), D("0.01")));
    assert_true(ewtp_dec_within(D("100.01"), D("100"), D("0.01")));
    assert_false(ewtp_dec_within(D("100.00"), D("100.02"), D("0.01")));
    assert_false(ewtp_dec_within(big, ewtp_dec_neg(big), D("1")));
    assert_string_equal(F(ewtp_dec_abs(D("-3.2"))), "3.2");
    assert_string_equal(F(ewtp_dec_minor_unit(2)), "0.01");
    assert_string_equal(F(ewtp_dec_minor_unit(0)), "1");
}

static void test_div(void **state)
{
    (void)state;
    struct ewtp_dec r;
    assert_int_equal(ewtp_dec_div(D("10"), D("3"), 2, &r), 0);
    assert_string_equal(F(r), "3.33");
    assert_int_equal(ewtp_dec_div(D("20"), D("3"), 2, &r), 0);
    assert_string_equal(F(r), "6.67");
    assert_int_equal(ewtp_dec_div(D("-20"), D("3"), 2, &r), 0);
    assert_string_equal(F(r), "-6.67");
    assert_int_equal(ewtp_dec_div(D("1"), D("8"), 2, &r), 0); /* 0.125 -> 0.13 */
    assert_string_equal(F(r), "0.13");
    assert_int_equal(ewtp_dec_div(D("1"), D("-8"), 2, &r), 0);
    assert_string_equal(F(r), "-0.13");
    assert_int_equal(ewtp_dec_div(D("1.000"), D("0.5"), 0, &r), 0);
    assert_string_equal(F(r), "2");
    assert_int_equal(ewtp_dec_div(D("100.50"), D("1.005"), 4, &r), 0);
    assert_string_equal(F(r), "100.0000");
    assert_int_equal(ewtp_dec_div(D("0.000001"), D("123456789012345678"), 6, &r), 0);
    assert_string_equal(F(r), "0.000000");
    assert_int_equal(ewtp_dec_div(D("1"), D("0.00"), 2, &r), -EWTP_EINVAL);
}

static void test_to_int(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(ewtp_dec_to_int(D("42.000"), &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(ewtp_dec_to_int(D("-7"), &v), 0);
    assert_int_equal(v, -7);
    assert_int_equal(ewtp_dec_to_int(D("42.5"), &v), -EWTP_EINVAL);
    struct ewtp_dec big;
    assert_int_equal(ewtp_dec_parse_ex("9223372036854775808", 19, 19, 0, &big), 0);
    assert_int_equal(ewtp_dec_to_int(big, &v), -EWTP_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),    cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_add_sub_mul), cmocka_unit_test(test_round_and_format),
        cmocka_unit_test(test_rescale_cmp), cmocka_unit_test(test_div),
        cmocka_unit_test(test_to_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
