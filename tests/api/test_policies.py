#!/usr/bin/python3
"""test_policies.py: policies and manual SAs over bitwd's REST API: CRUD, every class of bad input, keys write-only,
reorder, paging, read-only tokens.

usage: test_policies.py BITWD [BITW_WIRE [BITW_WIRECTL]]

With BITW_WIRE (and root), a real bitw-wire runs in a network namespace of its own (veth pairs, nothing in the root
namespace) and every write must be acknowledged by it (201/200), and the wire's own configuration must show what
REST says. Without it, writes answer 503 NOT_APPLIED with "stored": true and the test reads the stored state back.
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import requests

BITWD = sys.argv[1]
WIRE = sys.argv[2] if len(sys.argv) > 2 else None
WIRECTL = sys.argv[3] if len(sys.argv) > 3 else None
ADMIN_PW = 'admin-password-for-tests'
RO_PW = 'readonly-password-for-tests'
NS = f'm4pol{os.getpid()}'

# Keys of the SAs this test adds: none of them may ever appear in a response.
KEYS = {
    'gcm_out': '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01020304',
    'gcm_in': 'ffeeddccbbaa99887766554433221100ffeeddccbbaa9988776655443322110004030201',
    'cbc': '0f0e0d0c0b0a09080706050403020100',
    'hmac': 'a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0',
}

failures = 0
ntests = 0
responses = []      # the text of every response seen, to look for keys


def check(cond, what):
    global failures, ntests
    ntests += 1
    what = ' '.join(str(what).split())
    print(('ok' if cond else 'not ok') + f' {ntests} - {what}', flush=True)
    if not cond:
        failures += 1
    return cond


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sh(*cmd, check_rc=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check_rc and r.returncode:
        raise RuntimeError(f'{" ".join(cmd)} -> {r.returncode}: {r.stderr}')
    return r


class Api:
    """A REST client with a bearer token; remembers every response body."""

    def __init__(self, base, token=None):
        self.base = base
        self.s = requests.Session()
        if token:
            self.s.headers['Authorization'] = 'Bearer ' + token

    def req(self, method, path, body=None, raw=None, ctype='application/json', **kw):
        headers = kw.pop('headers', {})
        if body is not None:
            raw = json.dumps(body)
        if raw is not None:
            headers['Content-Type'] = ctype
        r = self.s.request(method, self.base + path, data=raw, headers=headers, timeout=30, **kw)
        responses.append(r.text)
        for h, v in r.headers.items():
            responses.append(f'{h}: {v}')
        return r

    def get(self, path, **kw):
        return self.req('GET', path, **kw)

    def post(self, path, body=None, **kw):
        return self.req('POST', path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.req('PUT', path, body, **kw)

    def delete(self, path, **kw):
        return self.req('DELETE', path, **kw)


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='bitw-m4-')
        self.procs = []
        self.wire = None
        self.netns = False

    # --- the wire, in a namespace of its own ----------------------------
    def start_wire(self):
        sh('ip', 'netns', 'add', NS)
        self.netns = True
        for a, b in (('red0', 'red1'), ('blk0', 'blk1')):
            sh('ip', '-n', NS, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b)
            sh('ip', '-n', NS, 'link', 'set', a, 'up')
            sh('ip', '-n', NS, 'link', 'set', b, 'up')
        cfg = {'ports': {'red': {'interface': 'red0'},
                         'black': {'interface': 'blk0', 'addresses': ['192.0.2.10/24']}}}
        path = os.path.join(self.dir, 'wire.json')
        with open(path, 'w') as f:
            json.dump(cfg, f)
        self.sock = os.path.join(self.dir, 'wire.sock')
        log = open(os.path.join(self.dir, 'wire.log'), 'w')
        p = subprocess.Popen(['ip', 'netns', 'exec', NS, WIRE, '--config', path, '--ctl', self.sock],
                             stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.wire = p
        for _ in range(100):
            if os.path.exists(self.sock):
                return True
            time.sleep(0.1)
        raise RuntimeError('bitw-wire did not start: ' + open(os.path.join(self.dir, 'wire.log')).read())

    def wire_config(self):
        r = sh(WIRECTL, '--socket', self.sock, 'config')
        return json.loads(r.stdout[r.stdout.index('{'):])

    # --- bitwd -------------------------------------------------------------
    def start_bitwd(self):
        pwfile = os.path.join(self.dir, 'admin.pw')
        with open(pwfile, 'w') as f:
            f.write(ADMIN_PW + '\n')
        os.chmod(pwfile, 0o600)
        self.port = free_port()
        sock = self.sock if self.wire else os.path.join(self.dir, 'no-wire.sock')
        self.bitwd_log = os.path.join(self.dir, 'bitwd.log')
        p = subprocess.Popen([BITWD, '--db', os.path.join(self.dir, 'bitw.db'), '--http', '--listen', '127.0.0.1',
                              '--port', str(self.port), '--admin-password-file', pwfile, '--wire-socket', sock],
                             stdout=open(self.bitwd_log, 'w'), stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.base = f'http://127.0.0.1:{self.port}/api/v1'
        for _ in range(100):
            try:
                h = requests.get(self.base + '/health', timeout=1)
                if h.status_code == 200 and (not self.wire or h.json().get('wire') == 'up'):
                    return
            except requests.ConnectionError:
                pass
            if p.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError('bitwd did not come up: ' + open(self.bitwd_log).read()[-3000:])

    def token(self, user, password):
        s = requests.Session()
        r = s.post(self.base + '/login', json={'user': user, 'password': password}, timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f'login {user}: {r.status_code} {r.text}')
        csrf = r.json().get('csrf', '')
        r = s.post(self.base + '/tokens', json={'name': f'{user}-tests'}, headers={'X-Bitw-CSRF': csrf}, timeout=10)
        if r.status_code != 201:
            raise RuntimeError(f'token for {user}: {r.status_code} {r.text}')
        return r.json()['token']

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.netns:
            sh('ip', 'netns', 'del', NS, check_rc=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- helpers --------------------------------------------------------------

def applied(env, r, status):
    """A write: the status we asked for when the wire is there; without it 503 NOT_APPLIED, stored."""
    if env.wire:
        return check(r.status_code == status, f'{r.request.method} {r.request.path_url} -> {status} (got {r.status_code} {r.text[:300]})')
    ok = r.status_code == 503 and r.json().get('code') == 'NOT_APPLIED' and r.json().get('stored') is True
    return check(ok, f'{r.request.method} {r.request.path_url} -> 503 NOT_APPLIED stored (got {r.status_code} {r.text[:300]})')


def problem(r, status, code, field=None, what=''):
    ok = r.status_code == status and r.headers.get('Content-Type', '').startswith('application/problem+json')
    j = {}
    try:
        j = r.json()
    except ValueError:
        ok = False
    ok = ok and j.get('code') == code and j.get('status') == status
    if field is not None:
        # README: the field is named by the field member; detail says what is wrong without repeating it
        ok = ok and j.get('field') == field and not str(j.get('detail', '')).startswith(field + ':')
    return check(ok, f'{what}: {status} {code}' + (f' field {field}' if field else '') + f' (got {r.status_code} {r.text[:300]})')


def policies(api):
    return api.get('/policies?limit=1000').json()['items']


def policy_by_name(api, name):
    return next((p for p in policies(api) if p['name'] == name), None)


def sas(api, query=''):
    return api.get('/sas?limit=1000' + query).json()['items']


def create_policy(env, api, body):
    r = api.post('/policies', body)
    applied(env, r, 201)
    return policy_by_name(api, body['name'])


def create_sa(env, api, body):
    r = api.post('/sas', body)
    applied(env, r, 201)
    return next((s for s in sas(api) if s['spi'] == int(str(body['spi']), 0) and s['direction'] == body['direction']), None)


PROTECT = {'name': 'a-to-b', 'priority': 3, 'action': 'protect', 'direction': 'both',
           'src': '198.18.1.0/24', 'dst': '198.18.2.0/255.255.255.0', 'peer': '198.51.100.10'}
BYPASS = {'name': 'to-router', 'priority': 1, 'action': 'bypass', 'src': '198.18.1.0/24', 'dst': '198.18.1.1'}
DISCARD = {'name': 'no-telnet', 'priority': 2, 'action': 'discard', 'protocol': 'tcp', 'dst_port': 23}
SA_OUT = {'spi': '0x00001001', 'direction': 'out', 'policy': 'a-to-b', 'enc': 'aes-gcm-256', 'enc_key': KEYS['gcm_out']}
SA_IN = {'spi': 4097, 'direction': 'in', 'policy': 'a-to-b', 'enc': 'aes-gcm-256', 'enc_key': KEYS['gcm_in'],
         'replay_window': 128, 'lifetime': {'soft': {'seconds': 100}, 'hard': {'seconds': 200}}}
SA_CBC = {'spi': 0x2001, 'direction': 'out', 'policy': 'a-to-b', 'enc': 'aes-cbc-128', 'enc_key': KEYS['cbc'],
          'integ': 'hmac-sha256-128', 'integ_key': KEYS['hmac']}


# ---- the tests ---------------------------------------------------------------

def test_ports(env, api):
    """SAs need a black address (their default local endpoint); the interfaces are the wire's."""
    r = api.put('/ports/red', {'interface': 'red0'})
    check(r.status_code in (200, 409, 503), f'PUT /ports/red stored ({r.status_code} {r.text[:200]})')
    r = api.put('/ports/black', {'interface': 'blk0', 'addresses': ['192.0.2.10/24']})
    applied(env, r, 200)


