#!/usr/bin/env python3
"""Writes the input side of plugins/be/vectors (input.json, related/, settings.conf, call.json,
errors.json). expected/ is produced by ewtpctl translate and reviewed (tests/conformance.sh
validates it against the official artefacts). Run from anywhere; idempotent."""
import copy, json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
VEC = os.path.join(HERE, "..", "vectors")

SELLER_BE = {"name": "Brussels Office Supplies NV", "ids": [{"scheme": "VAT", "value": "BE0123456749"}],
             "address": {"lines": ["Rue de la Loi 16"], "city": "Brussels", "postcode": "1000", "country": "BE"},
             "email": "billing@bos.example"}
BUYER_BE = {"name": "Liege Logistics SA", "ids": [{"scheme": "VAT", "value": "BE0202239951"}],
            "address": {"lines": ["Rue de l'Aeroport 50"], "city": "Grace-Hollogne", "postcode": "4460", "country": "BE"}}
BUYER_NL = {"name": "Rotterdam Trading BV", "ids": [{"scheme": "VAT", "value": "NL123456789B01"}],
            "endpoint": {"scheme": "9944", "value": "NL123456789B01"},
            "address": {"lines": ["Coolsingel 40"], "city": "Rotterdam", "postcode": "3011 AD", "country": "NL"}}
BUYER_DE = {"name": "Koeln Handel GmbH", "ids": [{"scheme": "VAT", "value": "DE123456789"}],
            "endpoint": {"scheme": "9930", "value": "DE123456789"},
            "address": {"lines": ["Domkloster 4"], "city": "Koeln", "postcode": "50667", "country": "DE"}}


def line(n, desc, qty, price, amount, cat, rate, tax, unit="H87", **kw):
    t = {"type": "VAT", "category": cat}
    if rate is not None:
        t["rate"] = rate
    if tax is not None:
        t["amount"] = tax
    l = {"line": n, "description": desc, "quantity": qty, "unit": unit, "unit_price": price,
         "amount": amount, "taxes": [t]}
    l.update(kw)
    return l


def invoice(id_, lines, totals, seller=SELLER_BE, buyer=BUYER_BE, **kw):
    inv = {"number": id_.upper(), "type": "invoice", "issued_at": "2026-11-20T10:00:00+01:00",
           "due_date": "2026-12-20", "currency": "EUR", "buyer_reference": "PO-4711",
           "lines": lines, "totals": totals}
    inv.update(kw)
    return {"schema": "ewtp/1", "id": id_, "kind": "invoice", "destination": "BE",
            "created_at": "2026-11-20T10:00:00+01:00",
            "parties": {"seller": copy.deepcopy(seller), "buyer": copy.deepcopy(buyer)},
            "invoice": inv}


def tot(net, tax, gross, payable=None):
    return {"net": net, "tax": tax, "gross": gross, "payable": payable or gross}


CN_SELLER = {"name": "Yiwu Crafts Co Ltd", "address": {"lines": ["88 Futian Road"], "city": "Yiwu", "postcode": "322000", "country": "CN"}}
CONSIGNEE = {"name": "Marie Dupont", "address": {"lines": ["Rue Neuve 12"], "city": "Namur", "postcode": "5000", "country": "BE"}}
DECLARANT = {"name": "Liege Express Customs BV", "ids": [{"scheme": "EORI", "value": "BE0403170701"}]}


def h7(id_, lines, currency="EUR", **kw):
    d = {"type": "low_value", "order_number": "SO-" + id_.upper(), "waybill_number": "784-12345675",
         "customs_office": "BE212000", "currency": currency,
         "transport": {"mode": "4", "means_id": "QY4210", "arrival": {"country": "BE", "location": "BELGG", "date": "2026-11-22"}},
         "gross_weight_kg": "1.2", "packages": 1, "lines": lines}
    d.update(kw)
    return {"schema": "ewtp/1", "id": id_, "kind": "declaration", "destination": "BE",
            "direction": "import", "created_at": "2026-11-22T08:00:00+01:00",
            "parties": {"seller": copy.deepcopy(CN_SELLER), "consignee": copy.deepcopy(CONSIGNEE),
                        "declarant": copy.deepcopy(DECLARANT)},
            "declaration": d}


def dline(n, desc, hs, qty, price, amount, **kw):
    l = {"line": n, "description": desc, "hs_code": hs, "origin": "CN", "quantity": qty,
         "unit": "H87", "unit_price": price, "amount": amount}
    l.update(kw)
    return l


