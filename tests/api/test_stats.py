#!/usr/bin/python3
"""test_stats.py: what bitwd reports: /stats, /metrics (Prometheus text), the live SAD, the event stream and backlog.

usage: test_stats.py BITWD [BITW_WIRE [OPENAPI_JSON]]

With BITW_WIRE (and root) a real bitw-wire runs in a network namespace of its own (veth pairs, nothing in the root
namespace): the test configures it over REST, sends packets into its red port, takes its red link down and up, and
then stops it to see what bitwd says when the wire is gone. Without it only the wire-down answers and the events
caused by REST changes are tested. With OPENAPI_JSON, every key of every GET answer (the live SAD of a clone
policy included) must be described by the document's schema for that answer.
"""
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

from schema_keys import response_schema, undocumented

BITWD = sys.argv[1]
WIRE = sys.argv[2] if len(sys.argv) > 2 else None
OPENAPI = sys.argv[3] if len(sys.argv) > 3 else None
ADMIN_PW = 'admin-password-for-stats'
RO_PW = 'readonly-password-for-stats'
NS = f'm5st{os.getpid()}'
GCM_OUT = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01020304'
GCM_IN = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa9988776655443322110004030201'

failures = 0
ntests = 0


def check(cond, what):
    global failures, ntests
    ntests += 1
    print(('ok' if cond else 'not ok') + f' {ntests} - ' + ' '.join(str(what).split()), flush=True)
    if not cond:
        failures += 1
    return cond


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def sh(*cmd, check_rc=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check_rc and r.returncode:
        raise RuntimeError(f'{" ".join(cmd)} -> {r.returncode}: {r.stderr}')
    return r


def wait_for(cond, timeout=10, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


class Api:
    def __init__(self, base, token=None):
        self.base = base
        self.s = requests.Session()
        self.s.trust_env = False
        if token:
            self.s.headers['Authorization'] = f'Bearer {token}'

    def get(self, path, **kw):
        return self.s.get(self.base + path, timeout=15, **kw)

    def post(self, path, body):
        return self.s.post(self.base + path, json=body, timeout=15)

    def put(self, path, body):
        return self.s.put(self.base + path, json=body, timeout=15)


class Sse:
    """An event stream read by a thread: events land in a queue as (id, type, data)."""

    def __init__(self, port, path, token, headers=None):
        self.q = queue.Queue()
        self.c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        h = {'Authorization': f'Bearer {token}', 'Accept': 'text/event-stream'}
        h.update(headers or {})
        self.c.request('GET', path, headers=h)
        self.r = self.c.getresponse()
        self.status = self.r.status
        self.ctype = self.r.getheader('Content-Type', '')
        self.comments = 0
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        ev = {}
        try:
            while True:
                line = self.r.fp.readline()
                if not line:
                    break
                line = line.decode().rstrip('\r\n')
                if line == '':
                    if 'data' in ev:
                        self.q.put((int(ev.get('id', 0)), ev.get('event', 'message'), json.loads(ev['data'])))
                    ev = {}
                elif line.startswith(':'):
                    self.comments += 1
                else:
                    k, _, v = line.partition(':')
                    v = v[1:] if v.startswith(' ') else v
                    ev[k] = ev[k] + '\n' + v if k == 'data' and k in ev else v
        except (OSError, ValueError):
            pass
        self.q.put(None)

    def next(self, timeout=10):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def until(self, pred, timeout=10):
        """The first event matching pred, skipping others; None on timeout."""
        end = time.time() + timeout
        while time.time() < end:
            e = self.next(max(0.05, end - time.time()))
            if e is None:
                return None
            if pred(e):
                return e
        return None

    def drain(self, quiet=0.5):
        out = []
        while True:
            e = self.next(quiet)
            if e is None:
                return out
            out.append(e)

    def close(self):
        try:
            self.c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.c.close()
        self.t.join(5)


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='bitw-m5-')
        self.procs = []
        self.wire = None
        self.netns = False
        self.bitwd = None

    def start_wire(self):
        sh('ip', 'netns', 'add', NS)
        self.netns = True
        for a, b in (('red0', 'red1'), ('blk0', 'blk1')):
            sh('ip', '-n', NS, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b)
            sh('ip', '-n', NS, 'link', 'set', a, 'up')
            sh('ip', '-n', NS, 'link', 'set', b, 'up')
        # a LAN host on the far end of the red port, its packets for the remote site go into bitw
        sh('ip', '-n', NS, 'addr', 'add', '198.18.1.2/24', 'dev', 'red1')
        sh('ip', '-n', NS, 'route', 'add', '198.18.2.0/24', 'dev', 'red1')
        sh('ip', '-n', NS, 'neigh', 'add', '198.18.2.5', 'lladdr', '02:00:00:00:02:05', 'dev', 'red1')
        # the WAN router on the black side: it answers bitw's ARP, so ESP has a next hop
        sh('ip', '-n', NS, 'addr', 'add', '192.0.2.1/24', 'dev', 'blk1')
        cfg = {'ports': {'red': {'interface': 'red0'},
                         'black': {'interface': 'blk0', 'addresses': ['192.0.2.10/24']}}}
        path = os.path.join(self.dir, 'wire.json')
        with open(path, 'w') as f:
            json.dump(cfg, f)
        self.sock = os.path.join(self.dir, 'wire.sock')
        self.wire_log = os.path.join(self.dir, 'wire.log')
        p = subprocess.Popen(['ip', 'netns', 'exec', NS, WIRE, '--config', path, '--ctl', self.sock],
                             stdout=open(self.wire_log, 'w'), stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.wire = p
        if not wait_for(lambda: os.path.exists(self.sock), 10):
            raise RuntimeError('bitw-wire did not start: ' + open(self.wire_log).read())

    def stop_wire(self):
        self.wire.send_signal(signal.SIGTERM)
        self.wire.wait(10)

    def start_bitwd(self):
        pwfile = os.path.join(self.dir, 'admin.pw')
        with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600), 'w') as f:
            f.write(ADMIN_PW + '\n')
        self.port = free_port()
        sock = self.sock if self.wire else os.path.join(self.dir, 'no-wire.sock')
        self.bitwd_log = os.path.join(self.dir, 'bitwd.log')
        p = subprocess.Popen([BITWD, '--db', os.path.join(self.dir, 'bitw.db'), '--http', '--listen', '127.0.0.1',
                              '--port', str(self.port), '--admin-password-file', pwfile, '--wire-socket', sock],
                             stdout=open(self.bitwd_log, 'w'), stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.bitwd = p
        self.base = f'http://127.0.0.1:{self.port}'
        for _ in range(150):
            try:
                h = requests.get(self.base + '/api/v1/health', timeout=1)
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
        s.trust_env = False
        r = s.post(self.base + '/api/v1/login', json={'user': user, 'password': password}, timeout=10)
        if r.status_code != 200:
            raise RuntimeError(f'login {user}: {r.status_code} {r.text}')
        r = s.post(self.base + '/api/v1/tokens', json={'name': f'{user}-stats'},
                   headers={'X-Bitw-CSRF': r.json().get('csrf', '')}, timeout=10)
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


# ---- Prometheus text format 0.0.4 ------------------------------------------------

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf'^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?,?\}})? (-?[0-9.eE+-]+|NaN|[+-]Inf)(?: -?[0-9]+)?$')
HELP = re.compile(rf'^# HELP ({NAME}) (.*)$')
TYPE = re.compile(rf'^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$')
LABELS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_metrics(text):
    """{(name, frozenset(labels)): value}, and the lines that break the grammar or come before their TYPE."""
    samples, bad, helps, types = {}, [], set(), {}
    for ln in text.split('\n')[:-1]:
        m = HELP.match(ln)
        if m:
            helps.add(m.group(1))
            continue
        m = TYPE.match(ln)
        if m:
            if m.group(1) in types:
                bad.append('second TYPE: ' + ln)
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(ln)
        if not m or m.group(1) not in types or m.group(1) not in helps:
            bad.append(ln)
            continue
        labels = frozenset(LABELS.findall(m.group(2) or ''))
        if (m.group(1), labels) in samples:
            bad.append('duplicate: ' + ln)
        samples[(m.group(1), labels)] = float(m.group(3))
    if not text.endswith('\n'):
        bad.append('no final newline')
    return samples, bad, types


