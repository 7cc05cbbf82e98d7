/* ewtp/codes.h — the common code lists, compiled into libewtp from sdk/data/.
 *
 * Sources (see sdk/data/README.md): ISO 3166-1 alpha-2, ISO 4217 with minor units, UN/ECE
 * Recommendation 20 (units of measure, full list), Rec. 19 (transport modes), Rec. 21
 * (kinds of packages). Look-ups are case-sensitive (codes are upper case), pure and
 * thread-safe. Unknown code: false / NULL.
 */
#ifndef EWTP_CODES_H
#define EWTP_CODES_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

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