cases = {}
# ---------------- valid invoices ----------------
cases["invoice-standard-21"] = invoice("be-inv-0001", [
    line(1, "Laser printer toner", "2", "100.00", "200.00", "S", "21", "42.00", sku="TON-55", hs_code="844399", barcode="5412345678908", origin="DE")],
    tot("200.00", "42.00", "242.00"),
    payment_means={"code": "30", "account": "BE68539007547034", "reference": "+++090/9337/55493+++"},
    note="Thank you for your order")
cases["invoice-mixed-rates-discount"] = invoice("be-inv-0002", [
    line(1, "Office chair mat", "3", "19.99", "59.97", "S", "21", "12.59"),
    line(2, "Children's books", "10", "4.50", "40.00", "S", "6", "2.40", discount="5.00"),
    line(3, "Repair service", "1", "25.00", "25.00", "S", "12", "3.00", unit="C62", kind="service")],
    tot("124.97", "17.99", "142.96"), order_number="SO-2026-88")
cases["invoice-reverse-charge-ae"] = invoice("be-inv-0003", [
    line(1, "IT consulting (reverse charge, art. 196 Directive 2006/112/EC)", "10", "95.00", "950.00", "AE", "0", "0.00", unit="HUR", kind="service")],
    tot("950.00", "0.00", "950.00"), buyer=BUYER_NL)
cases["invoice-exempt-e"] = invoice("be-inv-0004", [
    line(1, "Medical examination", "1", "120.00", "120.00", "E", "0", "0.00", unit="C62", kind="service",
         **{})], tot("120.00", "0.00", "120.00"))
cases["invoice-exempt-e"]["invoice"]["lines"][0]["taxes"][0]["exemption_reason"] = "Exempt under article 44 of the Belgian VAT Code"
cases["invoice-intra-eu-k"] = invoice("be-inv-0005", [
    line(1, "Steel shelving units", "4", "250.00", "1000.00", "K", "0", "0.00", hs_code="940320")],
    tot("1000.00", "0.00", "1000.00"), buyer=BUYER_DE)
cases["invoice-intra-eu-k"]["ext"] = {"be": {"delivery": {"date": "2026-11-18", "country": "DE"}}}
cn = invoice("be-cn-0001", [line(1, "Returned laser printer toner", "1", "100.00", "100.00", "S", "21", "21.00")],
             tot("100.00", "21.00", "121.00"), original_invoice="BE-INV-0001", reason="Goods returned")
cn["invoice"]["type"] = "credit_note"
cn["invoice"]["number"] = "CN-2026-0001"
cases["credit-note"] = cn
cases["invoice-usd-tax-currency"] = invoice("be-inv-0006", [
    line(1, "Software licence", "1", "100.00", "100.00", "S", "21", "21.00", unit="C62", kind="service")],
    tot("100.00", "21.00", "121.00"), currency="USD", exchange_rate="0.92")
cases["invoice-http-access-point"] = invoice("be-inv-0007", [
    line(1, "Printer paper A4 box", "5", "24.00", "120.00", "S", "21", "25.20")],
    tot("120.00", "25.20", "145.20"))
dn = invoice("be-dn-0001", [line(1, "Freight surcharge", "1", "30.00", "30.00", "S", "21", "6.30", unit="C62", kind="service")],
             tot("30.00", "6.30", "36.30"), original_invoice="BE-INV-0001", reason="Freight not invoiced")
dn["invoice"]["type"] = "debit_note"
cases["debit-note"] = dn
cases["invoice-prepaid"] = invoice("be-inv-0008", [
    line(1, "Conference ticket", "2", "150.00", "300.00", "S", "21", "63.00", unit="C62", kind="service")],
    tot("300.00", "63.00", "363.00", "263.00"))

gln = invoice("be-inv-0009", [line(1, "Pallet wrap film", "6", "12.50", "75.00", "S", "21", "15.75")],
              tot("75.00", "15.75", "90.75"))
gln["parties"]["buyer"]["endpoint"] = {"scheme": "0088", "value": "5412345678908"}
cases["invoice-gln-endpoint"] = gln

# ---------------- valid H7 ----------------
cases["h7-basic"] = h7("be-h7-0001", [
    dline(1, "Cotton T-shirts", "610910", "3", "8.00", "24.00", gross_weight_kg="0.6",
          taxes=[{"type": "VAT", "category": "S", "rate": "21", "amount": "5.04"}]),
    dline(2, "Phone case, silicone", "392690", "2", "6.50", "13.00")], invoice_value="37.00", freight="4.50")