def metric(samples, name, **labels):
    want = set(labels.items())
    vals = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    return sum(vals) if vals else None


def get_metrics(api):
    r = api.get('/metrics')
    return r, parse_metrics(r.text) if r.status_code == 200 else ({}, ['status'], {})


# ---- the tests -------------------------------------------------------------------

def problem(r, status, code, what):
    ok = r.status_code == status and r.headers.get('Content-Type', '').startswith('application/problem+json')
    ok = ok and r.json().get('code') == code
    return check(ok, f'{what}: {status} {code} (got {r.status_code} {r.text[:200]})')


def test_auth(env, ro, anon):
    problem(anon.get('/metrics'), 401, 'UNAUTHORIZED', '/metrics without a token')
    problem(anon.get('/api/v1/stats'), 401, 'UNAUTHORIZED', '/stats without a token')
    problem(anon.get('/api/v1/events/backlog'), 401, 'UNAUTHORIZED', '/events/backlog without a token')
    r = ro.get('/metrics')
    check(r.status_code == 200, f'/metrics with a read-only bearer token (a Prometheus job): 200 ({r.status_code})')
    check(r.headers.get('Content-Type', '').startswith('text/plain; version=0.0.4'),
          f'/metrics is text/plain; version=0.0.4 ({r.headers.get("Content-Type")})')
    check(ro.get('/api/v1/sad').status_code in (200, 503), '/sad is readable with a read-only token')
    s = Sse(env.port, '/api/v1/events', 'bitw_not-a-token')
    check(s.status == 401, f'/events with a bad token: 401 ({s.status})')
    s.close()


