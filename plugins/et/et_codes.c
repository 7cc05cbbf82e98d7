/* Look-ups over the code tables generated from data/ TSV files (ewtp_add_code_tables,
 * cmake/ewtp-codes.cmake: et_tab_<name> in "et_tab.h"). */
#include <ewtp/codes.h>

#include "et.h"
#include "et_tab.h"

const char *const *et_code_find(enum et_table t, const char *code)
{
    const struct ewtp_code_table *tab = NULL;
    switch (t) {
    case ET_T_UNITS:
        tab = &et_tab_units;
        break;
    case ET_T_TAX_CODES:
        tab = &et_tab_tax_codes;
        break;
    case ET_T_ID_TYPES:
        tab = &et_tab_id_types;
        break;
    case ET_T_PAY_MODES:
        tab = &et_tab_pay_modes;
        break;
    case ET_T_ERRORS:
        tab = &et_tab_errors;
        break;
    case ET_T_CANCEL:
        tab = &et_tab_cancel_reasons;
        break;
    }
    return ewtp_code_table_find(tab, code);
}
