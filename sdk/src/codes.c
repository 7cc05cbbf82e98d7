/* codes.c — look-ups in the code tables generated from sdk/data (ewtp/codes.h). */
#include <ewtp/codes.h>

#include <stdlib.h>
#include <string.h>

#include "codes_data.h"

static int row_cmp(const void *key, const void *row)
{
    return strcmp(key, ((const struct ewtp_code_row *)row)->col[0]);
}

static const struct ewtp_code_row *find(const struct ewtp_code_row *t, size_t n, const char *code)
{
    if (!code)
        return NULL;
    return bsearch(code, t, n, sizeof(*t), row_cmp);
}

#define FIND(name, code) find(ewtp_codes_##name, ewtp_codes_##name##_count, code)

/* Column c of the row, "" when the data left it empty, NULL for an unknown code. */
static const char *col(const struct ewtp_code_row *r, int c)
{
    if (!r)
        return NULL;
    return r->col[c] ? r->col[c] : "";
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
    const struct ewtp_code_row *r = FIND(currencies, alpha3);
    if (!r)
        return false;
    if (minor_units) {
        /* "N.A." (funds, metals, testing codes) has no minor unit: treated as 0 decimals. */
        const char *m = r->col[2];
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