def configure(env, admin):
    """Ports, a protect policy with its SAs, and a bypass policy, through REST."""
    ok = 201 if env.wire else 503
    r = admin.put('/api/v1/ports/red', {'interface': 'red0'})
    check(r.status_code in (200, 503), f'PUT /ports/red ({r.status_code} {r.text[:200]})')
    r = admin.put('/api/v1/ports/black', {'interface': 'blk0', 'addresses': ['192.0.2.10/24'],
                                          'gateway4': '192.0.2.1'})
    check(r.status_code in (200, 503), f'PUT /ports/black ({r.status_code} {r.text[:200]})')
    for body in ({'name': 'a-to-b', 'priority': 3, 'action': 'protect', 'src': '198.18.1.0/24',
                  'dst': '198.18.2.0/24', 'peer': '198.51.100.10'},
                 {'name': 'to-router', 'priority': 1, 'action': 'bypass', 'src': '198.18.1.0/24',
                  'dst': '198.18.1.1'}):
        r = admin.post('/api/v1/policies', body)
        check(r.status_code == ok, f'policy {body["name"]} created ({r.status_code} {r.text[:200]})')
    for spi, d, key in ((0x1001, 'out', GCM_OUT), (0x2001, 'in', GCM_IN)):
        r = admin.post('/api/v1/sas', {'spi': spi, 'direction': d, 'policy': 'a-to-b', 'enc': 'aes-gcm-256',
                                      'enc_key': key})
        check(r.status_code == ok, f'SA {spi:#x} {d} created ({r.status_code} {r.text[:200]})')


def test_change_events(env, admin, stream):
    """A REST change is published on the open stream and kept in the backlog."""
    e = stream.until(lambda e: e[1] == 'config.changed' and e[2].get('action') == 'policy.create', 10)
    check(e is not None, f'the stream got config.changed for the new policy ({e})')
    check(e is not None and e[2].get('name') == 'a-to-b', f'the event names the policy, so a filter by name finds it ({e})')
    s = stream.until(lambda e: e[1] == 'config.changed' and e[2].get('action') == 'sa.create', 10)
    check(s is not None and s[2].get('policy') == 'a-to-b', f'an SA\'s event names its policy ({s})')
    rest = stream.drain()
    got = [x for x in (e, s) if x] + rest
    ids = [x[0] for x in got]
    check(ids == sorted(ids) and len(set(ids)) == len(ids) and all(i > 0 for i in ids),
          f'event ids are positive and increase ({ids})')
    b = admin.get('/api/v1/events/backlog?limit=1000').json()
    check(e is not None and any(x['id'] == e[0] and x['type'] == 'config.changed' and x['data'] == e[2]
                                for x in b['items']), 'the backlog holds the same event, id and data')
    check(b['last_id'] == max(ids, default=0), f'backlog last_id is the newest id ({b["last_id"]})')