def test_policy_crud(env, api):
    r = api.post('/policies', PROTECT)
    applied(env, r, 201)
    p = policy_by_name(api, 'a-to-b')
    check(p is not None, 'the created policy is listed')
    if env.wire:
        check(r.json() == p, 'POST answers the stored policy')
        check(r.headers.get('Location') == f'/api/v1/policies/{p["id"]}', 'Location names the new policy')
    check(p['dst'] == '198.18.2.0/24', 'selectors come back in canonical text')
    check(p['direction'] == 'both' and p['priority'] == 3 and p['peer'] == '198.51.100.10' and p['mode'] == 'tunnel'
          and p['mss_clamp'] is True and p['src_port'] == 'any' and p['protocol'] == 'any',
          'defaults are filled in')
    g = api.get(f'/policies/{p["id"]}')
    check(g.status_code == 200 and g.json() == p, 'GET /policies/{id} gives the same object')
    check(set(p) == {'id', 'name', 'priority', 'order', 'action', 'direction', 'src', 'dst', 'src_port', 'dst_port',
                     'protocol', 'mode', 'peer', 'mss_clamp', 'ecn', 'df', 'pad_check', 'tfc_pad', 'dummy_interval_ms',
                     'icv_96', 'clone', 'sa_type'}, 'a protect policy has exactly the schema fields')
    check(p['ecn'] is True and p['df'] == 'clear' and p['pad_check'] is True and p['tfc_pad'] == 0 and
          p['dummy_interval_ms'] == 0 and p['icv_96'] is False, 'the SA options have their defaults')
    b = create_policy(env, api, BYPASS)
    d = create_policy(env, api, DISCARD)
    check(b and 'peer' not in b and 'mode' not in b, 'bypass policies carry no protect fields')
    check(d and d['dst_port'] == '23' and d['protocol'] == 'tcp', 'ports and protocol stored')
    names = [x['name'] for x in policies(api)]
    check(names == ['to-router', 'no-telnet', 'a-to-b'], f'listed in evaluation order by priority ({names})')
    if env.wire:
        wire = [x['name'] for x in env.wire_config().get('policies', [])]
        check(sorted(wire) == sorted(names), f'the wire has the same policies ({wire})')
        wp = next(x for x in env.wire_config()['policies'] if x['name'] == 'a-to-b')
        check(wp['id'] == p['id'], 'the REST id is the id in the wire configuration')

    # PUT replaces: rename, new selector; the SAs of a renamed policy follow it (checked below)
    new = dict(PROTECT, name='a-to-b2', dst='198.18.3.0/24', mss_clamp=False)
    r = api.put(f'/policies/{p["id"]}', new)
    applied(env, r, 200)
    g = api.get(f'/policies/{p["id"]}').json()
    check(g['name'] == 'a-to-b2' and g['dst'] == '198.18.3.0/24' and g['mss_clamp'] is False,
          'PUT replaced the fields')
    check(g['order'] == p['order'], 'PUT without order keeps the position')
    r = api.put(f'/policies/{p["id"]}', dict(new, id=p['id'] + 100))
    problem(r, 422, 'BAD_FIELD', 'id', 'PUT with another id in the body')
    r = api.put(f'/policies/{p["id"]}', dict(new, id=p['id']))
    applied(env, r, 200)
    r = api.put('/policies/99999', new)
    problem(r, 404, 'NOT_FOUND', None, 'PUT of a missing policy')
    r = api.put(f'/policies/{p["id"]}', dict(new, name='to-router'))
    problem(r, 409, 'CONFLICT', None, 'PUT renaming onto another policy\'s name')
    r = api.put(f'/policies/{p["id"]}', dict(PROTECT))
    applied(env, r, 200)
    check(api.get('/policies/99999').status_code == 404, 'GET of a missing policy is 404')
    check(api.get('/policies/abc').status_code in (400, 404), 'GET of a non-numeric id is 400/404')
    return p


