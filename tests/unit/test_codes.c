/* Unit tests for sdk/src/codes.c and the tables generated from sdk/data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <ewtp/codes.h>

/* Counts the codes of up to 3 characters from [0-9A-Z] the look-up admits: exercises the
 * public API only (the generated tables are hidden in libewtp). */
static size_t count_codes(bool (*has)(const char *), int maxlen)
{
    static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t n = 0;
    char c[4] = {0};
    for (int i = 0; i < 36; i++)
        for (int j = 0; j < 36; j++) {
            c[0] = al[i];
            c[1] = al[j];
            c[2] = 0;
            n += has(c);
            for (int k = 0; maxlen > 2 && k < 36; k++) {
                c[2] = al[k];
                n += has(c);
            }
        }
    return n;
}

static bool has_country(const char *c)
{
    return ewtp_code_country(c);
}

static bool has_currency(const char *c)
{
    return ewtp_code_currency(c, NULL);
}

static void test_countries(void **state)
{
    (void)state;
    const char *yes[] = {"CN", "BE", "MY", "RW", "ET", "US", "AX", "ZW"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(ewtp_code_country(yes[i]));
    const char *no[] = {"ZZ", "XX", "cn", "C", "CHN", "", "EU", "UK", "AA", "QM", "XK"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(ewtp_code_country(no[i]));
    assert_false(ewtp_code_country(NULL));
    assert_string_equal(ewtp_code_country_alpha3("CN"), "CHN");
    assert_string_equal(ewtp_code_country_numeric("CN"), "156");
    assert_string_equal(ewtp_code_country_numeric("AF"), "004");
    assert_string_equal(ewtp_code_country_name("BE"), "Belgium");
    assert_null(ewtp_code_country_name("ZZ"));
    assert_int_equal(count_codes(has_country, 2), 249);
}

static void test_currencies(void **state)
{
    (void)state;
    unsigned m = 99;
    assert_true(ewtp_code_currency("CNY", &m));
    assert_int_equal(m, 2);
    assert_true(ewtp_code_currency("JPY", &m));
    assert_int_equal(m, 0);
    assert_true(ewtp_code_currency("BHD", &m));
    assert_int_equal(m, 3);
    assert_true(ewtp_code_currency("CLF", &m));
    assert_int_equal(m, 4);
    assert_true(ewtp_code_currency("RWF", &m));
    assert_int_equal(m, 0);
    assert_true(ewtp_code_currency("ETB", &m));
    assert_int_equal(m, 2);
    m = 99;
    assert_true(ewtp_code_currency("XAU", &m)); /* no minor unit: 0 decimals */
    assert_int_equal(m, 0);
    assert_true(ewtp_code_currency("EUR", NULL));
    assert_false(ewtp_code_currency("HRK", &m)); /* replaced by EUR in 2023 */
    assert_false(ewtp_code_currency("DEM", &m));
    assert_false(ewtp_code_currency("cny", &m));
    assert_false(ewtp_code_currency("XYZ", &m));
    assert_string_equal(ewtp_code_currency_numeric("CNY"), "156");
    assert_string_equal(ewtp_code_currency_numeric("EUR"), "978");
    assert_null(ewtp_code_currency_numeric("XYZ"));
    assert_int_equal(count_codes(has_currency, 3), 180);
}

static void test_units(void **state)
{
    (void)state;
    const char *yes[] = {"H87", "C62", "KGM", "LTR", "SET", "MTR", "EA", "X1", "HWE", "HAR", "10"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(ewtp_code_unit(yes[i]));
    const char *no[] = {"PCE", "PCS", "kgm", "", "XBX", "XCT", "KG"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(ewtp_code_unit(no[i]));
    assert_string_equal(ewtp_code_unit_name("KGM"), "kilogram");
    assert_string_equal(ewtp_code_unit_name("HWE"), ""); /* known, no name in the sources */
    assert_null(ewtp_code_unit_name("PCE"));
    assert_int_equal(count_codes(ewtp_code_unit, 3), 1757);
}

static void test_packages_modes(void **state)
{
    (void)state;
    assert_true(ewtp_code_package_kind("CT"));
    assert_true(ewtp_code_package_kind("PK"));
    assert_true(ewtp_code_package_kind("BX"));
    assert_true(ewtp_code_package_kind("1A"));
    assert_string_equal(ewtp_code_package_kind_name("BX"), "Box");
    assert_string_equal(ewtp_code_package_kind_name("CT"), "Carton");
    assert_false(ewtp_code_package_kind("XBX"));
    assert_false(ewtp_code_package_kind("ZZZ"));
    assert_false(ewtp_code_package_kind("ct"));
    assert_int_equal(count_codes(ewtp_code_package_kind, 2), 406);
    char c[2] = "0";
    for (char d = '0'; d <= '9'; d++) {
        c[0] = d;
        assert_true(ewtp_code_transport_mode(c));
        assert_non_null(ewtp_code_transport_mode_name(c));
    }
    assert_false(ewtp_code_transport_mode("10"));
    assert_false(ewtp_code_transport_mode("A"));
    assert_false(ewtp_code_transport_mode(""));
    assert_string_equal(ewtp_code_transport_mode_name("4"), "Air transport");
    assert_string_equal(ewtp_code_transport_mode_name("5"), "Mail");
}

/* Every code of every data file is found: the generated tables are complete and sorted as
 * bsearch needs. */
static void check_file(const char *name, bool (*has)(const char *), size_t min)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sdk/data/%s", EWTP_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\t\n")] = 0;
        if (!has(line))
            fail_msg("%s: %s not found", name, line);
        n++;
    }
    fclose(f);
    assert_true(n >= min);
}

static void test_data_files(void **state)
{
    (void)state;
    check_file("countries.tsv", has_country, 249);
    check_file("currencies.tsv", has_currency, 150);
    check_file("units.tsv", ewtp_code_unit, 1500);
    check_file("packages.tsv", ewtp_code_package_kind, 300);
    check_file("transport_modes.tsv", ewtp_code_transport_mode, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_countries),  cmocka_unit_test(test_currencies),
        cmocka_unit_test(test_units),      cmocka_unit_test(test_packages_modes),
        cmocka_unit_test(test_data_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
