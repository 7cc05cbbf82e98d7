#!/usr/bin/env python3
"""Writes the input side of plugins/cn/vectors (input.json, related/, call.json, settings.conf,
errors.json). expected/ is produced by `ewtpctl translate --unsigned` and reviewed by hand
against the CEB specification and XSD (tests/conformance.sh validates it). Re-run after
changing a case: python3 tests/make_vectors.py (from plugins/cn)."""
import copy, json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
VEC = os.path.join(HERE, '..', 'vectors')

PLATFORM = {"name": "Example Platform Ltd", "ids": [{"scheme": "CN-CUSTOMS", "value": "3301960ABC"}]}
MERCHANT = {"name": "Example Store", "ids": [{"scheme": "CN-CUSTOMS", "value": "3301960XYZ"}]}
BUYER = {"name": "李雷", "ids": [{"scheme": "CN-RIC", "value": "110101199003077774"}], "phone": "13800000000"}
PAY = {"name": "Example Pay", "ids": [{"scheme": "CN-CUSTOMS", "value": "3301960PAY"}]}
LOGI = {"name": "Example Express", "ids": [{"scheme": "CN-CUSTOMS", "value": "3301980EXP"}]}
DECL = {"name": "Example Customs Broker", "ids": [{"scheme": "CN-CUSTOMS", "value": "3301980AGT"}]}
CONS = {"name": "李雷", "phone": "13800000000",
        "address": {"lines": ["文三路1号"], "city": "杭州市", "region": "浙江省", "country": "CN"}}
SELLER = {"name": "Yiwu Scarf Factory", "ids": [{"scheme": "CN-CUSTOMS", "value": "3318960SEL"}]}

def env(kind, mid, direction="import", parties=None, **body):
    m = {"schema": "ewtp/1", "id": mid, "kind": kind, "destination": "CN",
         "created_at": "2026-11-22T10:00:00+08:00", "parties": parties or {}}
    if direction:
        m["direction"] = direction
    m.update(body)
    return m

LINE = {"line": 1, "sku": "SKU-1", "description": "Wool scarf", "hs_code": "6117100000",
        "origin": "BE", "quantity": "1", "unit": "H87", "unit_price": "199.00", "amount": "199.00"}

ORDER = env("order", "ord-0001", parties={"platform": PLATFORM, "merchant": MERCHANT, "buyer": BUYER,
            "payment_provider": PAY, "consignee": CONS},
            order={"number": "SO-1001", "ordered_at": "2026-11-22T09:58:00+08:00", "currency": "CNY",
                   "goods_value": "199.00", "freight": "10.00", "discount": "0", "insurance": "0",
                   "tax_total": "18.97", "paid_total": "227.97", "lines": [LINE]},
            ext={"cn": {"buyer_reg_no": "lilei-0001", "ebp_name_cn": "示例平台有限公司",
                        "lines": [{"line": 1, "name_cn": "羊毛围巾", "gmodel": "羊毛围巾|无品牌|180x30cm"}]}})
PAYMENT = env("payment", "pay-0001", parties={"platform": PLATFORM, "payment_provider": PAY, "buyer": BUYER},
              payment={"number": "PAY-20261122-0001", "order_number": "SO-1001",
                       "paid_at": "2026-11-22T09:59:30+08:00", "amount": "227.97", "currency": "CNY",
                       "method": "card"})
WAYBILL = env("waybill", "wb-0001", parties={"logistics": LOGI, "consignee": CONS, "platform": PLATFORM},
              waybill={"number": "EX123456789CN", "order_number": "SO-1001", "transport_mode": "4",
                       "freight": "10.00", "currency": "CNY", "gross_weight_kg": "0.350",
                       "packages": 1, "goods_description": "羊毛围巾 1条"},
              ext={"cn": {"bill_no": "999-12345678", "insured_fee": "0"}})
DECLARATION = env("declaration", "inv-0001",
                  parties={"platform": PLATFORM, "merchant": MERCHANT, "buyer": BUYER,
                           "logistics": LOGI, "declarant": DECL, "consignee": CONS},
                  declaration={"type": "low_value", "order_number": "SO-1001",
                               "waybill_number": "EX123456789CN", "customs_office": "2928",
                               "transport": {"mode": "4", "means_id": "CA1234", "voyage": "20261121",
                                             "departure": {"country": "BE", "location": "BEBRU", "date": "2026-11-20"},
                                             "arrival": {"country": "CN", "location": "CNHGH", "date": "2026-11-21"}},
                               "currency": "CNY", "freight": "10.00", "insurance": "0",
                               "gross_weight_kg": "0.350", "net_weight_kg": "0.300", "packages": 1,
                               "lines": [LINE]},
                  ext={"cn": {"bill_no": "999-12345678", "port_code": "2928",
                              "lines": [{"line": 1, "name_cn": "羊毛围巾", "gmodel": "羊毛围巾|无品牌|180x30cm",
                                         "qty1": "0.3", "unit1": "035"}]}})