def test_bad_policies(env, api):
    before = policies(api)
    cases = [
        ('malformed JSON', dict(raw='{"name": "x", "action": '), 400, 'BAD_JSON', None),
        ('wrong content type', dict(raw=json.dumps(dict(BYPASS, name='ct')), ctype='text/plain'), 415,
         'UNSUPPORTED_MEDIA_TYPE', None),
        ('body over 1 MiB', dict(raw=json.dumps(dict(BYPASS, name='big', pad='x' * (1 << 20)))), 413, 'TOO_LARGE', None),
        ('unknown field', dict(body=dict(BYPASS, name='uf', srcport=80)), 422, 'UNKNOWN_FIELD', 'srcport'),
        ('priority 9', dict(body=dict(BYPASS, name='p9', priority=9)), 422, 'BAD_FIELD', 'priority'),
        ('priority as a string', dict(body=dict(BYPASS, name='ps', priority='1')), 422, 'BAD_FIELD', 'priority'),
        ('host bits in a prefix', dict(body=dict(BYPASS, name='hb', src='198.18.1.1/24')), 422, 'BAD_FIELD', 'src'),
        ('src not an address', dict(body=dict(BYPASS, name='na', src='198.18.1.300')), 422, 'BAD_FIELD', 'src'),
        ('mixed families', dict(body=dict(BYPASS, name='mf', dst='2001:db8::1')), 422, 'BAD_FIELD', 'dst'),
        ('ports without a protocol', dict(body=dict(BYPASS, name='pp', dst_port=80)), 422, 'BAD_FIELD', 'dst_port'),
        ('missing action', dict(body={'name': 'ma'}), 422, 'MISSING_FIELD', 'action'),
        ('bad action', dict(body=dict(BYPASS, name='ba', action='allow')), 422, 'BAD_FIELD', 'action'),
        ('protect without peer', dict(body={'name': 'np', 'action': 'protect'}), 422, 'MISSING_FIELD', 'peer'),
        ('peer on a bypass policy', dict(body=dict(BYPASS, name='pb', peer='198.51.100.1')), 422, 'BAD_FIELD', 'peer'),
        ('bad name', dict(body=dict(BYPASS, name='no spaces')), 422, 'BAD_FIELD', 'name'),
        ('an array, not an object', dict(raw='[1, 2]'), 400, None, None),
        ('duplicate name', dict(body=dict(DISCARD)), 409, 'CONFLICT', None),
    ]
    for what, kw, status, code, field in cases:
        r = api.post('/policies', **kw)
        if code:
            problem(r, status, code, field, what)
        else:
            check(r.status_code in (400, 422), f'{what}: 400/422 (got {r.status_code})')
    check(policies(api) == before, 'nothing was stored by any bad request')


def test_sas(env, api):
    out = create_sa(env, api, SA_OUT)
    check(out is not None and out['spi'] == 0x1001 and out['policy'] == 'a-to-b', 'manual SA added')
    sin = create_sa(env, api, SA_IN)
    check(sin and sin['replay_window'] == 128 and sin['lifetime']['hard']['seconds'] == 200, 'SA fields stored')
    cbc = create_sa(env, api, SA_CBC)
    check(cbc and cbc['integ'] == 'hmac-sha256-128', 'an SA with an integrity algorithm')
    check(out and 'enc_key' not in out and 'integ_key' not in out, 'no keys in a listed SA')
    g = api.get(f'/sas/{out["id"]}')
    check(g.status_code == 200 and g.json() == out, 'GET /sas/{id} gives the same object, no keys')
    check('enc_key' not in g.json(), 'no keys in GET')
    check(api.get('/sas/99999').status_code == 404, 'GET of a missing SA is 404')
    check(len(sas(api, '&direction=in')) == 1 and len(sas(api, '&direction=out')) == 2, 'filter by direction')
    check(len(sas(api, '&policy=a-to-b')) == 3, 'filter by policy')
    check(api.get('/sas?policy=nope').status_code == 404, 'filter by a missing policy is 404')
    check(api.get('/sas?direction=sideways').status_code == 400, 'a bad direction filter is 400')
    if env.wire:
        w = env.wire_config().get('sas', [])
        check(sorted((s['spi'], s['direction']) for s in w) == [(0x1001, 'in'), (0x1001, 'out'), (0x2001, 'out')],
              f'the wire has the manual SAs ({[(s["spi"], s["direction"]) for s in w]})')

    before = sas(api)
    bad = [
        ('duplicate SPI and direction', dict(SA_OUT), 409, 'CONFLICT', None),
        ('SA for a missing policy', dict(SA_OUT, spi=0x3001, policy='nope'), 422, 'BAD_FIELD', 'policy'),
        ('SA for a bypass policy', dict(SA_OUT, spi=0x3001, policy='to-router'), 422, 'BAD_FIELD', 'policy'),
        ('key of the wrong length', dict(SA_OUT, spi=0x3001, enc_key=KEYS['cbc']), 422, 'BAD_FIELD', 'enc_key'),
        ('key not hex', dict(SA_OUT, spi=0x3001, enc_key='zz' * 36), 422, 'BAD_FIELD', 'enc_key'),
        ('integ with an AEAD', dict(SA_OUT, spi=0x3001, integ='hmac-sha1-96', integ_key=KEYS['hmac'][:40]), 422,
         'BAD_FIELD', 'integ'),
        ('SPI 255 (reserved)', dict(SA_OUT, spi=255), 422, 'BAD_FIELD', 'spi'),
        ('unknown field', dict(SA_OUT, spi=0x3001, key='00'), 422, 'UNKNOWN_FIELD', 'key'),
        ('missing enc', {k: v for k, v in SA_OUT.items() if k != 'enc'}, 422, 'MISSING_FIELD', 'enc'),
        ('soft above hard', dict(SA_OUT, spi=0x3001, lifetime={'soft': {'bytes': 9}, 'hard': {'bytes': 5}}), 422,
         'BAD_FIELD', 'lifetime.soft.bytes'),
        ('replay window 5000', dict(SA_OUT, spi=0x3001, replay_window=5000), 422, 'BAD_FIELD', 'replay_window'),
    ]
    for what, body, status, code, field in bad:
        problem(api.post('/sas', body), status, code, field, what)
    r = api.post('/sas', raw='{"spi": 1', ctype='application/json')
    problem(r, 400, 'BAD_JSON', None, 'SA: malformed JSON')
    r = api.post('/sas', raw=json.dumps(SA_OUT), ctype='application/x-www-form-urlencoded')
    problem(r, 415, 'UNSUPPORTED_MEDIA_TYPE', None, 'SA: wrong content type')
    check(sas(api) == before, 'nothing was stored by any bad SA')

    # same SPI, other direction is fine
    other = create_sa(env, api, dict(SA_OUT, spi=0x2001, direction='in'))
    check(other is not None, 'the same SPI in the other direction is another SA')

    # a policy that has SAs cannot become bypass: the whole configuration is checked
    p = policy_by_name(api, 'a-to-b')
    r = api.put(f'/policies/{p["id"]}', dict(BYPASS, name='a-to-b'))
    check(r.status_code == 422, f'turning a policy with SAs into bypass is refused ({r.status_code} {r.text[:200]})')
    check(policy_by_name(api, 'a-to-b')['action'] == 'protect', 'and the policy is unchanged')

    # a renamed policy keeps its SAs
    r = api.put(f'/policies/{p["id"]}', dict(PROTECT, name='a-to-b-renamed'))
    applied(env, r, 200)
    check(len(sas(api, '&policy=a-to-b-renamed')) == 4, 'the SAs follow a renamed policy')
    r = api.put(f'/policies/{p["id"]}', dict(PROTECT))
    applied(env, r, 200)

    r = api.delete(f'/sas/{out["id"]}')
    applied(env, r, 200)
    check(api.get(f'/sas/{out["id"]}').status_code == 404, 'a deleted SA is gone')
    check(api.delete(f'/sas/{out["id"]}').status_code == 404, 'deleting it again is 404')
    r = api.delete('/sas?policy=nope')
    problem(r, 404, 'NOT_FOUND', 'policy', 'flush of a missing policy')
    r = api.delete('/sas?policy=a-to-b')
    applied(env, r, 200)
    if env.wire:
        check(r.json() == {'deleted': 3}, f'flush by policy says how many ({r.text})')
    check(sas(api) == [], 'flush by policy removed its SAs')
    create_sa(env, api, SA_OUT)
    r = api.delete('/sas')
    applied(env, r, 200)
    if env.wire:
        check(r.json() == {'deleted': 1}, f'flush of everything says how many ({r.text})')
    check(sas(api) == [], 'flush removed every SA')
    if env.wire:
        check(env.wire_config().get('sas', []) == [], 'and the wire has none either')