ioss = h7("be-h7-0002", [dline(1, "Bluetooth earphones", "851830", "1", "39.90", "39.90")])
ioss["parties"]["platform"] = {"name": "Global Marketplace Ltd", "ids": [{"scheme": "IOSS", "value": "IM0560000013"}]}
cases["h7-ioss"] = ioss
cases["h7-usd-exchange-rate"] = h7("be-h7-0003", [dline(1, "Watch strap", "911390", "4", "40.00", "160.00")],
                                   currency="USD", exchange_rate="0.92")
cases["h7-configured-rate"] = h7("be-h7-0004", [dline(1, "Ceramic tea set", "691200", "1", "1000.00", "1000.00")],
                                 currency="CNY")
cases["h7-exactly-150"] = h7("be-h7-0005", [dline(1, "Wool coat", "620231", "1", "150.00", "150.00")], invoice_value="150.00")
pre = h7("be-h7-0006", [dline(1, "Handmade greeting cards", "4909000000", "5", "2.00", "10.00")],
         additional_procedures=["C08"])
pre["ext"] = {"be": {"additional_declaration_type": "D", "representative_status": "3",
                     "previous_documents": [{"type": "N821", "reference": "26BEICS2ENS0000001"}]}}
pre["declaration"]["documents"] = [{"type": "N380", "number": "INV-77881", "date": "2026-11-19"}]
cases["h7-prelodged-gift-c08"] = pre
sw = h7("be-h7-0007", [dline(1, "Running shoes", "640411", "1", "80.00", "80.00")])
cases["h7-split-warning"] = sw
sw_rel = h7("be-h7-0008", [dline(1, "Sports jacket", "620193", "1", "100.00", "100.00")])
sw_rel["created_at"] = "2026-11-22T15:30:00+01:00"
sw_rel["parties"]["consignee"]["name"] = "MARIE  DUPONT"

# ---------------- invalid ----------------
inv_cases = {}
inv_cases["invalid-h7-over-150"] = (h7("be-h7-x01", [dline(1, "Tablet computer", "847130", "1", "150.01", "150.01")], invoice_value="150.01"),
                                    [("/declaration/invoice_value", "rule")])
inv_cases["invalid-h7-excise-wine"] = (h7("be-h7-x02", [dline(1, "Red wine, 75 cl", "220421", "2", "12.00", "24.00")]),
                                       [("/declaration/lines/0/hs_code", "rule")])
m = h7("be-h7-x03", [dline(1, "Bluetooth earphones", "851830", "1", "39.90", "39.90")])
m["parties"]["platform"] = {"name": "Global Marketplace Ltd", "ids": [{"scheme": "IOSS", "value": "IM05600013"}]}
inv_cases["invalid-h7-ioss-format"] = (m, [("/parties/platform/ids/0/value", "format")])
inv_cases["invalid-h7-ioss-missing"] = (h7("be-h7-x04", [dline(1, "Bluetooth earphones", "851830", "1", "39.90", "39.90")], additional_procedures=["F48"]),
                                        [("/parties/seller/ids", "required")])
m = h7("be-h7-x05", [dline(1, "Phone case", "392690", "1", "9.00", "9.00")])
m["parties"]["declarant"]["ids"][0]["value"] = "be-0403170701"
inv_cases["invalid-h7-eori-format"] = (m, [("/parties/declarant/ids/0/value", "format")])
inv_cases["invalid-h7-split-error"] = (copy.deepcopy(sw), [("/parties/consignee", "rule")])
m = h7("be-h7-x07", [dline(1, "Machine part", "848790", "1", "900.00", "900.00")])
m["declaration"]["type"] = "standard"
inv_cases["invalid-h7-standard-refused"] = (m, [("/declaration/type", "unsupported")])
inv_cases["invalid-h7-no-exchange-rate"] = (h7("be-h7-x08", [dline(1, "Watch strap", "911390", "1", "40.00", "40.00")], currency="USD"),
                                            [("/declaration/exchange_rate", "required")])
m = h7("be-h7-x09", [dline(1, "Cigars", "240210", "1", "30.00", "30.00", taxes=[{"type": "EXCISE", "amount": "3.00"}])])
inv_cases["invalid-h7-tobacco"] = (m, [("/declaration/lines/0/hs_code", "rule"), ("/declaration/lines/0/taxes/0/type", "rule")])
buyer_nl_novat = copy.deepcopy(BUYER_NL)
buyer_nl_novat["ids"] = []
del buyer_nl_novat["ids"]
inv_cases["invalid-invoice-ae-no-buyer-vat"] = (invoice("be-inv-x01", [
    line(1, "IT consulting", "10", "95.00", "950.00", "AE", "0", "0.00", unit="HUR")], tot("950.00", "0.00", "950.00"), buyer=buyer_nl_novat),
    [("/parties/buyer/ids", "required")])