def write(case, msg, related=None, call=None, settings=None, errors=None):
    d = os.path.join(VEC, case)
    if os.path.isdir(d):
        for f in ('input.json', 'call.json', 'settings.conf', 'errors.json'):
            if os.path.exists(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
        if os.path.isdir(os.path.join(d, 'related')):
            shutil.rmtree(os.path.join(d, 'related'))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'input.json'), 'w') as f:
        json.dump(msg, f, ensure_ascii=False, indent=2)
        f.write('\n')
    for i, r in enumerate(related or []):
        os.makedirs(os.path.join(d, 'related'), exist_ok=True)
        with open(os.path.join(d, 'related', '%d-%s.json' % (i + 1, r['kind'])), 'w') as f:
            json.dump(r, f, ensure_ascii=False, indent=2)
            f.write('\n')
    if call:
        with open(os.path.join(d, 'call.json'), 'w') as f:
            json.dump(call, f, ensure_ascii=False)
            f.write('\n')
    if settings:
        with open(os.path.join(d, 'settings.conf'), 'w') as f:
            f.write(settings)
    if errors is not None:
        with open(os.path.join(d, 'errors.json'), 'w') as f:
            json.dump({"errors": [{"pointer": p, "code": c} for p, c in errors]}, f)
            f.write('\n')