def test_algorithms(env, api):
    """The RFC 3686/4309/4543/3566 algorithms are stored and applied; 3DES and HMAC-MD5 only once allowed."""
    ccm = create_sa(env, api, {'spi': 0x5001, 'direction': 'out', 'policy': 'a-to-b', 'enc': 'aes-ccm16-128',
                               'enc_key': KEYS['cbc'] + '010203'})
    check(ccm is not None and ccm['enc'] == 'aes-ccm16-128' and ccm['integ'] == 'none', 'an aes-ccm16-128 SA')
    ctr = create_sa(env, api, {'spi': 0x5002, 'direction': 'out', 'policy': 'a-to-b', 'enc': 'aes-ctr-256',
                               'enc_key': KEYS['gcm_out'], 'integ': 'aes-xcbc-96', 'integ_key': KEYS['cbc']})
    check(ctr is not None and ctr['integ'] == 'aes-xcbc-96', 'an aes-ctr-256/aes-xcbc-96 SA')
    gmac = create_sa(env, api, {'spi': 0x5003, 'direction': 'in', 'policy': 'a-to-b', 'enc': 'aes-gmac-128',
                                'enc_key': KEYS['cbc'] + '01020304'})
    check(gmac is not None and gmac['enc'] == 'aes-gmac-128', 'an aes-gmac-128 SA')
    if env.wire:
        w = {(s['spi'], s['enc'], s['integ']) for s in env.wire_config().get('sas', [])}
        check({(0x5001, 'aes-ccm16-128', 'none'), (0x5002, 'aes-ctr-256', 'aes-xcbc-96'),
               (0x5003, 'aes-gmac-128', 'none')} <= w, f'the wire runs them ({sorted(w)})')
    problem(api.post('/sas', {'spi': 0x5004, 'direction': 'out', 'policy': 'a-to-b', 'enc': 'aes-ccm8-128',
                              'enc_key': KEYS['cbc']}), 422, 'BAD_FIELD', 'enc_key', 'CCM key without its salt')

    legacy = {'spi': 0x5005, 'direction': 'out', 'policy': 'a-to-b', 'enc': '3des-cbc',
              'enc_key': KEYS['gcm_out'][:48], 'integ': 'hmac-md5-96', 'integ_key': KEYS['cbc']}
    r = api.post('/sas', legacy)
    field = r.json().get('field', '') if r.status_code == 422 else ''
    check(r.status_code == 422 and field.endswith('.enc') and 'legacy_algorithms' in r.json().get('detail', ''),
          f'3des-cbc is refused while legacy algorithms are off, naming enc ({r.status_code} {r.text[:300]})')
    check(not [s for s in sas(api) if s['spi'] == 0x5005], 'and nothing was stored')
    opts = api.get('/options').json()
    r = api.put('/options', dict(opts, legacy_algorithms=True))
    applied(env, r, 200)
    check(api.get('/options').json().get('legacy_algorithms') is True, 'options.legacy_algorithms is stored')
    des = create_sa(env, api, legacy)
    check(des is not None and des['enc'] == '3des-cbc' and des['integ'] == 'hmac-md5-96',
          'with legacy_algorithms a 3des-cbc/hmac-md5-96 SA is accepted')
    r = api.put('/options', dict(opts, legacy_algorithms=False))
    check(r.status_code == 422 and r.json().get('field', '').endswith('.enc'),
          f'legacy algorithms cannot be switched off while an SA uses one ({r.status_code} {r.text[:200]})')
    r = api.delete('/sas?policy=a-to-b')
    applied(env, r, 200)
    r = api.put('/options', dict(opts, legacy_algorithms=False))
    applied(env, r, 200)
    check(sas(api) == [], 'the SAs of this test are gone again')


def test_policy_options(env, api):
    """The per-policy SA options are stored, shown, checked and reach the wire."""
    body = dict(PROTECT, name='opts', dst='198.18.9.0/24', ecn=False, df='copy', pad_check=False, tfc_pad=256,
                dummy_interval_ms=500, icv_96=True)
    p = create_policy(env, api, body)
    want = {'ecn': False, 'df': 'copy', 'pad_check': False, 'tfc_pad': 256, 'dummy_interval_ms': 500, 'icv_96': True}
    check(p is not None and all(p.get(k) == v for k, v in want.items()), f'policy options stored and shown ({p})')
    d = policy_by_name(api, 'to-router') or {}
    check(not any(k in d for k in want), 'a bypass policy shows none of them')
    if env.wire:
        w = next((x for x in env.wire_config().get('policies', []) if x['name'] == 'opts'), {})
        check(all(w.get(k) == v for k, v in want.items()), f'the wire has them ({w})')
    problem(api.post('/policies', dict(body, name='opts2', tfc_pad=2000)), 422, 'BAD_FIELD', 'tfc_pad', 'tfc_pad 2000')
    problem(api.post('/policies', dict(body, name='opts2', df='sometimes')), 422, 'BAD_FIELD', 'df', 'df sometimes')
    problem(api.post('/policies', dict(BYPASS, name='opts2', icv_96=True)), 422, 'BAD_FIELD', 'icv_96',
            'icv_96 on a bypass policy')
    r = api.put(f'/policies/{p["id"]}', dict(body, df='set', tfc_pad=0))
    applied(env, r, 200)
    q = policy_by_name(api, 'opts')
    check(q['df'] == 'set' and q['tfc_pad'] == 0 and q['icv_96'] is True, f'PUT changes them ({q})')
    r = api.delete(f'/policies/{p["id"]}')
    applied(env, r, 200)


