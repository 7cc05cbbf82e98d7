#!/usr/bin/python3
"""Writes sdk/schema/ewtp-1.schema.json (JSON Schema draft 2020-12 of the message ewtp/1).

The member tables below mirror those of sdk/src/message.c (the C validator); the code lists
come from sdk/data/*.tsv, the same files libewtp compiles in. Regenerate after changing
either:  /usr/bin/python3 sdk/schema/gen-schema.py > sdk/schema/ewtp-1.schema.json
tests/cli/schema_agreement.sh checks that schema and C validator agree on the corpus.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")


def codes(name):
    out = []
    with open(os.path.join(DATA, name + ".tsv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            out.append(line.split("\t")[0].strip())
    return sorted(set(out))


# A real calendar day YYYY-MM-DD, leap years included (the C side checks the same).
DATE = (r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
        r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)")
TIME = (DATE + r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
        r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")

DEFS = {
    "text": {"type": "string", "minLength": 1},
    "decimal": {"type": "string", "pattern": r"^-?[0-9]{1,18}(\.[0-9]{1,6})?$",
                "description": "A decimal as a JSON string; never a JSON number."},
    "id": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,64}$"},
    "date": {"type": "string", "pattern": "^" + DATE + "$"},
    "time": {"type": "string", "pattern": "^" + TIME + "$",
             "description": "RFC 3339 with offset; leap seconds are refused."},
    "hs_code": {"type": "string", "pattern": r"^[0-9]{6,10}$"},
    "scheme": {"type": "string", "pattern": r"^[A-Z][A-Z0-9-]{1,31}$"},
    "email": {"type": "string", "pattern": r"^[^@ \t\r\n]+@[^@ \t\r\n]+\.[^@ \t\r\n]+$"},
    "line_number": {"type": "integer", "minimum": 1},
    "count": {"type": "integer", "minimum": 0},
    "country": {"type": "string", "enum": codes("countries")},
    "currency": {"type": "string", "enum": codes("currencies")},
    "unit": {"type": "string", "enum": codes("units")},
    "transport_mode": {"type": "string", "enum": codes("transport_modes")},
    "package_kind": {"type": "string", "enum": codes("packages")},
    "texts": {"type": "array", "items": {"$ref": "#/$defs/text"}},
}


def ref(name):
    return {"$ref": "#/$defs/" + name}


def obj(members, required=(), what=None):
    o = {"type": "object", "properties": members, "additionalProperties": False}
    if required:
        o["required"] = list(required)
    if what:
        o["description"] = what
    return o


def enum(*values):
    return {"type": "string", "enum": list(values)}


def array_of(item, min1=False):
    a = {"type": "array", "items": item}
    if min1:
        a["minItems"] = 1
    return a


T, DEC = ref("text"), ref("decimal")

DEFS["place"] = obj({"country": ref("country"), "location": T, "date": ref("date")})
DEFS["transport"] = obj({"mode": ref("transport_mode"), "means_id": T, "voyage": T,
                         "departure": ref("place"), "arrival": ref("place")})
DEFS["period"] = obj({"start": ref("date"), "end": ref("date")}, ["start", "end"])
DEFS["document"] = obj({"type": T, "number": T, "date": ref("date"), "issuer": T},
                       ["type", "number"])
DEFS["payment_means"] = obj({"code": T, "account": T, "reference": T}, ["code"])
DEFS["packages"] = obj({"count": ref("count"), "kind": ref("package_kind"), "marks": T},
                       ["count"])
DEFS["tax"] = obj({"type": T, "category": T, "rate": DEC, "amount": DEC,
                   "exemption_reason": T}, ["type", "amount"])

LINE = {"line": ref("line_number"), "sku": T, "description": T, "hs_code": ref("hs_code"),
        "origin": ref("country"), "quantity": DEC, "unit": ref("unit"), "unit_price": DEC,
        "amount": DEC, "net_weight_kg": DEC, "gross_weight_kg": DEC, "barcode": T,
        "brand": T, "model": T, "kind": enum("goods", "service"), "discount": DEC,
        "taxes": array_of(ref("tax"))}
DECL_LINE = dict(LINE, packages=ref("packages"), procedure=T, preference=T,
                 supplementary_quantity=DEC, supplementary_unit=ref("unit"))
LINE_REQ = ["line", "description"]
PRICED = ["quantity", "unit_price", "amount"]
DEFS["line"] = obj(LINE, LINE_REQ, "A line of a return (amount checked when priced).")
DEFS["priced_line"] = obj(LINE, LINE_REQ + PRICED, "A line of an order or invoice.")
DEFS["declaration_line"] = obj(DECL_LINE, LINE_REQ + ["hs_code", "origin", "quantity", "unit",
                                                      "amount"])
DEFS["summary_line"] = obj(LINE, LINE_REQ + ["hs_code", "amount"])

ID_FORMATS = [
    {"if": {"properties": {"scheme": {"const": "CN-RIC"}}, "required": ["scheme"]},
     "then": {"properties": {"value": {"pattern": "^[0-9]{17}[0-9X]$"}}}},
    {"if": {"properties": {"scheme": {"const": "EORI"}}, "required": ["scheme"]},
     "then": {"properties": {"value": {"pattern": "^[A-Z]{2}[A-Z0-9]{1,15}$"}}}},
]
DEFS["party_id"] = dict(obj({"scheme": ref("scheme"), "value": T}, ["scheme", "value"]),
                        allOf=ID_FORMATS)
DEFS["address"] = obj({"lines": ref("texts"), "city": T, "region": T, "postcode": T,
                       "country": ref("country")})
DEFS["endpoint"] = obj({"scheme": T, "value": T}, ["scheme", "value"])
DEFS["party"] = obj({"name": T, "ids": array_of(ref("party_id")), "country": ref("country"),
                     "address": ref("address"), "email": ref("email"), "phone": T,
                     "endpoint": ref("endpoint")}, ["name"])

BODIES = {
    "order": obj({"number": T, "ordered_at": ref("time"), "currency": ref("currency"),
                  "goods_value": DEC, "freight": DEC, "discount": DEC, "insurance": DEC,
                  "tax_total": DEC, "paid_total": DEC,
                  "lines": array_of(ref("priced_line"), True), "note": T},
                 ["number", "ordered_at", "currency", "goods_value", "paid_total", "lines"]),
    "payment": obj({"number": T, "order_number": T, "paid_at": ref("time"), "amount": DEC,
                    "currency": ref("currency"), "method": T},
                   ["number", "order_number", "paid_at", "amount", "currency"]),
    "waybill": obj({"number": T, "order_number": T, "transport_mode": ref("transport_mode"),
                    "departure": ref("place"), "arrival": ref("place"), "freight": DEC,
                    "insured_value": DEC, "currency": ref("currency"),
                    "gross_weight_kg": DEC, "packages": ref("count"),
                    "goods_description": T}, ["number"]),
    "declaration": obj({"type": enum("low_value", "standard"), "order_number": T,
                        "waybill_number": T, "payment_number": T, "customs_office": T,
                        "procedure": T, "additional_procedures": ref("texts"),
                        "transport": ref("transport"), "location_of_goods": T,
                        "incoterm": T, "currency": ref("currency"), "exchange_rate": DEC,
                        "invoice_number": T, "invoice_date": ref("date"),
                        "invoice_value": DEC, "freight": DEC, "insurance": DEC,
                        "gross_weight_kg": DEC, "net_weight_kg": DEC,
                        "packages": ref("count"), "documents": array_of(ref("document")),
                        "lines": array_of(ref("declaration_line"), True)},
                       ["type", "currency", "lines"]),
    "invoice": obj({"number": T,
                    "type": enum("invoice", "credit_note", "debit_note", "refund_note"),
                    "issued_at": ref("time"), "due_date": ref("date"),
                    "currency": ref("currency"), "exchange_rate": DEC,
                    "original_invoice": T, "reason": T, "billing_period": ref("period"),
                    "order_number": T, "lines": array_of(ref("priced_line"), True),
                    "totals": obj({"net": DEC, "tax": DEC, "gross": DEC, "payable": DEC},
                                  ["net", "tax", "gross"]),
                    "buyer_reference": T, "payment_means": ref("payment_means"), "note": T},
                   ["number", "type", "issued_at", "currency", "lines", "totals"]),
    "status": obj({"waybill_number": T, "order_number": T,
                   "event": enum("departed", "arrived", "cleared", "delivered", "returned",
                                 "lost"),
                   "at": ref("time"), "location": T}, ["waybill_number", "event", "at"]),
    "return": obj({"number": T, "order_number": T, "waybill_number": T,
                   "declaration_ref": T, "reason": T, "lines": array_of(ref("line"))},
                  ["number", "order_number"]),
    "manifest": obj({"number": T, "master_waybill": T, "transport": ref("transport"),
                     "customs_office": T, "waybills": dict(ref("texts"), minItems=1),
                     "packages": ref("count"), "gross_weight_kg": DEC},
                    ["number", "waybills"]),
    "summary": obj({"number": T, "period": ref("period"), "customs_office": T,
                    "declarations": dict(ref("texts"), minItems=1),
                    "currency": ref("currency"), "total_value": DEC,
                    "lines": array_of(ref("summary_line"))},
                   ["number", "period", "declarations", "currency", "total_value"]),
}
for k, v in BODIES.items():
    DEFS[k] = v

ROLES = ["seller", "buyer", "platform", "merchant", "logistics", "payment_provider",
         "declarant", "importer", "exporter", "consignee", "carrier"]
DIRECTION_KINDS = {"order", "waybill", "declaration"}

per_kind = []
for k in BODIES:
    then = {"required": [k] + (["direction"] if k in DIRECTION_KINDS else []),
            "properties": {o: False for o in BODIES if o != k}}
    per_kind.append({"if": {"properties": {"kind": {"const": k}}, "required": ["kind"]},
                     "then": then})

props = {
    "schema": {"const": "ewtp/1"},
    "id": ref("id"),
    "kind": enum(*BODIES.keys()),
    "destination": ref("country"),
    "direction": enum("import", "export"),
    "created_at": ref("time"),
    "parties": {"type": "object",
                "properties": {r: ref("party") for r in ROLES},
                "additionalProperties": False},
}
props.update({k: ref(k) for k in BODIES})
props["ext"] = {
    "type": "object",
    "description": "Fields one authority needs, by lower-case country code; each is "
                   "validated by that country's plugin only.",
    "propertyNames": {"enum": [c.lower() for c in codes("countries")]},
    "additionalProperties": {"type": "object"},
}

schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://ewtp.example/schema/ewtp-1.schema.json",
    "title": "ewtp/1 common trade message",
    "description": "Generated by sdk/schema/gen-schema.py. Arithmetic rules, line-number "
                   "uniqueness and CN-RIC check digits are checked by libewtp only "
                   "(sdk/schema/README.md).",
    "type": "object",
    "required": ["schema", "id", "kind", "destination"],
    "properties": props,
    "additionalProperties": False,
    "allOf": per_kind,
    "$defs": DEFS,
}

json.dump(schema, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
