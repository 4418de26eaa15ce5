"""explore_faults - the swarm fault schedule of one seed, as scenario lines.

Contract: draw(scenario, seed) returns the list of Fault objects for that
seed, and only depends on (the scenario's remotes and DNS names, seed):
the generator is SplitMix64 (below, written out so that no library version
can change a schedule). Each seed first picks which fault KINDS are on
(swarm testing: every kind with probability 1/2, at least one), then draws
1 to MAX_FAULTS faults of those kinds; DNS windows, multi-line replies and
the wire have switches of their own, drawn after everything else so that
adding them left the earlier draws of every seed as they were. Each Fault
renders to explicit scenario-language lines (Fault.lines) and offers
simpler variants of itself for the shrinker (Fault.simpler: earlier
sessions, shorter delays, fewer bytes, fewer failing queries, shorter DNS
outages, fewer reply lines).

Every line is plain docs/scenario-language.md syntax; the values stay in
the documented ranges (reply codes 100-599, durations, probabilities).
"""

from explore_scenario import format_us

MASK = (1 << 64) - 1
MAX_FAULTS = 8


class SplitMix64:
    """Steele, Lea and Flood's SplitMix64 (also the seeder of the world's
    xoshiro256**, sim/world/prng.h): state += 0x9e3779b97f4a7c15, then mix."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        """Uniform in [0, n) by rejection (no modulo bias)."""
        assert 0 < n < (1 << 32)
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next()
            if x < limit:
                return x % n

    def pick(self, seq):
        return seq[self.below(len(seq))]


# Reply codes a remote may give at any command (RFC 5321 4.2.2, 4.2.3;
# 421 "service not available, closing transmission channel" at any stage,
# 3.8), with an RFC 3463 enhanced status.
CODES = {421: '4.3.2 service shutting down', 450: '4.2.1 mailbox busy', 451: '4.3.0 local error',
         452: '4.3.1 insufficient storage', 550: '5.7.1 rejected', 552: '5.3.4 too big',
         554: '5.3.0 transaction failed'}
COMMANDS = ['ehlo', 'mail', 'rcpt', 'data', 'dot']
# The remote's default reply to each command (docs/scenario-language.md
# "Default replies"), sent late by a 'slow' fault.
DEFAULT_REPLY = {'greet': '220 explore ESMTP', 'mail': '250 2.1.0 Ok', 'rcpt': '250 2.1.5 Ok',
                 'data': '354 End data with <CR><LF>.<CR><LF>', 'dot': '250 2.0.0 Ok: queued'}
# Late replies: some within the core's reply timeouts (300 s; 600 s for the
# final dot, docs/scenario-language.md "config"), some past them.
DELAYS = [1, 30, 310, 650]
AT = [0, 1, 5, 30]              # seconds after accept
BYTES = [1, 10, 30, 60, 200]    # client bytes reaching the remote before a fault
CONFIG = {
    'max_outbound_connections': ['1', '2', '4'],
    'max_deliveries_per_connection': ['1', '2'],
    'idle_timeout': ['0', '1s', '30s'],
    'retry_interval': ['60s', '300s'],
    'connect_timeout': ['10s', '60s'],
    'timeout_rcpt': ['20s', '60s'],
    'timeout_dot': ['30s', '120s'],
    'max_recipients_per_transaction': ['1', '2'],
    'recipient_limit_leftovers': ['resend', 'defer'],
}
# EHLO replies other servers give (RFC 5321 4.1.1.1; RFC 1870 SIZE, RFC
# 2920 PIPELINING): without PIPELINING, a small SIZE limit, a bare 250.
EHLO_VARIANTS = {
    'no-pipelining': ['250-explore.test', '250 8BITMIME'],
    'small-size': ['250-explore.test', '250-PIPELINING', '250 SIZE 1000'],
    'bare': ['250 explore.test'],
}
# DNS answers that change over time (docs/scenario-language.md "Answers
# that change"): an outage from the start until END, or a flap from START
# until START + LENGTH with the records before and after (seconds). The
# commonest real incident is the first: SERVFAIL for some minutes, then
# the answer again.
DNS_END = [60, 600, 3600, 6 * 3600]
DNS_START = [1, 300]
DNS_LENGTH = [60, 600, 3600]
# Multi-line replies (RFC 5321 4.2.1: every line but the last has a '-'
# after the code; a client must read to the last line) to the commands of
# a session, a positive reply or a failure, 2 or 3 lines.
MULTILINE_CMDS = ['greet', 'mail', 'rcpt', 'data', 'dot']
MULTILINE_CODES = [None, 421, 451, 550]     # None: the default reply's code
# How replies are cut on the wire: a small MSS splits a reply (even a line)
# across segments (docs/scenario-language.md "The path": segment N);
# 'flush together' writes the replies to pipelined commands as one segment.
WIRE = [('segment', '3'), ('segment', '17'), ('segment', '100'), ('flush', 'together')]
KINDS = ['connect', 'banner', 'reply', 'action', 'conn', 'slow', 'ehlo', 'rcptlimit', 'path',
         'dns', 'config']


def _smaller(ladder, v):
    return [x for x in ladder if x < v]


class Fault:
    """One fault: kind, target and parameters (a tuple of (key, value) so
    faults compare and sort by value)."""

    def __init__(self, kind, target, **params):
        self.kind = kind
        self.target = target
        self.params = tuple(sorted(params.items()))

    def p(self, key, default=None):
        return dict(self.params).get(key, default)

    def replace(self, **changes):
        d = dict(self.params)
        d.update(changes)
        return Fault(self.kind, self.target, **d)

    def __eq__(self, other):
        return (self.kind, self.target, self.params) == (other.kind, other.target, other.params)

    def __hash__(self):
        return hash((self.kind, self.target, self.params))

    def _when(self):
        s = self.p('session')
        return ' when session %d' % s if s else ''

    def lines(self, sc):
        """[(place, text)]: place 'tail', ('after', line index) or ('clause', line index)."""
        k = self.kind
        if k == 'config':
            return [('tail', 'config %s %s' % (self.target, self.p('value')))]
        if k == 'dns':
            name, typ = self.target
            q = self.p('queries')
            if q is not None:
                fail, records = 'when query <= %d' % q, ['when query > %d' % q]
            else:
                # A window: the failure in [start, end), the records outside
                # it; 'until' is exclusive, so they never overlap.
                start, end = self.p('start'), self.p('end')
                end_s = format_us(end * 10 ** 6)
                if start:
                    start_s = format_us(start * 10 ** 6)
                    fail = 'from %s until %s' % (start_s, end_s)
                    records = ['until %s' % start_s, 'from %s' % end_s]
                else:
                    fail, records = 'until %s' % end_s, ['from %s' % end_s]
            out = [('tail', 'dns %s %s %s %s' % (name, typ.upper(), self.p('rcode'), fail))]
            for i in sc.dns.get(name, ()):
                words = sc.lines[i].text.split()
                if len(words) > 2 and words[2].lower() == typ:
                    out += [(('clause', i), r) for r in records]
            return out
        at = ('after', sc.remotes[self.target])
        if k == 'connect':
            return [(at, '  connect %s probability %s' % (self.p('mode'), self.p('prob')))]
        if k == 'banner':
            what = self.p('what')
            text = '%d %s' % (what, CODES[what]) if isinstance(what, int) else what
            return [(at, '  greet %s%s' % (text, self._when()))]
        if k == 'reply':
            code = self.p('code')
            nth = self.p('nth')
            cond = self._when() + (' and nth = %d' % nth if nth else '')
            return [(at, '  %s %d %s%s' % (self.p('cmd'), code, CODES[code], cond))]
        if k == 'action':
            return [(at, '  %s %s%s' % (self.p('cmd'), self.p('action'), self._when()))]
        if k == 'conn':
            how = self.p('how')
            if self.p('bytes') is not None:
                where = 'after %d bytes' % self.p('bytes')
            else:
                where = 'at %ds' % self.p('at')
            extra = ' for %ds' % self.p('for') if how == 'stall' and self.p('for') else ''
            return [(at, '  %s %s%s%s' % (how, where, extra, self._when()))]
        if k == 'ehlo':
            lines = EHLO_VARIANTS[self.p('variant')]
            return [(at, '  ehlo %s%s' % (ln, self._when() if ln == lines[-1] else ''))
                    for ln in lines]
        if k == 'rcptlimit':
            # A per-transaction recipient limit (RFC 5321 4.5.3.1.10).
            return [(at, '  rcpt 452 4.5.3 too many recipients%s and rcpt > %d'
                     % (self._when(), self.p('limit')))]
        if k == 'slow':
            cmd = self.p('cmd')
            return [(at, '  %s %s delay %ds%s' % (cmd, DEFAULT_REPLY[cmd], self.p('delay'), self._when()))]
        if k in ('path', 'wire'):
            return [(at, '  %s %s' % (self.p('what'), self.p('value')))]
        if k == 'multiline':
            cmd, code, n = self.p('cmd'), self.p('code'), self.p('lines')
            if code is None:
                code, _, text = DEFAULT_REPLY[cmd].partition(' ')
            else:
                text = CODES[code]
            status = text.split()[0] if text[:1].isdigit() and '.' in text.split()[0] else ''
            head = ['%s line %d of %d' % (status, k, n) if status else 'line %d of %d' % (k, n)
                    for k in range(1, n)]
            out = [(at, '  %s %s-%s' % (cmd, code, h)) for h in head]
            return out + [(at, '  %s %s %s%s' % (cmd, code, text, self._when()))]
        raise AssertionError(k)

    def simpler(self):
        """Variants that are earlier, shorter or smaller, most simple first."""
        out = []
        s = self.p('session')
        if s and s > 1:
            out.append(self.replace(session=1))
            if s > 2:
                out.append(self.replace(session=s - 1))
        if self.p('nth'):
            out.append(self.replace(nth=None))
        if self.kind == 'slow':
            out += [self.replace(delay=d) for d in _smaller(DELAYS, self.p('delay'))]
        if self.kind == 'conn':
            if self.p('bytes') is not None:
                out += [self.replace(bytes=b) for b in _smaller(BYTES, self.p('bytes'))]
            else:
                out += [self.replace(at=a) for a in _smaller(AT, self.p('at'))]
            if self.p('for'):
                out.append(self.replace(**{'for': 1}) if self.p('for') > 1 else self)
        if self.kind == 'multiline':
            if self.p('lines') > 2:
                out.append(self.replace(lines=2))
            if self.p('code') is not None:
                out.append(self.replace(code=None))
        if self.kind == 'rcptlimit' and self.p('limit') > 1:
            out.append(self.replace(limit=1))
        if self.kind == 'dns' and (self.p('queries') or 0) > 1:
            out.append(self.replace(queries=1))
        if self.kind == 'dns' and self.p('end') is not None:
            start, end = self.p('start'), self.p('end')
            if start:
                # the same length from the start, then a shorter flap
                out.append(self.replace(start=0, end=end - start))
                out += [self.replace(end=start + n) for n in DNS_LENGTH if n < end - start]
            else:
                out += [self.replace(end=e) for e in DNS_END if e < end]
        return [f for f in out if f != self]


SESSION_KINDS = ['banner', 'reply', 'action', 'conn', 'slow', 'ehlo', 'rcptlimit']


def _session_fault(rng, k, addr, session):
    if k == 'banner':
        return Fault(k, addr, session=session, what=rng.pick([421, 554, 'reset', 'close', 'drop']))
    if k == 'reply':
        return Fault(k, addr, session=session, cmd=rng.pick(COMMANDS),
                     code=rng.pick(sorted(CODES)), nth=rng.pick([None, None, 1, 2]))
    if k == 'action':
        return Fault(k, addr, session=session, cmd=rng.pick(COMMANDS),
                     action=rng.pick(['reset', 'drop', 'close']))
    if k == 'conn':
        how = rng.pick(['reset', 'drop', 'stall'])
        if rng.below(2):
            f = Fault(k, addr, session=session, how=how, bytes=rng.pick(BYTES))
        else:
            f = Fault(k, addr, session=session, how=how, at=rng.pick(AT))
        if how == 'stall':
            f = f.replace(**{'for': rng.pick([None, 5, 200])})
        return f
    if k == 'ehlo':
        return Fault(k, addr, session=session, variant=rng.pick(sorted(EHLO_VARIANTS)))
    if k == 'rcptlimit':
        return Fault(k, addr, session=session, limit=1 + rng.below(2))
    return Fault(k, addr, session=session, cmd=rng.pick(sorted(DEFAULT_REPLY)), delay=rng.pick(DELAYS))


def draw(sc, seed):
    """The fault schedule of seed for scenario sc (see the module's contract).

    Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): each kind is
    on with probability 1/2. Session faults go to consecutive sessions of
    one remote, 1 or 2 per session, so that combinations across retries
    (a reset, then a 421 on the retry) are drawn often; the other kinds
    (random connects, the path, DNS, config) get one draw each when on.
    """
    rng = SplitMix64(seed)
    remotes = sorted(sc.remotes)
    dns_names = sc.dns_names_for_faults()
    possible = [k for k in KINDS
                if (k not in SESSION_KINDS + ['connect', 'path'] or remotes)
                and (k != 'dns' or dns_names)]
    kinds = [k for k in possible if rng.below(2)]
    if not kinds:
        kinds = [rng.pick(possible)]
    faults = []

    def add(f):
        if f not in faults and len(faults) < MAX_FAULTS:
            faults.append(f)

    session_kinds = [k for k in kinds if k in SESSION_KINDS]
    if session_kinds:
        addr = rng.pick(remotes)
        for session in range(1, 2 + rng.below(3)):
            for _ in range(1 + rng.below(2)):
                add(_session_fault(rng, rng.pick(session_kinds), addr, session))
    if 'connect' in kinds:
        add(Fault('connect', rng.pick(remotes), mode=rng.pick(['refuse', 'timeout']),
                  prob=rng.pick(['0.1', '0.3', '0.5'])))
    if 'path' in kinds:
        what = rng.pick(['latency', 'jitter', 'loss', 'bandwidth'])
        value = {'latency': ['50ms', '400ms', '3s'], 'jitter': ['10ms', '200ms'],
                 'loss': ['0.01', '0.1', '0.3'], 'bandwidth': ['2KB/s', '100KB/s']}[what]
        add(Fault('path', rng.pick(remotes), what=what, value=rng.pick(value)))
    if 'dns' in kinds:
        name = rng.pick(sorted(dns_names))
        add(Fault('dns', (name, rng.pick(dns_names[name])),
                  rcode=rng.pick(['SERVFAIL', 'TIMEOUT', 'NXDOMAIN']), queries=1 + rng.below(3)))
    if 'config' in kinds:
        key = rng.pick(sorted(CONFIG))
        add(Fault('config', key, value=rng.pick(CONFIG[key])))
    # DNS that changes over time: its own swarm switch, drawn after all of
    # the above so that adding it left every earlier draw of a seed as it
    # was. Never the name and type a query-count DNS fault already holds
    # (two failures at once would contradict).
    if dns_names and rng.below(2):
        taken = {f.target for f in faults if f.kind == 'dns'}
        targets = [(n, t) for n in sorted(dns_names) for t in dns_names[n] if (n, t) not in taken]
        if targets:
            target = rng.pick(targets)
            rcode = rng.pick(['SERVFAIL', 'TIMEOUT', 'NXDOMAIN'])
            if rng.below(2):
                add(Fault('dns', target, rcode=rcode, start=0, end=rng.pick(DNS_END)))
            else:
                start = rng.pick(DNS_START)
                add(Fault('dns', target, rcode=rcode, start=start, end=start + rng.pick(DNS_LENGTH)))
    # Multi-line replies and replies cut on the wire: switches of their own,
    # drawn last for the same reason.
    if remotes and rng.below(2):
        add(Fault('multiline', rng.pick(remotes), session=1 + rng.below(3),
                  cmd=rng.pick(MULTILINE_CMDS), code=rng.pick(MULTILINE_CODES),
                  lines=2 + rng.below(2)))
    if remotes and rng.below(2):
        what, value = rng.pick(WIRE)
        add(Fault('wire', rng.pick(remotes), what=what, value=value))
    return faults