def test_backlog(admin):
    full = admin.get('/api/v1/events/backlog?limit=1000').json()
    items = full['items']
    check(len(items) >= 4 and full['total'] == len(items), f'backlog: {len(items)} events, total {full["total"]}')
    check([x['id'] for x in items] == sorted(x['id'] for x in items), 'backlog oldest first')
    check(all(isinstance(x['time_ms'], int) and x['time_ms'] > 1.6e12 for x in items), 'each event has its time')
    page1 = admin.get('/api/v1/events/backlog?limit=2').json()
    check([x['id'] for x in page1['items']] == [x['id'] for x in items[:2]] and page1['total'] == len(items),
          'limit=2: the first two, total counts all')
    after = page1['items'][-1]['id']
    page2 = admin.get(f'/api/v1/events/backlog?limit=2&after={after}').json()
    check([x['id'] for x in page2['items']] == [x['id'] for x in items[2:4]] and page2['total'] == len(items) - 2,
          'after=<last id of page 1>: the next two')
    last = admin.get(f'/api/v1/events/backlog?after={items[-1]["id"]}').json()
    check(last['items'] == [] and last['total'] == 0, 'after the newest: nothing')
    typed = admin.get('/api/v1/events/backlog?type=config.changed').json()
    check(typed['items'] and all(x['type'] == 'config.changed' for x in typed['items']), '?type= filters')
    fam = admin.get('/api/v1/events/backlog?type=config.*,nothing.here').json()
    check(fam['total'] == typed['total'], 'a family filter and a list')
    none = admin.get('/api/v1/events/backlog?type=no.such.type').json()
    check(none['total'] == 0 and none['items'] == [], 'an unknown type: empty, not an error')
    for q in ('limit=0', 'limit=1001', 'after=-1', 'after=abc', 'limit=x'):
        r = admin.get(f'/api/v1/events/backlog?{q}')
        check(r.status_code == 400 and r.headers.get('Content-Type', '').startswith('application/problem+json'),
              f'backlog ?{q}: 400 problem ({r.status_code})')
    return items


def test_replay(env, token, items):
    """A client that reconnects gets what it missed, from Last-Event-ID or ?after=."""
    mid = items[1]['id']
    want = [x['id'] for x in items if x['id'] > mid]
    s = Sse(env.port, '/api/v1/events', token, {'Last-Event-ID': str(mid)})
    check(s.status == 200 and s.ctype.startswith('text/event-stream'), f'stream: 200 text/event-stream ({s.ctype})')
    got = [e[0] for e in s.drain(1.0)]
    s.close()
    check(got[:len(want)] == want, f'Last-Event-ID {mid}: replays exactly the later events ({got} vs {want})')
    s = Sse(env.port, f'/api/v1/events?after={items[0]["id"]}', token, {'Last-Event-ID': str(mid)})
    got = [e[0] for e in s.drain(1.0)]
    s.close()
    check(got[:len(items) - 1] == [x['id'] for x in items[1:]], '?after= wins over Last-Event-ID')
    s = Sse(env.port, '/api/v1/events?after=0&type=port.state', token)
    got = s.drain(1.0)
    s.close()
    check(all(e[1] == 'port.state' for e in got) and
          len(got) == len([x for x in items if x['type'] == 'port.state']), '?type= filters the replay too')
    s = Sse(env.port, '/api/v1/events', token, {'Last-Event-ID': 'garbage'})
    check(s.status == 200 and s.drain(0.5) == [], 'a bad Last-Event-ID: no replay, the stream still opens')
    s.close()