def test_ah_and_clone(env, api):
    """Issue 7 through REST: policy sa_type/clone, SA protocol/clone_host are stored, checked, shown and applied."""
    ah_pol = create_policy(env, api, dict(PROTECT, name='ah-pol', dst='198.18.10.0/24', sa_type='ah'))
    check(ah_pol is not None and ah_pol.get('sa_type') == 'ah' and ah_pol.get('clone') == 'none',
          f'an AH policy is stored with sa_type ah, clone none ({ah_pol})')
    check(policy_by_name(api, 'a-to-b').get('sa_type') == 'esp', 'a policy that does not say is esp')
    ah = create_sa(env, api, {'spi': 0x7001, 'direction': 'out', 'policy': 'ah-pol', 'protocol': 'ah',
                              'integ': 'hmac-sha256-128', 'integ_key': KEYS['hmac']})
    check(ah is not None and ah.get('protocol') == 'ah' and ah['enc'] == 'null' and ah['integ'] == 'hmac-sha256-128',
          f'an AH SA without enc is stored as protocol ah, enc null ({ah})')
    esp = next((s for s in sas(api) if s['spi'] == 0x1001), None)
    check(esp is None or esp.get('protocol') == 'esp', f'an ESP SA says protocol esp ({esp})')
    if env.wire:
        w = env.wire_config()
        wp = next((x for x in w.get('policies', []) if x['name'] == 'ah-pol'), {})
        ws = next((x for x in w.get('sas', []) if x['spi'] == 0x7001), {})
        check(wp.get('sa_type') == 'ah' and ws.get('protocol') == 'ah' and ws.get('integ') == 'hmac-sha256-128',
              f'the wire runs the AH policy and SA ({wp}, {ws})')
    ah_in = {'spi': 0x7002, 'direction': 'in', 'policy': 'ah-pol', 'protocol': 'ah', 'integ': 'hmac-sha256-128',
             'integ_key': KEYS['hmac']}
    problem(api.post('/sas', dict(ah_in, enc='aes-cbc-128', enc_key=KEYS['cbc'])), 422, 'BAD_FIELD', 'enc',
            'an AH SA with a cipher')
    problem(api.post('/sas', {k: v for k, v in ah_in.items() if k not in ('integ', 'integ_key')}), 422, 'BAD_FIELD',
            'integ', 'an AH SA without integrity')
    problem(api.post('/sas', dict(ah_in, encap='udp')), 422, 'BAD_FIELD', 'encap', 'a UDP-encapsulated AH SA')
    problem(api.post('/sas', dict(ah_in, protocol='gre')), 422, 'BAD_FIELD', 'protocol', 'protocol gre')
    problem(api.post('/sas', dict(SA_OUT, spi=0x7003, policy='ah-pol')), 422, 'BAD_FIELD', 'protocol',
            'an ESP SA on an ah policy')
    problem(api.post('/sas', dict(ah_in, policy='a-to-b')), 422, 'BAD_FIELD', 'protocol', 'an AH SA on an esp policy')
    problem(api.put(f'/policies/{ah_pol["id"]}', dict(PROTECT, name='ah-pol', dst='198.18.10.0/24', sa_type='esp')),
            422, 'BAD_FIELD', 'sa_type', 'an ah policy with an AH SA cannot become esp')
    problem(api.post('/policies', dict(PROTECT, name='ah-pad', dst='198.18.13.0/24', sa_type='ah', tfc_pad=64)), 422,
            'BAD_FIELD', 'tfc_pad', 'TFC padding on an ah policy')
    problem(api.post('/policies', dict(BYPASS, name='ah-byp', sa_type='ah')), 422, 'BAD_FIELD', 'sa_type',
            'sa_type on a bypass policy')
    problem(api.post('/policies', dict(PROTECT, name='ah-x', dst='198.18.11.0/24', sa_type='gre')), 422, 'BAD_FIELD',
            'sa_type', 'sa_type gre')
    problem(api.post('/policies', dict(PROTECT, name='ah-x', dst='198.18.11.0/24', ah_proposals='sha256')), 422,
            'BAD_FIELD', 'ah_proposals', 'ah_proposals on an esp policy')
    problem(api.post('/policies', dict(PROTECT, name='ah-x', dst='198.18.11.0/24', sa_type='ah',
                                       ah_proposals='aes256gcm16')), 422, 'BAD_FIELD', 'ah_proposals',
            'a cipher in ah_proposals')
    both = create_policy(env, api, dict(PROTECT, name='bundle', dst='198.18.12.0/24', sa_type='ahesp',
                                        ah_proposals='sha256-sha1'))
    check(both is not None and both.get('sa_type') == 'ahesp', f'an AH+ESP bundle policy ({both})')
    gmac = create_sa(env, api, {'spi': 0x7004, 'direction': 'in', 'policy': 'ah-pol', 'protocol': 'ah',
                                'integ': 'aes-gmac-128', 'integ_key': KEYS['cbc'] + '01020304'})
    check(gmac is not None and gmac.get('integ') == 'aes-gmac-128', f'an AH SA with AES-GMAC integrity ({gmac})')
    problem(api.post('/sas', dict(SA_CBC, spi=0x7005, integ='aes-gmac-128', integ_key=KEYS['cbc'] + '01020304')), 422,
            'BAD_FIELD', 'integ', 'AES-GMAC as the integrity of an ESP SA')
    b_esp = create_sa(env, api, dict(SA_OUT, spi=0x7101, policy='bundle'))
    b_ah = create_sa(env, api, {'spi': 0x7102, 'direction': 'out', 'policy': 'bundle', 'protocol': 'ah',
                                'integ': 'hmac-sha1-96', 'integ_key': KEYS['hmac'][:40]})
    check(b_esp is not None and b_ah is not None and b_ah.get('protocol') == 'ah',
          'a bundle policy takes an ESP SA and an AH SA')
    # a cloned bundle: each host's AH and ESP SA share its inbound SPI; an SA without its host is refused
    bcl = create_policy(env, api, dict(PROTECT, name='bundle-cl', src='198.18.22.0/24', dst='198.18.23.0/24',
                                       sa_type='ahesp', clone='src'))
    check(bcl is not None and bcl.get('sa_type') == 'ahesp' and bcl.get('clone') == 'src', f'a cloned bundle ({bcl})')
    create_sa(env, api, dict(SA_IN, spi=0x7301, policy='bundle-cl', clone_host='198.18.22.5'))
    create_sa(env, api, {'spi': 0x7301, 'direction': 'in', 'policy': 'bundle-cl', 'protocol': 'ah',
                         'integ': 'hmac-sha1-96', 'integ_key': KEYS['hmac'][:40], 'clone_host': '198.18.22.5'})
    host_pair = [x for x in sas(api) if x['spi'] == 0x7301]
    check(sorted(x.get('protocol') for x in host_pair) == ['ah', 'esp'] and
          all(x.get('clone_host') == '198.18.22.5' for x in host_pair),
          f'a host\'s inbound AH and ESP SA of the cloned bundle share SPI 0x7301 ({host_pair})')
    problem(api.post('/sas', {'spi': 0x7302, 'direction': 'out', 'policy': 'bundle-cl', 'protocol': 'ah',
                              'integ': 'hmac-sha1-96', 'integ_key': KEYS['hmac'][:40]}), 422, 'BAD_FIELD', 'clone_host',
            'an AH SA of a cloned bundle without its host')
    # a bundle in transport mode for a host behind bitw: both SAs take the host as their local end
    btr = create_policy(env, api, dict(PROTECT, name='bundle-tr', src='198.18.1.5', dst='198.51.100.10',
                                       peer='198.51.100.10', mode='transport', sa_type='ahesp'))
    check(btr is not None and btr.get('mode') == 'transport' and btr.get('sa_type') == 'ahesp',
          f'an AH+ESP bundle policy in transport mode ({btr})')
    create_sa(env, api, dict(SA_IN, spi=0x7103, policy='bundle-tr'))
    create_sa(env, api, {'spi': 0x7103, 'direction': 'in', 'policy': 'bundle-tr', 'protocol': 'ah',
                         'integ': 'hmac-sha1-96', 'integ_key': KEYS['hmac'][:40]})
    pair = {s.get('protocol', 'esp') for s in sas(api) if s['spi'] == 0x7103 and s['direction'] == 'in'}
    check(pair == {'esp', 'ah'}, f'the transport bundle policy takes an inbound ESP and AH SA sharing an SPI ({pair})')

    # cloning: one SA pair per host of the selector, each naming its host
    cl = create_policy(env, api, dict(PROTECT, name='clones', src='198.18.20.0/24', dst='198.18.21.0/24', clone='src'))
    check(cl is not None and cl.get('clone') == 'src', f'a clone src policy ({cl})')
    host = create_sa(env, api, dict(SA_OUT, spi=0x7201, policy='clones', clone_host='198.18.20.7'))
    check(host is not None and host.get('clone_host') == '198.18.20.7', f'its SA names its host ({host})')
    if env.wire:
        w = env.wire_config()
        wp = next((x for x in w.get('policies', []) if x['name'] == 'clones'), {})
        ws = next((x for x in w.get('sas', []) if x['spi'] == 0x7201), {})
        check(wp.get('clone') == 'src' and ws.get('clone_host') == '198.18.20.7',
              f'the wire clones per source host ({wp}, {ws})')
    problem(api.put(f'/policies/{cl["id"]}', dict(PROTECT, name='clones', src='198.18.20.0/24', dst='198.18.21.0/24',
                                                   clone='none')), 422, 'BAD_FIELD', 'clone',
            'a clone policy with a host\'s SA cannot stop cloning')
    problem(api.put(f'/policies/{cl["id"]}', dict(PROTECT, name='clones', src='198.18.20.0/24', dst='198.18.21.0/24',
                                                   clone='dst')), 422, 'BAD_FIELD', 'clone',
            'nor clone the other side')
    r = api.put(f'/policies/{cl["id"]}', dict(PROTECT, name='clones', src='198.18.30.0/24', dst='198.18.21.0/24',
                                               clone='src'))
    problem(r, 422, 'BAD_FIELD', 'src', 'a cloned src selector that leaves a host\'s SA outside')
    check(r.status_code == 422 and f'SPI 0x{0x7201:08x} out' in r.json().get('detail', '') and
          '198.18.20.7' in r.json().get('detail', ''), f'the refusal says which SA no longer fits ({r.text[:300]})')
    check((policy_by_name(api, 'clones') or {}).get('src') == '198.18.20.0/24', 'the refused PUT changed nothing')
    r = api.put(f'/policies/{cl["id"]}', dict(PROTECT, name='clones', src='198.18.20.0/24', dst='198.18.31.0/24',
                                               clone='src'))
    check(r.status_code in (200, 503), f'the other side of a clone src policy may change ({r.status_code} {r.text[:200]})')
    check((policy_by_name(api, 'clones') or {}).get('clone') == 'src', 'the refusals left it cloning per src host')
    problem(api.post('/sas', dict(SA_OUT, spi=0x7202, policy='clones')), 422, 'BAD_FIELD', 'clone_host',
            'a clone policy\'s SA without its host')
    problem(api.post('/sas', dict(SA_OUT, spi=0x7202, policy='clones', clone_host='198.18.21.7')), 422, 'BAD_FIELD',
            'clone_host', 'a host outside the cloned selector')
    problem(api.post('/sas', dict(SA_OUT, spi=0x7202, policy='clones', clone_host='not-an-address')), 422,
            'BAD_FIELD', 'clone_host', 'a clone_host that is no address')
    problem(api.post('/sas', dict(SA_OUT, spi=0x7202, clone_host='198.18.1.7')), 422, 'BAD_FIELD', 'clone_host',
            'clone_host on an SA of a policy that does not clone')
    problem(api.post('/policies', dict(PROTECT, name='cl-tr', src='198.18.1.5', dst='198.51.100.10', mode='transport',
                                       clone='src')), 422, 'BAD_FIELD', 'clone', 'clone in transport mode')
    problem(api.post('/policies', dict(DISCARD, name='cl-dis', clone='dst')), 422, 'BAD_FIELD', 'clone',
            'clone on a discard policy')

    # export and import: the new fields survive the round trip
    exp = api.get('/config').json()
    names = {p['name']: p for p in exp.get('policies', [])}
    by_spi = {s['spi']: s for s in exp.get('sas', [])}
    check(names.get('ah-pol', {}).get('sa_type') == 'ah' and names.get('clones', {}).get('clone') == 'src' and
          by_spi.get(0x7001, {}).get('protocol') == 'ah' and by_spi.get(0x7201, {}).get('clone_host') == '198.18.20.7',
          'the export carries sa_type, clone, protocol and clone_host')
    r = api.put('/config', exp)
    applied(env, r, 200)
    again = {p['name']: p for p in policies(api)}
    sa_again = {s['spi']: s for s in sas(api)}
    check(again.get('ah-pol', {}).get('sa_type') == 'ah' and again.get('bundle', {}).get('sa_type') == 'ahesp' and
          again.get('clones', {}).get('clone') == 'src' and sa_again.get(0x7001, {}).get('protocol') == 'ah' and
          sa_again.get(0x7102, {}).get('protocol') == 'ah' and
          sa_again.get(0x7201, {}).get('clone_host') == '198.18.20.7' and
          again.get('bundle-cl', {}).get('clone') == 'src' and again.get('bundle-cl', {}).get('sa_type') == 'ahesp',
          f'importing the export keeps them ({again.get("ah-pol")}, {sa_again.get(0x7001)})')
    for name in ('ah-pol', 'bundle', 'bundle-cl', 'bundle-tr', 'clones'):
        p = policy_by_name(api, name)
        if p:
            applied(env, api.delete(f'/policies/{p["id"]}'), 200)