m = invoice("be-inv-x02", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
m["parties"]["buyer"]["endpoint"] = {"scheme": "0208", "value": "0202239952"}
inv_cases["invalid-invoice-bad-enterprise-number"] = (m, [("/parties/buyer/endpoint/value", "format")])
m = invoice("be-inv-x03", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
del m["invoice"]["buyer_reference"]
inv_cases["invalid-invoice-no-buyer-reference"] = (m, [("/invoice/buyer_reference", "required")])
inv_cases["invalid-invoice-exempt-no-reason"] = (invoice("be-inv-x04", [
    line(1, "Medical examination", "1", "120.00", "120.00", "E", "0", "0.00", unit="C62")], tot("120.00", "0.00", "120.00")),
    [("/invoice/lines/0/taxes/0/exemption_reason", "required")])
m = invoice("be-inv-x05", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
m["parties"]["seller"]["ids"][0]["value"] = "BE0123456748"
inv_cases["invalid-invoice-bad-vat-number"] = (m, [("/parties/seller/ids/0/value", "format"), ("/parties/seller/endpoint", "required")])
# Peppol electronic addresses: EAS code list (BR-CL-25) and the identifier checks of the Peppol
# schematron (PEPPOL-COMMON-R040 ...), all reported at once.
m = invoice("be-inv-x06", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
m["parties"]["buyer"]["endpoint"] = {"scheme": "9999", "value": "LIEGE-LOG"}
inv_cases["invalid-invoice-eas-unknown"] = (m, [("/parties/buyer/endpoint/scheme", "format")])
m = invoice("be-inv-x07", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
m["parties"]["buyer"]["endpoint"] = {"scheme": "0088", "value": "5412345678900"}
inv_cases["invalid-invoice-gln-check-digit"] = (m, [("/parties/buyer/endpoint/value", "format")])
m = invoice("be-inv-x08", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
m["parties"]["seller"]["endpoint"] = {"scheme": "0007", "value": "5560360794"}
m["parties"]["buyer"]["endpoint"] = {"scheme": "0192", "value": "974760672"}
inv_cases["invalid-invoice-nordic-ids"] = (m, [("/parties/seller/endpoint/value", "format"), ("/parties/buyer/endpoint/value", "format")])
m = invoice("be-inv-x09", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
m["parties"]["seller"]["endpoint"] = {"scheme": "0096", "value": "123456789"}
m["parties"]["buyer"]["endpoint"] = {"scheme": "0184", "value": "DK1234567"}
inv_cases["invalid-invoice-danish-ids"] = (m, [("/parties/seller/endpoint/value", "format"), ("/parties/buyer/endpoint/value", "format")])
m = invoice("be-inv-x10", [line(1, "Toner", "1", "100.00", "100.00", "S", "21", "21.00")], tot("100.00", "21.00", "121.00"))
m["parties"]["seller"]["endpoint"] = {"scheme": "0151", "value": "51824753557"}
m["parties"]["buyer"]["endpoint"] = {"scheme": "0198", "value": "12345678"}
inv_cases["invalid-invoice-abn-and-se-number"] = (m, [("/parties/seller/endpoint/value", "format"), ("/parties/buyer/endpoint/value", "format")])


def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


for name, msg in cases.items():
    d = os.path.join(VEC, name)
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "input.json"), msg)
for name, (msg, errs) in inv_cases.items():
    d = os.path.join(VEC, name)
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "input.json"), msg)
    write(os.path.join(d, "errors.json"), {"errors": [{"pointer": p, "code": c} for p, c in errs]})

for name in ("h7-split-warning", "invalid-h7-split-error"):
    rd = os.path.join(VEC, name, "related")
    os.makedirs(rd, exist_ok=True)
    write(os.path.join(rd, "be-h7-0008.json"), sw_rel)


def conf(name, settings):
    with open(os.path.join(VEC, name, "settings.conf"), "w") as f:
        f.write("# Instance settings for this case, in ewtpd.conf syntax.\n")
        f.write('plugins = (\n  { name = "be-test"; plugin = "be"; settings = { %s }; }\n);\n' % settings)


conf("invoice-http-access-point", 'peppol = { delivery = "http"; path = "/api/v1/outbound"; };')
conf("h7-configured-rate", 'h7 = { exchange_rates = { CNY = "0.13"; }; };')
conf("invalid-h7-split-error", 'h7 = { split_check = "error"; };')
