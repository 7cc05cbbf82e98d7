/* Look-ups over the code tables generated from data/ TSV files (data/gen-codes.cmake). */
#include <string.h>

#include "et.h"

#define ET_TABLE(name)                                                                             \
    extern const struct et_code_row et_codes_##name[];                                             \
    extern const size_t et_codes_##name##_count;
ET_TABLE(units)
ET_TABLE(tax_codes)
ET_TABLE(id_types)
ET_TABLE(pay_modes)
ET_TABLE(errors)
ET_TABLE(cancel_reasons)

const struct et_code_row *et_code_find(enum et_table t, const char *code)
{
    const struct et_code_row *rows = NULL;
    size_t n = 0;
    switch (t) {
    case ET_T_UNITS:
        rows = et_codes_units, n = et_codes_units_count;
        break;
    case ET_T_TAX_CODES:
        rows = et_codes_tax_codes, n = et_codes_tax_codes_count;
        break;
    case ET_T_ID_TYPES:
        rows = et_codes_id_types, n = et_codes_id_types_count;
        break;
    case ET_T_PAY_MODES:
        rows = et_codes_pay_modes, n = et_codes_pay_modes_count;
        break;
    case ET_T_ERRORS:
        rows = et_codes_errors, n = et_codes_errors_count;
        break;
    case ET_T_CANCEL:
        rows = et_codes_cancel_reasons, n = et_codes_cancel_reasons_count;
        break;
    }
    for (size_t i = 0; code && i < n; i++)
        if (strcmp(rows[i].col[0], code) == 0)
            return &rows[i];
    return NULL;
}