def test_selector_forms(env, api):
    """Every selector form of docs/config.md is stored in the wire's canonical text and means the same to the wire."""
    forms = [
        ({'src': '2001:db8:1::/64', 'dst': 'any6'}, {'src': '2001:db8:1::/64', 'dst': 'any6'}),
        ({'src': '198.18.1.10-198.18.1.20'}, {'src': '198.18.1.10-198.18.1.20', 'dst': 'any'}),
        ({'src': '198.18.1.0-198.18.1.255'}, {'src': '198.18.1.0/24'}),
        ({'protocol': 47}, {'protocol': 47}),
        ({'protocol': '6', 'src_port': '1024-65535', 'dst_port': 443},
         {'protocol': 'tcp', 'src_port': '1024-65535', 'dst_port': '443'}),
        ({'protocol': 'ipv6-icmp', 'src': 'any6', 'src_port': 128}, {'protocol': 'icmp6', 'src_port': '128'}),
        ({'direction': 'in', 'priority': 7}, {'direction': 'in', 'priority': 7}),
    ]
    for i, (given, want) in enumerate(forms):
        body = dict({'name': f'form{i}', 'action': 'discard'}, **given)
        p = create_policy(env, api, body)
        got = {k: p.get(k) for k in want} if p else None
        check(got == want, f'selector {given} stored as {want} (got {got})')
        if env.wire and p:
            w = next((x for x in env.wire_config()['policies'] if x['name'] == body['name']), None)
            check(w == p, f'the wire has {body["name"]} exactly as REST shows it ({w})')
        if p:
            applied(env, api.delete(f'/policies/{p["id"]}'), 200)