def setp(m, path, value):
    m = copy.deepcopy(m)
    cur = m
    parts = path.strip('/').split('/')
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1]
    if value is None:
        if isinstance(cur, list):
            del cur[int(last)]
        else:
            del cur[last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return m

# ---- valid import -------------------------------------------------------------------------
write('import-order-311', ORDER)
write('import-payment-411', PAYMENT)
write('import-waybill-511', WAYBILL)
write('import-status-513', env("status", "st-0001", parties={"logistics": LOGI},
      status={"waybill_number": "EX123456789CN", "order_number": "SO-1001", "event": "delivered",
              "at": "2026-11-24T15:30:00+08:00", "location": "CNHGH"}))
write('import-declaration-621', DECLARATION, related=[ORDER, PAYMENT, WAYBILL])
bonded = copy.deepcopy(DECLARATION)
bonded['id'] = 'inv-0002'
bonded['declaration']['transport'] = {"mode": "4"}
bonded['ext']['cn'] = {"trade_mode": "1210", "ems_no": "T2928W000001", "area_code": "3301960WH1",
                       "area_name": "杭州综保区示例仓", "assure_code": "3301960XYZ",
                       "ebc_name_cn": "示例店铺",
                       "lines": [{"line": 1, "name_cn": "羊毛围巾", "gmodel": "羊毛围巾|无品牌|180x30cm",
                                  "qty1": "0.3", "unit1": "035", "item_record_no": "I-0001"}]}
write('import-declaration-621-bonded', bonded,
      settings='plugins = ( { name = "cn-hz"; plugin = "cn"; settings = {\n'
               '  cop_code = "3301960XYZ"; cop_name = "示例店铺"; dxp_id = "DXPENT0000458763";\n'
               '  sign_alg = "rsa-sha1"; cert_no = "01691fe9"; units = { H87 = "011"; }; }; } );\n')
write('import-cancel-623', DECLARATION,
      call={"op": "cancel", "authority_ref": "292820261000000001", "reason": "买家取消订单"})
write('import-return-625', env("return", "ret-0001",
      parties={"platform": PLATFORM, "merchant": MERCHANT, "buyer": BUYER, "logistics": LOGI,
               "declarant": DECL},
      **{"return": {"number": "R-1", "order_number": "SO-1001", "waybill_number": "EX123456789CN",
                    "declaration_ref": "292820261000000001", "reason": "尺寸不合适",
                    "lines": [dict(LINE)]}},
      ext={"cn": {"customs_code": "2928", "lines": [{"line": 1, "name_cn": "羊毛围巾"}]}}))
write('import-manifest-711', env("manifest", "mf-0001", parties={"logistics": LOGI, "declarant": DECL},
      manifest={"number": "M-1", "master_waybill": "999-12345678",
                "transport": {"mode": "4", "means_id": "CA1234", "voyage": "20261121"},
                "customs_office": "2928", "waybills": ["EX123456789CN", "EX123456790CN"],
                "packages": 2, "gross_weight_kg": "0.700"}))

# ---- valid export -------------------------------------------------------------------------
EXPORTER = {"name": "Yiwu Export Co", "ids": [{"scheme": "CN-CUSTOMS", "value": "3318960EXP"}]}
ELINE = {"line": 1, "sku": "YW-100", "description": "Christmas ornament", "hs_code": "9505100000",
         "origin": "CN", "quantity": "10", "unit": "H87", "unit_price": "2.50", "amount": "25.00"}
write('export-order-303', env("order", "eord-0001", direction="export",
      parties={"platform": PLATFORM, "exporter": EXPORTER},
      order={"number": "EO-2001", "ordered_at": "2026-11-20T08:00:00+08:00", "currency": "USD",
             "goods_value": "25.00", "freight": "5.00", "paid_total": "30.00", "lines": [ELINE]},
      ext={"cn": {"lines": [{"line": 1, "name_cn": "圣诞装饰品"}]}}))
write('export-payment-403', env("payment", "epay-0001", direction="export",
      parties={"platform": PLATFORM, "merchant": EXPORTER, "payment_provider": PAY},
      payment={"number": "RCPT-1", "order_number": "EO-2001", "paid_at": "2026-11-20T08:05:00+08:00",
               "amount": "30.00", "currency": "USD"}))
write('export-waybill-505', env("waybill", "ewb-0001", direction="export",
      parties={"logistics": LOGI, "merchant": EXPORTER},
      waybill={"number": "YW000000001", "order_number": "EO-2001", "freight": "5.00", "currency": "USD",
               "gross_weight_kg": "1.2", "packages": 1, "goods_description": "圣诞装饰品10个"}))
write('export-arrival-507', env("status", "earr-0001", direction="export",
      parties={"logistics": LOGI, "declarant": DECL},
      status={"waybill_number": "YW000000001", "event": "arrived", "at": "2026-11-21T10:00:00+08:00"},
      ext={"cn": {"customs_code": "2921", "traf_mode": "4", "domestic_traf_no": "浙G12345"}}))
write('export-departure-509', env("status", "edep-0001", direction="export",
      parties={"logistics": LOGI},
      status={"waybill_number": "YW000000001", "event": "departed", "at": "2026-11-22T01:00:00+08:00"},
      ext={"cn": {"customs_code": "2921", "traf_mode": "5", "bill_no": "999-87654321"}}))
EDECL = env("declaration", "einv-0001", direction="export",
            parties={"platform": PLATFORM, "exporter": EXPORTER, "seller": SELLER, "logistics": LOGI,
                     "declarant": DECL},
            declaration={"type": "low_value", "order_number": "EO-2001", "waybill_number": "YW000000001",
                         "customs_office": "2921",
                         "transport": {"mode": "4", "means_id": "CA9876", "voyage": "20261122",
                                       "departure": {"country": "CN", "date": "2026-11-22"},
                                       "arrival": {"country": "BE"}},
                         "currency": "USD", "freight": "5.00", "insurance": "0",
                         "gross_weight_kg": "1.2", "net_weight_kg": "1.0", "packages": 1,
                         "lines": [ELINE]},
            ext={"cn": {"port_code": "2921", "pod": "3011", "wrap_type": "2",
                        "lines": [{"line": 1, "name_cn": "圣诞装饰品", "qty1": "10", "unit1": "007"}]}})
write('export-declaration-603', EDECL)
write('export-cancel-605', EDECL, call={"op": "cancel", "authority_ref": "29212026E000000001",
                                        "reason": "订单取消"})
write('export-manifest-607', env("manifest", "emf-0001", direction="export",
      parties={"logistics": LOGI, "declarant": DECL},
      manifest={"number": "EM-1", "master_waybill": "999-87654321",
                "transport": {"mode": "4", "means_id": "CA9876", "voyage": "20261122"},
                "customs_office": "2921", "waybills": ["YW000000001"], "packages": 1,
                "gross_weight_kg": "1.2"}))
write('export-summary-701', env("summary", "esum-0001", direction="export",
      parties={"merchant": EXPORTER, "declarant": DECL},
      summary={"number": "S-2026-11", "period": {"start": "2026-11-01", "end": "2026-11-30"},
               "customs_office": "2921", "declarations": ["29212026E000000001"], "currency": "USD",
               "total_value": "25.00"}))

# ---- invalid ------------------------------------------------------------------------------
write('invalid-621-hs-8-digits', setp(DECLARATION, '/declaration/lines/0/hs_code', '61171000'),
      errors=[('/declaration/lines/0/hs_code', 'format')])
mismatch = setp(DECLARATION, '/declaration/lines/0/quantity', '2')
mismatch = setp(mismatch, '/declaration/lines/0/amount', '398.00')
write('invalid-621-order-mismatch', mismatch, related=[ORDER, PAYMENT, WAYBILL],
      errors=[('/declaration/lines/0/quantity', 'rule'), ('/declaration/lines/0/amount', 'rule')])
otherpay = setp(PAYMENT, '/payment/amount', '200.00')
write('invalid-621-payment-mismatch', DECLARATION, related=[ORDER, otherpay, WAYBILL],
      errors=[('/declaration/order_number', 'rule')])
big = setp(DECLARATION, '/declaration/lines/0/unit_price', '5200.00')
big = setp(big, '/declaration/lines/0/amount', '5200.00')
write('invalid-621-over-limit', big, errors=[('/declaration/lines', 'rule')])
write('invalid-621-no-qty1', setp(DECLARATION, '/ext/cn/lines/0/qty1', None),
      errors=[('/declaration/lines/0', 'required')])
nobuyer = setp(ORDER, '/parties/buyer/ids', [])
write('invalid-311-buyer-without-ric', nobuyer, errors=[('/parties/buyer/ids', 'required')])
six = setp(ORDER, '/order/lines/0/quantity', '1.000001')
six = setp(six, '/order/lines/0/unit_price', '199.00')
six = setp(six, '/order/lines/0/amount', '199.000199')
six = setp(six, '/order/goods_value', '199.000199')
six = setp(six, '/order/paid_total', '227.970199')
write('invalid-311-six-decimals', six, errors=[('/order/lines/0/quantity', 'format'),
                                               ('/order/lines/0/amount', 'format')])
usd = setp(ORDER, '/order/currency', 'USD')
write('invalid-311-currency-usd', usd, errors=[('/order/currency', 'rule')])
write('invalid-311-no-platform-code', setp(ORDER, '/parties/platform/ids', []),
      errors=[('/parties/platform/ids', 'required')])
write('invalid-311-no-buyer-reg-no', setp(ORDER, '/ext/cn/buyer_reg_no', None),
      errors=[('/ext/cn/buyer_reg_no', 'required')])
write('invalid-411-no-payment-provider', setp(PAYMENT, '/parties/payment_provider', None),
      errors=[('/parties/payment_provider', 'required')])
write('invalid-511-two-packages', setp(WAYBILL, '/waybill/packages', 2),
      errors=[('/waybill/packages', 'rule')])
write('invalid-513-departed-import', env("status", "st-0002", parties={"logistics": LOGI},
      status={"waybill_number": "EX123456789CN", "event": "departed", "at": "2026-11-24T15:30:00+08:00"}),
      errors=[('/kind', 'unsupported')])
write('invalid-623-no-invtno', DECLARATION, call={"op": "cancel", "reason": "买家取消订单"},
      errors=[('', 'rule')])
write('invalid-625-no-declaration-ref', setp(json.loads(open(os.path.join(VEC, 'import-return-625', 'input.json')).read()),
      '/return/declaration_ref', None), errors=[('/return/declaration_ref', 'required')])
write('invalid-711-no-master-waybill', setp(json.loads(open(os.path.join(VEC, 'import-manifest-711', 'input.json')).read()),
      '/manifest/master_waybill', None), errors=[('/manifest/master_waybill', 'required')])
write('invalid-ext-unknown-member', setp(ORDER, '/ext/cn/buyer_regno', 'x'),
      errors=[('/ext/cn/buyer_regno', 'unknown_member')])
write('invalid-unit-unmapped', setp(ORDER, '/order/lines/0/unit', 'MTR'),
      errors=[('/order/lines/0/unit', 'unsupported')])
write('invalid-603-no-port-code', setp(EDECL, '/ext/cn/port_code', None),
      errors=[('/ext/cn/port_code', 'required')])
