#!/usr/bin/env python3
"""Writes the input side of the golden vectors (vectors/<case>/input.json, settings.conf,
call.json, related/, errors.json) from one base invoice plus per-case changes. The expected/
outputs are produced once by `ewtpctl translate --unsigned` and then reviewed and kept; the
conformance test checks them against the UBL 2.1 XSD independently."""
import copy, json, os, shutil

here = os.path.dirname(os.path.abspath(__file__))
vec = os.path.join(here, '..', 'vectors')

BASE = json.load(open(os.path.join(vec, 'invoice-xml', 'input.json')))

def case(name, change=None, settings=None, call=None, errors=None, related=None):
    m = copy.deepcopy(BASE)
    m['id'] = 'my-' + name
    m['invoice']['number'] = 'INV-' + name.upper()[:40]
    if change:
        change(m)
    d = os.path.join(vec, name)
    if os.path.isdir(d) and name != 'invoice-xml':
        shutil.rmtree(d)
    os.makedirs(d, exist_ok=True)
    if name != 'invoice-xml':
        json.dump(m, open(os.path.join(d, 'input.json'), 'w'), indent=2)
    if settings:
        open(os.path.join(d, 'settings.conf'), 'w').write(
            'plugins = ( { name = "my-test"; plugin = "my"; settings = { %s }; } );\n' % settings)
    if call:
        json.dump(call, open(os.path.join(d, 'call.json'), 'w'))
    if errors:
        json.dump({'errors': [{'pointer': p, 'code': c} for p, c in errors]},
                  open(os.path.join(d, 'errors.json'), 'w'))
    for i, r in enumerate(related or []):
        os.makedirs(os.path.join(d, 'related'), exist_ok=True)
        json.dump(r, open(os.path.join(d, 'related', '%d.json' % i), 'w'), indent=2)

def note(kind, uuid='F9D425P6DS7D8IU9D8I8HT2V10'):
    def f(m):
        m['invoice']['type'] = kind
        m['invoice']['original_invoice'] = 'INV-2026-0001'
        m['invoice']['reason'] = 'Price adjustment'
        m['invoice']['lines'] = m['invoice']['lines'][:1]
        m['invoice']['totals'] = {'net': '300.00', 'tax': '30.00', 'gross': '330.00', 'payable': '330.00'}
        if uuid:
            m['ext']['my']['original_uuid'] = uuid
    return f

def self_billed(kind='invoice'):
    def f(m):
        if kind != 'invoice':
            note(kind)(m)
        m['ext']['my']['self_billed'] = True
        m['parties']['seller'] = {
            'name': 'Overseas Supplier Pte Ltd', 'country': 'SG', 'phone': '+6561234567',
            'ids': [{'scheme': 'TIN', 'value': 'EI00000000030'}, {'scheme': 'BRN', 'value': 'NA'}],
            'address': {'lines': ['1 Raffles Place'], 'city': 'Singapore', 'postcode': '048616', 'country': 'SG'}}
        m['ext']['my']['msic_code'] = '00000'
    return f

def fx(m):
    inv = m['invoice']
    inv['currency'] = 'USD'
    inv['exchange_rate'] = '4.72'
    m['parties']['buyer'] = {
        'name': 'Foreign Buyer Inc', 'country': 'US', 'phone': '+12125550100',
        'ids': [{'scheme': 'TIN', 'value': 'EI00000000020'}, {'scheme': 'PASSPORT', 'value': 'A12345678'}],
        'address': {'lines': ['350 Fifth Avenue'], 'city': 'New York', 'postcode': '10118', 'region': 'NY', 'country': 'US'}}
    m['ext']['my']['customs_export_form'] = 'K2-2026-000123'
    m['ext']['my']['incoterms'] = 'FOB'

def consolidated(m):
    m['parties']['buyer'] = {'name': 'General Public', 'ids': [{'scheme': 'TIN', 'value': 'EI00000000010'}]}
    m['ext']['my']['classification'] = '004'
    m['invoice']['billing_period'] = {'start': '2026-10-01', 'end': '2026-10-31'}
    m['ext']['my']['billing_frequency'] = 'Monthly'
    m['invoice']['lines'][0]['description'] = 'Receipts R-0001 to R-0950'
    m['invoice']['lines'][1]['description'] = 'Receipts R-0951 to R-1200'

def exempt(m):
    l = m['invoice']['lines'][0]
    l['discount'] = '20.00'
    l['amount'] = '280.00'
    l['taxes'] = [{'type': 'SST', 'category': 'E', 'rate': '0', 'amount': '0'}]
    m['ext']['my']['lines'] = [{'exemption_reason': 'Exempted under Sales Tax (Persons Exempted) Order 2018'}]
    m['invoice']['totals'] = {'net': '360.00', 'tax': '6.40', 'gross': '366.40', 'payable': '366.40'}
    m['invoice']['lines'][1]['taxes'] = [{'type': 'SST', 'category': '02', 'rate': '8', 'amount': '6.40'}]