def send_traffic(n):
    sh('ip', 'netns', 'exec', NS, 'ping', '-c', str(n), '-i', '0.05', '-W', '1', '198.18.2.5', check_rc=False)


def test_wire_up(env, admin, ro, stream):
    st = admin.get('/api/v1/stats').json()
    check(st.get('wire') == 'up' and st.get('ports', {}).get('red', {}).get('interface') == 'red0',
          'stats: wire up, the wire\'s ports')
    check(any(p['name'] == 'a-to-b' for p in st.get('policies', [])) and isinstance(st.get('drops'), dict),
          'stats: policies and drops from the wire')
    bd = st.get('bitwd', {})
    check(bd.get('events_published', 0) >= 1 and bd.get('event_streams', 0) >= 1 and bd.get('dirty') is False,
          f'stats: bitwd\'s own counters ({bd})')
    check(bd.get('wire_events_dropped') == 0, f'stats: no event from the wire was lost ({bd})')

    r, (before, bad, _) = get_metrics(ro)
    rx0 = metric(before, 'bitw_port_rx_packets_total', port='red') or 0
    send_traffic(5)
    r, (m, bad, types) = get_metrics(ro)
    check(not bad, f'every line of /metrics is HELP, TYPE or a sample of a declared family ({bad[:5]})')
    check(metric(m, 'bitw_wire_up') == 1, 'bitw_wire_up 1')
    check(types.get('bitw_port_rx_packets_total') == 'counter' and types.get('bitw_wire_up') == 'gauge',
          'counters are counters, bitw_wire_up a gauge')
    rx = metric(m, 'bitw_port_rx_packets_total', port='red', interface='red0')
    print('# drops: ' + json.dumps({dict(ls)['reason']: v for (n, ls), v in m.items() if n == 'bitw_drops_total' and v}))
    check(rx is not None and rx >= rx0 + 5, f'packets sent into the red port are counted ({rx0} -> {rx})')
    check(metric(m, 'bitw_port_rx_bytes_total', port='red') >= 5 * 84, 'and their bytes')
    out = metric(m, 'bitw_policy_packets_total', policy='a-to-b', direction='out')
    check(out is not None and out >= 5, f'policy a-to-b counts them outbound ({out})')
    check(metric(m, 'bitw_policy_packets_total', policy='to-router', direction='in') == 0,
          'an idle policy is there with 0')
    sa = metric(m, 'bitw_sa_packets_total', spi=str(0x1001), direction='out', policy='a-to-b')
    check(sa is not None and sa >= 5, f'the outbound SA encrypted them ({sa})')
    check(metric(m, 'bitw_sa_bytes_total', spi=str(0x2001), direction='in') == 0, 'the idle inbound SA: 0 bytes')
    reasons = {dict(ls)['reason'] for (n, ls) in m if n == 'bitw_drops_total'}
    check({'XE_NO_POLICY', 'XE_BAD_ESP_SPI', 'XE_ESP_DIGEST_MISMATCH'} <= reasons and
          all(re.fullmatch(r'XE_[A-Z_]+', x) for x in reasons), f'drops by XE_* reason ({len(reasons)} reasons)')
    check(metric(m, 'bitw_port_up', port='red') == 1, 'bitw_port_up 1 for the red port')

    sad = admin.get('/api/v1/sad').json()
    spis = sorted((x['spi'], x['direction']) for x in sad['items'])
    check(spis == [(0x1001, 'out'), (0x2001, 'in')] and sad['total'] == 2, f'live SAD: both SAs ({spis})')
    o = next((x for x in sad['items'] if x['direction'] == 'out'), {})
    check(o.get('packets', 0) >= 5 and o.get('state') == 'mature' and o.get('enc') == 'aes-gcm-256',
          f'live SAD: counters, state and algorithm ({o})')
    check(GCM_OUT[:16] not in json.dumps(sad) and GCM_IN[:16] not in json.dumps(sad) and
          not any(k in x for x in sad['items'] for k in ('enc_key', 'integ_key')), 'live SAD: no keys')
    d = admin.get('/api/v1/sad?direction=in').json()
    check([x['spi'] for x in d['items']] == [0x2001] and d['total'] == 1, 'SAD ?direction=in')
    check(admin.get('/api/v1/sad?policy=nope').json()['total'] == 0, 'SAD ?policy= of another policy: none')
    p1 = admin.get('/api/v1/sad?limit=1').json()
    p2 = admin.get('/api/v1/sad?limit=1&offset=1').json()
    check(len(p1['items']) == 1 and len(p2['items']) == 1 and p1['total'] == 2 and p1['items'] != p2['items'] and
          p1['limit'] == 1 and p2['offset'] == 1, 'SAD paging')
    problem(admin.get('/api/v1/sad?direction=sideways'), 400, 'BAD_FIELD', 'SAD ?direction=sideways')
    check(admin.get('/api/v1/sad?limit=5000').status_code == 400, 'SAD ?limit over 1000: 400')

    # the far end of the red link goes down and up: the wire says so, bitwd publishes it
    sh('ip', '-n', NS, 'link', 'set', 'red1', 'down')
    e = stream.until(lambda e: e[1] == 'port.state', 10)
    check(e is not None and e[2].get('port') == 'red' and e[2].get('up') is False,
          f'red link down: a port.state event, up false ({e})')
    r, (m, bad, _) = get_metrics(ro)
    check(metric(m, 'bitw_port_up', port='red') == 0, 'bitw_port_up 0 while it is down')
    sh('ip', '-n', NS, 'link', 'set', 'red1', 'up')
    e = stream.until(lambda e: e[1] == 'port.state', 10)
    check(e is not None and e[2].get('port') == 'red' and e[2].get('up') is True,
          f'red link up again: port.state up true ({e})')