def test_sa_endpoints(env, api):
    """Explicit peer, local, UDP encapsulation and ESN are kept; a local address that is not ours is refused."""
    body = dict(SA_OUT, spi=0x7001, peer='198.51.100.11', local='192.0.2.10', encap='udp', encap_sport=4501,
                esn=True)
    s = create_sa(env, api, body)
    want = {'peer': '198.51.100.11', 'local': '192.0.2.10', 'encap': 'udp', 'encap_sport': 4501,
            'encap_dport': 4500, 'esn': True}
    check(s is not None and {k: s.get(k) for k in want} == want, f'SA endpoints and encapsulation stored ({s})')
    if env.wire and s:
        w = next((x for x in env.wire_config()['sas'] if x['spi'] == 0x7001), {})
        check({k: w.get(k) for k in want} == want, f'and the wire has them ({w})')
    before = sas(api)
    r = api.post('/sas', dict(body, spi=0x7002, local='192.0.2.99'))
    check(r.status_code == 422 and 'local' in (r.json().get('field') or ''),
          f'a local address that is not a black address is 422 naming local ({r.status_code} {r.text[:200]})')
    check(sas(api) == before, 'and nothing was stored')
    if s:
        applied(env, api.delete(f'/sas/{s["id"]}'), 200)


def test_sa_server_fault(env, api):
    """A stored policy that no longer parses (changed behind bitwd's back) is the server's fault: an SA for it is a
    500, not a 422 naming one of the policy's fields as if it were the SA's."""
    before = sas(api)
    c = sqlite3.connect(os.path.join(env.dir, 'bitw.db'), timeout=10)
    old = c.execute("SELECT src FROM policies WHERE name = 'a-to-b'").fetchone()
    try:
        c.execute("UPDATE policies SET src = 'not-an-address' WHERE name = 'a-to-b'")
        c.commit()
        r = api.post('/sas', dict(SA_OUT, spi=0x7101))
        j = r.json() if r.headers.get('Content-Type', '').startswith('application/problem+json') else {}
        ok = r.status_code == 500 and j.get('status') == 500 and j.get('field') is None
        check(ok and 'a-to-b' in j.get('detail', ''), 'an SA for a stored policy that no longer parses: 500 naming '
              f'the policy, no field ({r.status_code} {r.text[:200]})')
    finally:
        c.execute("UPDATE policies SET src = ? WHERE name = 'a-to-b'", old)
        c.commit()
        c.close()
    check(sas(api) == before, 'and nothing was stored')


def test_delete_cascades(env, api):
    create_sa(env, api, SA_OUT)
    create_sa(env, api, SA_IN)
    p = policy_by_name(api, 'a-to-b')
    r = api.delete(f'/policies/{p["id"]}')
    applied(env, r, 200)
    if env.wire:
        check(r.json().get('deleted_sas') == 2, f'deleting a policy says how many SAs went with it ({r.text})')
    check(api.get(f'/policies/{p["id"]}').status_code == 404, 'a deleted policy is gone')
    check(sas(api) == [], 'its SAs are gone')
    check(api.delete(f'/policies/{p["id"]}').status_code == 404, 'deleting it again is 404')