# ---- valid ----
case('invoice-xml')
case('invoice-json', settings='format = "json";')
case('credit-note', note('credit_note'))
case('credit-note-json', note('credit_note'), settings='format = "json";')
case('debit-note', note('debit_note'))
case('refund-note', note('refund_note'))
case('self-billed-invoice', self_billed())
case('self-billed-credit-note', self_billed('credit_note'))
case('self-billed-refund-note-json', self_billed('refund_note'), settings='format = "json";')
case('foreign-currency', fx)
case('foreign-currency-json', fx, settings='format = "json"; document_hash = "base64";')
case('consolidated', consolidated)
case('tax-exempt-discount', exempt)
case('intermediary', settings='intermediary = true; taxpayer_tin = "C99999999990";')
# A note whose original's LHDN UUID comes from the related original message (its authority
# reference), not from ext.my.original_uuid.
ORIGINAL = copy.deepcopy(BASE)
ORIGINAL['id'] = 'my-original-0001'
case('credit-note-related-uuid', note('credit_note', uuid=None),
     related=[{'message': ORIGINAL, 'state': 'approved', 'authority_ref': 'R3LAT3D0R1G1NAL1NV01C3UU1D',
               'tenant': 'dev'}])
case('cancel', call={'op': 'cancel', 'authority_ref': 'F9D425P6DS7D8IU9D8I8HT2V10',
                     'reason': 'Wrong buyer details'})

# ---- invalid ----
def decl(m):
    m['kind'] = 'declaration'
    m['direction'] = 'import'
    del m['invoice']
    m['declaration'] = {'type': 'low_value', 'currency': 'MYR', 'lines': [
        {'line': 1, 'description': 'Scarf', 'hs_code': '611710', 'origin': 'CN', 'quantity': '1',
         'unit': 'H87', 'amount': '20.00'}]}
    del m['ext']
case('invalid-declaration', decl, errors=[('/kind', 'unsupported')])
def bad_tin(m): m['parties']['seller']['ids'][0]['value'] = 'C0123'
case('invalid-tin', bad_tin, errors=[('/parties/seller/ids/0/value', 'format')])
def no_phone(m): del m['parties']['seller']['phone']
case('invalid-missing-phone', no_phone, errors=[('/parties/seller/phone', 'required')])
def bad_tax(m):
    m['invoice']['lines'][1]['taxes'][0]['amount'] = '6.39'
    m['invoice']['totals'].update(tax='36.39', gross='416.39', payable='416.39')
case('invalid-tax-rounding', bad_tax, errors=[('/invoice/lines/1/taxes/0/amount', 'rule')])
def no_orig(m):
    note('credit_note')(m)
    del m['invoice']['original_invoice']
case('invalid-note-without-original', no_orig, errors=[('/invoice/original_invoice', 'required')])
def note_no_uuid(m): note('debit_note', uuid=None)(m)
case('invalid-note-without-uuid', note_no_uuid, errors=[('/ext/my/original_uuid', 'required')])
def fx_no_rate(m):
    fx(m)
    del m['invoice']['exchange_rate']
case('invalid-fx-without-rate', fx_no_rate, errors=[('/invoice/exchange_rate', 'required')])
def bad_class(m): m['ext']['my']['classification'] = '999'
case('invalid-classification', bad_class, errors=[('/ext/my/classification', 'format')])
def no_class(m): del m['ext']['my']['classification']
case('invalid-missing-classification', no_class, errors=[('/invoice/lines/0', 'required'), ('/invoice/lines/1', 'required')])
def old(m): m['invoice']['issued_at'] = '2026-11-18T10:00:00+08:00'
case('invalid-issued-too-old', old, errors=[('/invoice/issued_at', 'rule')])
def bad_state(m): m['parties']['buyer']['address']['region'] = 'Atlantis'
case('invalid-state', bad_state, errors=[('/parties/buyer/address/region', 'format')])
def unknown_ext(m): m['ext']['my']['msic'] = '46510'
case('invalid-ext-member', unknown_ext, errors=[('/ext/my/msic', 'unknown_member')])
def exempt_no_reason(m):
    exempt(m)
    del m['ext']['my']['lines']
case('invalid-exempt-without-reason', exempt_no_reason, errors=[('/invoice/lines/0/taxes/0/exemption_reason', 'required')])
def no_msic(m): del m['ext']['my']['msic_code']
case('invalid-missing-msic', no_msic, errors=[('/ext/my/msic_code', 'required')])
case('invalid-cancel-without-reason', call={'op': 'cancel', 'authority_ref': 'F9D425P6DS7D8IU9D8I8HT2V10', 'reason': ''},
     errors=[('', 'required')])
def bad_brn(m): m['parties']['buyer']['ids'][1]['value'] = '12345-X'
case('invalid-brn', bad_brn, errors=[('/parties/buyer/ids/1/value', 'format')])
