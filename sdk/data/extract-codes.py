#!/usr/bin/python3
# One-off extraction of the code tables committed in this folder (see README.md).
# The build does not run this: it reads the committed .tsv files.
# Usage: sdk/data/extract-codes.py SHARED_DIR  (writes next to this script)
import json, os, re, sys

here = os.path.dirname(os.path.abspath(__file__))
shared = sys.argv[1] if len(sys.argv) > 1 else '/work/shared'
ISO = '/usr/share/iso-codes/json'

def clean(name):
    # CMake lists split on ';' and group on brackets: keep names free of both.
    name = ' '.join(name.split())
    return name.replace(';', ',').replace('[', '(').replace(']', ')')

def write(fname, header, rows):
    with open(os.path.join(here, fname), 'w', encoding='utf-8') as f:
        f.write('# ' + header + '\n')
        for r in sorted(rows):
            f.write('\t'.join(r) + '\n')

c = json.load(open(f'{ISO}/iso_3166-1.json'))['3166-1']
write('countries.tsv',
      'ISO 3166-1 from Debian iso-codes (iso_3166-1.json): alpha2 alpha3 numeric name',
      [(x['alpha_2'], x['alpha_3'], x['numeric'], clean(x['name'])) for x in c])

HISTORIC = {'HRK'}  # replaced by EUR on 2023-01-01, still in Debian 12's iso-codes
MINOR = {}
for k in 'BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF'.split():
    MINOR[k] = '0'
for k in 'BHD IQD JOD KWD LYD OMR TND'.split():
    MINOR[k] = '3'
for k in 'CLF UYW'.split():
    MINOR[k] = '4'
for k in 'XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX'.split():
    MINOR[k] = 'N.A.'
cur = json.load(open(f'{ISO}/iso_4217.json'))['4217']
write('currencies.tsv',
      'ISO 4217 active codes from Debian iso-codes (iso_4217.json) minus HRK; minor units '
      'from the ISO 4217 list (N.A. = none): alpha3 numeric minor name',
      [(x['alpha_3'], x['numeric'], MINOR.get(x['alpha_3'], '2'), clean(x['name']))
       for x in cur if x['alpha_3'] not in HISTORIC])

sch = open(f'{shared}/reference/be/peppol/sch/CEN-EN16931-UBL.sch').read()
codes = re.search(r'id="BR-CL-23".*?contains\(\' (.*?) \', concat', sch, re.S).group(1).split()
isx = lambda k: len(k) == 3 and k[0] == 'X'
ut = {x['Code']: clean(x['Name'])
      for x in json.load(open(f'{shared}/reference/my/codes/UnitTypes.json'))}
rec20 = {k for k in codes if not isx(k)} | {k for k in ut if not isx(k)}
write('units.tsv',
      'UN/ECE Rec. 20 units: non-X codes of EN 16931 BR-CL-23 (CEN-EN16931-UBL.sch) union '
      'MyInvois UnitTypes.json minus Rec. 21 X codes; names from UnitTypes.json: code name',
      [(k, ut.get(k, '')) for k in rec20])
rec21 = {k for k in codes if isx(k)} | {k for k in ut if isx(k)}
write('packages.tsv',
      'UN/ECE Rec. 21 package kinds: X-prefixed codes of EN 16931 BR-CL-23 without the X; '
      'names from MyInvois UnitTypes.json: code name',
      [(k[1:], ut.get(k, '')) for k in rec21])