def test_schemas(admin, doc):
    """What a client reads is what the OpenAPI document promises: no key of a GET answer goes undescribed."""
    r = admin.post('/api/v1/policies', {'name': 'clones', 'priority': 4, 'action': 'protect', 'src': '198.18.5.0/24',
                                        'dst': '198.18.6.0/24', 'peer': '198.51.100.10', 'clone': 'src'})
    check(r.status_code == 201, f'a clone src policy ({r.status_code} {r.text[:200]})')
    r = admin.post('/api/v1/sas', {'spi': 0x3001, 'direction': 'out', 'policy': 'clones', 'clone_host': '198.18.5.7',
                                   'enc': 'aes-gcm-256', 'enc_key': GCM_OUT})
    check(r.status_code == 201, f'its SA for host 198.18.5.7 ({r.status_code} {r.text[:200]})')
    r = admin.post('/api/v1/peers', {'name': 'site-b', 'address': '198.51.100.10', 'auth': 'psk',
                                    'psk': 'a-pre-shared-key-for-stats'})
    check(r.status_code in (201, 404), f'an IKE peer, when bitwd has IKE ({r.status_code} {r.text[:200]})')
    live = admin.get('/api/v1/sad?policy=clones').json().get('items', [])
    check(any(x.get('clone_host') == '198.18.5.7' for x in live), f'the live SAD shows the SA\'s clone_host ({live})')
    fill = {}
    for path in sorted(doc.get('paths', {})):
        schema = response_schema(doc, path)
        if schema is None or not path.startswith('/api/v1/') or path.endswith('openapi.json'):
            continue
        url = path.replace('{role}', 'red')
        if '{id}' in url:
            parent = fill.get(path.rsplit('/', 1)[0])
            if not parent:
                continue
            url = url.replace('{id}', str(parent[0]['id']))
        if '{' in url:
            continue
        r = admin.get(url)
        if r.status_code == 404 and path.startswith(('/api/v1/peers', '/api/v1/certificates', '/api/v1/ike-sas')):
            continue  # bitwd without IKE
        check(r.status_code == 200, f'GET {url}: 200 ({r.status_code} {r.text[:200]})')
        body = r.json() if r.status_code == 200 else {}
        if isinstance(body, dict) and isinstance(body.get('items'), list):
            fill[path] = [x for x in body['items'] if isinstance(x, dict) and 'id' in x]
        extra = undocumented(doc, schema, body)
        check(not extra, f'GET {url}: every key is in the OpenAPI schema' + (f'; not: {", ".join(extra)}' if extra else ''))