def test_reorder(env, api):
    for n in ('r1', 'r2', 'r3'):
        create_policy(env, api, {'name': n, 'priority': 5, 'action': 'discard', 'dst': f'203.0.113.{len(n) + ord(n[1])}'})
    pols = policies(api)
    ids = [p['id'] for p in pols]
    names = [p['name'] for p in pols]
    check(names[-3:] == ['r1', 'r2', 'r3'], f'new policies go to the end of their priority ({names})')
    r5 = [p['id'] for p in pols if p['name'] in ('r1', 'r2', 'r3')]
    new = [i for i in ids if i not in r5] + list(reversed(r5))
    r = api.post('/policies/reorder', {'ids': new})
    applied(env, r, 200)
    names = [p['name'] for p in policies(api)]
    check(names[-3:] == ['r3', 'r2', 'r1'], f'reorder changes the order within a priority ({names})')
    if env.wire:
        check([p['name'] for p in r.json()['items']] == names, 'reorder answers the new order')
    before = policies(api)
    for what, body in (('missing one', {'ids': new[:-1]}), ('one twice', {'ids': new[:-1] + [new[0]]}),
                       ('an unknown id', {'ids': new[:-1] + [99999]}), ('not integers', {'ids': ['a'] * len(new)})):
        problem(api.post('/policies/reorder', body), 422, 'BAD_FIELD', 'ids', f'reorder with {what}')
    problem(api.post('/policies/reorder', {'ids': new, 'x': 1}), 422, 'UNKNOWN_FIELD', 'x', 'reorder with a stray field')
    problem(api.post('/policies/reorder', {}), 422, 'MISSING_FIELD', 'ids', 'reorder without ids')
    check(policies(api) == before, 'a refused reorder changes nothing')
    # an explicit order on create puts it there
    p = create_policy(env, api, {'name': 'r0', 'priority': 5, 'order': 0, 'action': 'discard', 'dst': '203.0.113.99'})
    names = [x['name'] for x in policies(api)]
    check(p and names.index('r0') == names.index('r3') - 1, f'"order" on create places the policy ({names})')


def test_paging(env, api):
    total = len(policies(api))
    r = api.get('/policies?offset=1&limit=2').json()
    check(r['total'] == total and r['offset'] == 1 and r['limit'] == 2 and len(r['items']) == 2, 'policies paged')
    check(r['items'] == policies(api)[1:3], 'the page is the right slice')
    r = api.get('/policies').json()
    check(r['limit'] == 100 and r['offset'] == 0, 'default paging is offset 0, limit 100')
    check(api.get(f'/policies?offset={total}').json()['items'] == [], 'past the end is empty')
    for q in ('limit=0', 'limit=1001', 'offset=-1', 'limit=x'):
        check(api.get('/policies?' + q).status_code == 400, f'?{q} is 400')
        check(api.get('/sas?' + q).status_code == 400, f'SAs ?{q} is 400')
    for spi in range(0x5000, 0x5005):
        create_sa(env, api, dict(SA_OUT, spi=spi))
    r = api.get('/sas?offset=2&limit=2').json()
    check(r['total'] == 5 and len(r['items']) == 2 and r['items'][0]['spi'] == 0x5002, 'SAs paged')


def test_readonly(env, ro, anon):
    p = policies(ro)
    check(len(p) > 0, 'a read-only token can list policies')
    pid = p[0]['id']
    s = sas(ro)
    sid = s[0]['id'] if s else 1
    check(ro.get(f'/policies/{pid}').status_code == 200, 'and read one')
    check(ro.get('/sas').status_code == 200, 'and list SAs')
    writes = [('POST', '/policies', dict(BYPASS, name='ro')), ('PUT', f'/policies/{pid}', dict(BYPASS, name='ro')),
              ('DELETE', f'/policies/{pid}', None), ('POST', '/policies/reorder', {'ids': [pid]}),
              ('POST', '/sas', dict(SA_OUT, spi=0x6001)), ('DELETE', f'/sas/{sid}', None), ('DELETE', '/sas', None)]
    before = (policies(ro), sas(ro))
    for method, path, body in writes:
        problem(ro.req(method, path, body), 403, 'FORBIDDEN', None, f'read-only token: {method} {path}')
    check((policies(ro), sas(ro)) == before, 'nothing changed through the read-only token')
    for method, path, body in writes + [('GET', '/policies', None), ('GET', f'/policies/{pid}', None),
                                        ('GET', '/sas', None), ('GET', f'/sas/{sid}', None)]:
        problem(anon.req(method, path, body), 401, 'UNAUTHORIZED', None, f'no credentials: {method} {path}')


def test_no_keys_anywhere(api):
    audit = api.get('/audit?limit=1000').json().get('items', [])
    actions = {a.get('action') for a in audit}
    want = {'policy.create', 'policy.update', 'policy.delete', 'policy.reorder', 'sa.create', 'sa.delete', 'sa.flush'}
    check(want <= actions, f'every kind of change is audited (missing {sorted(want - actions)})')
    api.get('/config')
    leaks = [k for k, v in KEYS.items() for t in responses if v.lower() in t.lower() or v[:16].lower() in t.lower()]
    check(not leaks, f'no key appears in any response, audit or export (leaked: {sorted(set(leaks))})')


def main():
    env = Env()
    try:
        if WIRE and os.geteuid() == 0 and shutil.which('ip'):
            env.start_wire()
        else:
            print('# no bitw-wire (needs root and BITW_WIRE): writes are expected to answer 503 NOT_APPLIED')
        env.start_bitwd()
        admin = Api(env.base, env.token('admin', ADMIN_PW))
        r = admin.post('/users', {'name': 'viewer', 'password': RO_PW, 'role': 'readonly'})
        check(r.status_code == 201, f'read-only user created ({r.status_code} {r.text[:200]})')
        ro = Api(env.base, env.token('viewer', RO_PW))
        anon = Api(env.base)
        test_ports(env, admin)
        test_policy_crud(env, admin)
        test_bad_policies(env, admin)
        test_selector_forms(env, admin)
        test_sas(env, admin)
        test_algorithms(env, admin)
        test_policy_options(env, admin)
        test_ah_and_clone(env, admin)
        test_sa_endpoints(env, admin)
        test_sa_server_fault(env, admin)
        test_delete_cascades(env, admin)
        create_policy(env, admin, PROTECT)
        test_reorder(env, admin)
        test_paging(env, admin)
        test_readonly(env, ro, anon)
        test_no_keys_anywhere(admin)
        if env.wire:
            check(env.wire.poll() is None, 'bitw-wire is still running')
    except Exception as e:  # a crash of the harness is a failure, with the logs to see why
        check(False, f'test harness: {type(e).__name__}: {e}')
        for name in ('bitwd.log', 'wire.log'):
            path = os.path.join(env.dir, name)
            if os.path.exists(path):
                print(f'# --- {name}\n' + ''.join('# ' + ln for ln in open(path).readlines()[-40:]))
    finally:
        bitwd = env.procs[-1] if env.procs and env.procs[-1] is not env.wire else None
        env_dir_log = getattr(env, 'bitwd_log', None)
        log = open(env_dir_log).read() if env_dir_log and os.path.exists(env_dir_log) else ''
        env.close()
        if bitwd is not None:
            check(bitwd.returncode == 0, f'bitwd exits 0 on SIGTERM (got {bitwd.returncode})')
            check('ERROR: AddressSanitizer' not in log and 'runtime error' not in log, 'no sanitizer reports')
            if bitwd.returncode != 0 or 'Sanitizer' in log or 'runtime error' in log:
                print(''.join('# ' + ln for ln in log.splitlines(True)[-60:]))
    print(f'1..{ntests}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
