/* Rwanda: RRA customs declarations (ASYCUDA World XML through the spool, for the single window)
 * and RRA EBM 2.1 invoices through the VSDC JSON API. See README.md for the documents
 * followed, the mapping and the choices made where ../shared/reference/rw/FACTS.md is unsure.
 *
 * Files: rw_plugin.c (descriptor, settings, classify, ext.rw), rw_asycuda.c (declarations:
 * validate, ASYCUDA XML, spool receipts), rw_vsdc.c (invoices: validate, VSDC requests, answers,
 * the per-branch state); the code tables of data/ are generated at build time. */
#ifndef RW_H
#define RW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/codes.h>
#include <ewtp/decimal.h>
#include <ewtp/errors.h>
#include <ewtp/json.h>
#include <ewtp/message.h>
#include <ewtp/plugin.h>
#include <ewtp/xml.h>

/* The code tables of data/ (generated at build time): rw_codes_unit (Rec. 20 -> qtyUnitCd),
 * rw_codes_payment (UNCL 4461 -> pmtTyCd), rw_codes_tax_category (taxTyCd -> rate or
 * "setting"), rw_codes_result_code (resultCd -> treatment, plain cause). */
#include "rw_codes.h"

/* The instance: one VSDC device (TIN + branch) and/or one declarant's customs defaults. */
struct rw_state {
    const struct ewtp_host *host;
    /* EBM / VSDC */
    char *tin;           /* 9 digits; the seller's TIN must be this */
    char *bhf_id;        /* 2 characters, "00" head office */
    char *device_serial; /* dvcSrlNo for /initializer/selectInitInfo */
    char *operator_id, *operator_name;
    char *receipt_top, *receipt_bottom;
    char *trade_name, *branch_address; /* receipt.trdeNm (20) and receipt.adrs */
    char *cmc_key_file; /* when set, the key is sent as header cmcKey (OSCU-style endpoints) */
    int64_t first_invoice_number;
    struct ewtp_dec rate[4]; /* A..D in percent */
    /* Customs */
    char *office, *office_name;    /* Customs_clearance_office_code when the message has none */
    char *gen_procedure;           /* Declaration_gen_procedure_code, default "4" */
    char *cpc_import, *cpc_export; /* Extended_customs_procedure defaults "4000" / "1000" */
    char *national_procedure;      /* "000" */
};

/* JSON Pointer helper in the call's arena. */
const char *rw_ptr(struct ewtp_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ext.rw (object or NULL) and ext.rw.lines[i] (object or NULL). */
const struct ewtp_json *rw_ext(const struct ewtp_message *m);
const struct ewtp_json *rw_ext_line(const struct ewtp_message *m, size_t i);
/* Checks ext.rw against the schema of ext.schema.json for this kind. */
void rw_validate_ext(const struct ewtp_message *m, struct ewtp_errors *errs);

/* Declarations (rw_asycuda.c). */
void rw_decl_validate(const struct rw_state *st, const struct ewtp_call *c,
                      struct ewtp_errors *errs);
int rw_decl_translate(const struct rw_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                      struct ewtp_errors *errs);
int rw_decl_interpret(const struct rw_state *st, const struct ewtp_call *c,
                      const struct ewtp_response *resp, struct ewtp_outcome *o);
int rw_decl_receive(const struct rw_state *st, const struct ewtp_inbound *in,
                    struct ewtp_correlation *to, struct ewtp_outcome *o);
/* The ASYCUDA document of a declaration (also used by the simulator's tests). */
int rw_asycuda_write(const struct rw_state *st, const struct ewtp_message *m, struct ewtp_arena *a,
                     const char **xml, size_t *len);

/* Invoices (rw_vsdc.c). */
void rw_inv_validate(const struct rw_state *st, const struct ewtp_call *c,
                     struct ewtp_errors *errs);
int rw_inv_translate(const struct rw_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                     struct ewtp_errors *errs);
int rw_inv_interpret(const struct rw_state *st, const struct ewtp_call *c,
                     const struct ewtp_response *resp, struct ewtp_outcome *o);
/* The ordering key of a branch: "rw:ebm:<tenant>:<tin>:<bhf>". */
const char *rw_inv_ordering_key(const struct rw_state *st, const struct ewtp_call *c);
/* The relation key of an invoice number of this seller (credit notes find their original). */
const char *rw_inv_relation_key(const struct rw_state *st, struct ewtp_arena *a,
                                const char *number);

#endif