def test_wire_down(env, admin, ro):
    if env.wire:
        env.stop_wire()
        wait_for(lambda: admin.get('/api/v1/health').json().get('wire') == 'down', 10)
    r = admin.get('/api/v1/stats')
    st = r.json()
    check(r.status_code == 200 and st.get('wire') == 'down', f'wire down: /stats is 200 with wire "down" ({r.status_code})')
    check(not any(k in st for k in ('ports', 'policies', 'sas', 'drops')), 'wire down: no wire sections')
    check(st.get('bitwd', {}).get('requests', 0) >= 10 and st['bitwd'].get('events_published', 0) >= 1,
          f'wire down: bitwd\'s own counters still there ({st.get("bitwd")})')
    r, (m, bad, _) = get_metrics(ro)
    check(r.status_code == 200 and not bad, f'wire down: /metrics still parses ({bad[:3]})')
    check(metric(m, 'bitw_wire_up') == 0, 'wire down: bitw_wire_up 0')
    check(metric(m, 'bitw_port_rx_packets_total') is None, 'wire down: no port samples')
    check(metric(m, 'bitwd_events_published_total', ) >= 1, 'wire down: bitwd_events_published_total')
    check(metric(m, 'bitwd_wire_events_dropped_total') == 0, 'wire down: bitwd_wire_events_dropped_total')
    problem(admin.get('/api/v1/sad'), 503, 'WIRE_DOWN', 'wire down: /sad')


def main():
    env = Env()
    streams = []
    try:
        if WIRE and os.geteuid() == 0 and shutil.which('ip'):
            env.start_wire()
        else:
            print('# no bitw-wire (needs root and BITW_WIRE): only the wire-down answers and REST events')
        env.start_bitwd()
        admin_tok = env.token('admin', ADMIN_PW)
        admin = Api(env.base, admin_tok)
        r = admin.post('/api/v1/users', {'name': 'prometheus', 'password': RO_PW, 'role': 'readonly'})
        check(r.status_code == 201, f'read-only user created ({r.status_code})')
        ro_tok = env.token('prometheus', RO_PW)
        ro = Api(env.base, ro_tok)
        test_auth(env, ro, Api(env.base))

        stream = Sse(env.port, '/api/v1/events', ro_tok)
        streams.append(stream)
        check(stream.status == 200 and stream.ctype.startswith('text/event-stream'),
              f'a read-only token opens the event stream ({stream.status} {stream.ctype})')
        configure(env, admin)
        test_change_events(env, admin, stream)
        if env.wire:
            test_wire_up(env, admin, ro, stream)
            if OPENAPI:
                with open(OPENAPI) as f:
                    test_schemas(admin, json.load(f))
        items = test_backlog(admin)
        test_replay(env, ro_tok, items)
        test_wire_down(env, admin, ro)
    except Exception as e:  # a crash of the harness is a failure, with the logs to see why
        check(False, f'test harness: {type(e).__name__}: {e}')
        for name in ('bitwd.log', 'wire.log'):
            path = os.path.join(env.dir, name)
            if os.path.exists(path):
                print(f'# --- {name}\n' + ''.join('# ' + ln for ln in open(path).readlines()[-40:]))
    finally:
        for s in streams:
            s.close()
        bitwd = env.bitwd
        log_path = getattr(env, 'bitwd_log', None)
        env.close()
        log = open(log_path).read() if log_path and os.path.exists(log_path) else ''
        if bitwd is not None:
            check(bitwd.returncode == 0, f'bitwd exits 0 on SIGTERM (got {bitwd.returncode})')
            check('Sanitizer' not in log and 'runtime error' not in log, 'no sanitizer reports from bitwd')
            if bitwd.returncode != 0 or 'Sanitizer' in log or 'runtime error' in log:
                print(''.join('# ' + ln for ln in log.splitlines(True)[-60:]))
    print(f'1..{ntests}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
