/* codes.c — the code table look-up, and the common code lists of sdk/data (ewtp/codes.h). */
#include <ewtp/codes.h>

#include <string.h>

/* Generated at build time from the sdk/data TSV files by ewtp_add_code_tables (sdk/CMakeLists.txt):
 * ewtp_codes_countries (alpha2, alpha3, numeric, name), ewtp_codes_currencies (alpha3,
 * numeric, minor units or "N.A.", name), ewtp_codes_units / _packages / _transport_modes
 * (code, name). */
#include "ewtp_codes.h"

/* Everything up to cells: what this library reads of a table. */
#define CODE_TABLE_MIN_SIZE (offsetof(struct ewtp_code_table, cells) + sizeof(const char *const *))

static bool usable(const struct ewtp_code_table *t)
{
    return t && t->size >= CODE_TABLE_MIN_SIZE && t->cells && t->n_cols > 0;
}

const char *const *ewtp_code_table_find(const struct ewtp_code_table *t, const char *code)
{
    if (!code || !usable(t))
        return NULL;
    size_t lo = 0, hi = t->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *const *row = t->cells + mid * t->n_cols;
        int c = strcmp(code, row[0]);
        if (c == 0)
            return row;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *ewtp_code_table_get(const struct ewtp_code_table *t, const char *code, size_t col)
{
    const char *const *row = ewtp_code_table_find(t, code);
    return row && col < t->n_cols ? row[col] : NULL;
}

const char *const *ewtp_code_table_row(const struct ewtp_code_table *t, size_t i)
{
    return usable(t) && i < t->n_rows ? t->cells + i * t->n_cols : NULL;
}

#define FIND(name, code) ewtp_code_table_find(&ewtp_codes_##name, code)

/* Column c of the row, NULL for an unknown code. */
static const char *col(const char *const *r, size_t c)
{
    return r ? r[c] : NULL;
}

bool ewtp_code_country(const char *alpha2)
{
    return FIND(countries, alpha2) != NULL;
}

const char *ewtp_code_country_name(const char *alpha2)
{
    return col(FIND(countries, alpha2), 3);
}

const char *ewtp_code_country_numeric(const char *alpha2)
{
    return col(FIND(countries, alpha2), 2);
}

const char *ewtp_code_country_alpha3(const char *alpha2)
{
    return col(FIND(countries, alpha2), 1);
}

bool ewtp_code_currency(const char *alpha3, unsigned *minor_units)
{
    const char *const *r = FIND(currencies, alpha3);
    if (!r)
        return false;
    if (minor_units) {
        /* "N.A." (funds, metals, testing codes) has no minor unit: treated as 0 decimals. */
        const char *m = r[2];
        *minor_units = m && m[0] >= '0' && m[0] <= '9' ? (unsigned)(m[0] - '0') : 0;
    }
    return true;
}

const char *ewtp_code_currency_numeric(const char *alpha3)
{
    return col(FIND(currencies, alpha3), 1);
}

bool ewtp_code_unit(const char *code)
{
    return FIND(units, code) != NULL;
}

const char *ewtp_code_unit_name(const char *code)
{
    return col(FIND(units, code), 1);
}

bool ewtp_code_transport_mode(const char *code)
{
    return FIND(transport_modes, code) != NULL;
}

const char *ewtp_code_transport_mode_name(const char *code)
{
    return col(FIND(transport_modes, code), 1);
}

bool ewtp_code_package_kind(const char *code)
{
    return FIND(packages, code) != NULL;
}

const char *ewtp_code_package_kind_name(const char *code)
{
    return col(FIND(packages, code), 1);
}
