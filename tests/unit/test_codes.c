/* Unit tests for sdk/src/codes.c and the tables generated from sdk/data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <ewtp/codes.h>

#include "test_ct.h" /* generated from tests/unit/codes/ by ewtp_add_code_tables */

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

/* ewtp_add_code_tables over awkward data (tests/unit/codes/): sorted, identical rows once, short
 * rows padded with "", characters CMake lists and C strings need care with kept as they are;
 * JSON values trimmed with their white space runs (no-break space too) made one space. */
static void test_code_tables(void **state)
{
    (void)state;
    const struct ewtp_code_table *t = &test_ct_awkward;
    assert_int_equal(t->size, sizeof(struct ewtp_code_table));
    assert_string_equal(t->name, "awkward");
    assert_int_equal(t->n_rows, 6);
    assert_int_equal(t->n_cols, 2);
    const char *order[] = {"A1", "B2", "C", "D", "Z9", "\xc3\x89"};
    for (size_t i = 0; i < 6; i++) {
        const char *const *row = ewtp_code_table_row(t, i);
        assert_non_null(row);
        assert_string_equal(row[0], order[i]);
        assert_ptr_equal(ewtp_code_table_find(t, order[i]), row);
    }
    assert_null(ewtp_code_table_row(t, 6));
    assert_string_equal(ewtp_code_table_get(t, "A1", 1), "semi;colon");
    assert_string_equal(ewtp_code_table_get(t, "B2", 1), "brackets [x]");
    assert_string_equal(ewtp_code_table_get(t, "C", 1), "back\\\\slash \"quoted\" what?\?!");
    assert_string_equal(ewtp_code_table_get(t, "D", 1), "");
    assert_string_equal(ewtp_code_table_get(t, "\xc3\x89", 1), "caf\xc3\xa9");
    assert_null(ewtp_code_table_get(t, "D", 2));
    assert_null(ewtp_code_table_find(t, "B"));
    assert_null(ewtp_code_table_find(t, "ZZ"));
    assert_null(ewtp_code_table_find(t, ""));
    assert_null(ewtp_code_table_find(t, NULL));
    assert_null(ewtp_code_table_find(NULL, "A1"));
    /* A table from a newer generator with fewer members than this library reads is refused. */
    struct ewtp_code_table small = *t;
    small.size = offsetof(struct ewtp_code_table, cells);
    assert_null(ewtp_code_table_find(&small, "A1"));

    t = &test_ct_json;
    assert_int_equal(t->n_rows, 3);
    assert_int_equal(t->n_cols, 2);
    assert_string_equal(ewtp_code_table_get(t, "01", 1), "no break space; and {braces}");
    assert_string_equal(ewtp_code_table_get(t, "02", 1), "two lines");
    assert_string_equal(ewtp_code_table_get(t, "10", 1), "a \"quote\" and a \\ backslash");
    assert_null(ewtp_code_table_find(t, " 02 "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_countries),  cmocka_unit_test(test_currencies),
        cmocka_unit_test(test_units),      cmocka_unit_test(test_packages_modes),
        cmocka_unit_test(test_data_files), cmocka_unit_test(test_code_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
