/* ewtp/codes.h — code tables, and the common code lists compiled into libewtp from sdk/data/.
 *
 * Sources (see sdk/data/README.md): ISO 3166-1 alpha-2, ISO 4217 with minor units, UN/ECE
 * Recommendation 20 (units of measure, full list), Rec. 19 (transport modes), Rec. 21
 * (kinds of packages). Look-ups are case-sensitive (codes are upper case), pure and
 * thread-safe. Unknown code: false / NULL.
 */
#ifndef EWTP_CODES_H
#define EWTP_CODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Code tables ---------------------------------------------------------------------------
 * A code list (the ones below, a plugin's own: MyInvois classifications, China customs
 * currencies, the Peppol EAS list ...) is generated at build time from its data file (TSV, or
 * the authority's JSON) by the CMake helper ewtp_add_code_tables() (cmake/ewtp-codes.cmake) and
 * compiled into the module that uses it; nothing generated is checked in. The generated header
 * declares `extern const struct ewtp_code_table <prefix><name>;`.
 * Rows are sorted by their code (cell 0) in strcmp order, codes are unique, and every row has
 * n_cols cells ("" where the data had none). The generator fills the struct; a module never
 * builds one by hand. It may grow: members are only appended, and size says how many the
 * generator knew. */
struct ewtp_code_table {
    size_t size;              /* sizeof(struct ewtp_code_table) the table was generated with */
    const char *name;         /* "classification", from the data file's name */
    size_t n_rows, n_cols;    /* n_cols >= 1 */
    const char *const *cells; /* n_rows * n_cols, row-major: row i starts at cells[i * n_cols] */
#ifdef EWTP_ABI_TEST_GROWN    /* test-only (tests/abi, see ewtp/abi.h) */
    uint64_t abi_test_grown[3];
#endif
};

/* The row of code (its n_cols cells, the code first) by binary search; NULL for an unknown
 * code, a NULL code or a NULL table. Pure and thread-safe, like everything here. */
const char *const *ewtp_code_table_find(const struct ewtp_code_table *t, const char *code);
/* Cell col of code's row; NULL when the code is unknown or col >= n_cols. */
const char *ewtp_code_table_get(const struct ewtp_code_table *t, const char *code, size_t col);
/* Row i (i < n_rows) in code order, NULL beyond: for walking a table. */
const char *const *ewtp_code_table_row(const struct ewtp_code_table *t, size_t i);

/* ISO 3166-1 alpha-2 officially assigned codes ("CN", "BE"); "ZZ" and other user-assigned
 * codes are not in the table (the validator admits them only where a plugin serves them). */
bool ewtp_code_country(const char *alpha2);
const char *ewtp_code_country_name(const char *alpha2);
/* ISO 3166-1 numeric code ("156" for CN) or NULL. */
const char *ewtp_code_country_numeric(const char *alpha2);
/* ISO 3166-1 alpha-3 ("CHN" for CN) or NULL. */
const char *ewtp_code_country_alpha3(const char *alpha2);

/* ISO 4217 active currency; minor_units (may be NULL) gets its decimals (JPY 0, BHD 3). */
bool ewtp_code_currency(const char *alpha3, unsigned *minor_units);
const char *ewtp_code_currency_numeric(const char *alpha3);

/* UN/ECE Rec. 20 unit code ("H87", "C62", "KGM"); "PCE" is not one. */
bool ewtp_code_unit(const char *code);
const char *ewtp_code_unit_name(const char *code);

/* UN/ECE Rec. 19 mode of transport: one digit "0".."9" (1 sea, 3 road, 4 air, 5 post). */
bool ewtp_code_transport_mode(const char *code);
const char *ewtp_code_transport_mode_name(const char *code);

/* UN/ECE Rec. 21 kind of package, two characters ("CT" carton, "PK" package, "BX" box). */
bool ewtp_code_package_kind(const char *code);
const char *ewtp_code_package_kind_name(const char *code);

#ifdef __cplusplus
}
#endif
#endif
