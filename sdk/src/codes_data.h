/* codes_data.h — the code tables generated from the .tsv files in sdk/data (libewtp-private).
 *
 * Each table is sorted by col[0] in strcmp order and has no duplicate codes; unused columns
 * are NULL. The symbols are hidden: only codes.c reads them, through ewtp/codes.h.
 * Column layouts: countries (alpha2, alpha3, numeric, name), currencies (alpha3, numeric,
 * minor units or "N.A.", name), units / packages / transport_modes (code, name).
 */
#ifndef EWTP_CODES_DATA_H
#define EWTP_CODES_DATA_H

#include <stddef.h>

struct ewtp_code_row {
    const char *col[4];
};

#define EWTP_CODES_TABLE(name)                                                                     \
    __attribute__((visibility("hidden"))) extern const struct ewtp_code_row ewtp_codes_##name[];   \
    __attribute__((visibility("hidden"))) extern const size_t ewtp_codes_##name##_count

EWTP_CODES_TABLE(countries);
EWTP_CODES_TABLE(currencies);
EWTP_CODES_TABLE(units);
EWTP_CODES_TABLE(packages);
EWTP_CODES_TABLE(transport_modes);

#endif
