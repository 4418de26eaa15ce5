"""explore_scenario - a scenario's text as mtasim explore rewrites it.

Contract: Scenario.load(path) reads a .scn file (includes inlined, in
place, as the parser reads them: docs/scenario-language.md "include") into
a list of lines, and knows what the explorer needs of them: the remote
blocks (address -> the index of their 'remote' line), the DNS lines per
name, the 'expect' lines. Scenario.render(faults, out_dir) writes the text
back with

  * every expectation dropped except 'expect always ...' (ordinary
    expectations do not hold under faults; docs/explore.md),
  * 'seed N' set to the exploration seed,
  * each fault's lines put where the language wants them (remote lines
    right after their 'remote' line, so the first-match rule lets them
    win; DNS and config lines at the end),
  * relative paths ('plugin', 'body-file', 'send-data-file') rewritten
    relative to out_dir, so the file runs from where it is written,
  * what the shrinker cut (a Cut): whole 'inject' lines, recipients of
    an inject line (at least one stays), and a 'run for' shorter than the
    scenario's (replacing its line, or added when it has none).

Nothing here is random: the same scenario and faults give the same bytes.
This reader is not the parser: it only looks at the first words of lines.
A scenario the parser rejects is rejected when the explorer runs it
(mtasim run, exit 2), never silently changed.
"""

import os
import re

MAX_INCLUDE_DEPTH = 8


def split_comment(line):
    """The line without its comment (a '#' outside double quotes)."""
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if quoted and c == '\\':
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == '#' and not quoted:
            return line[:i]
        i += 1
    return line


def words(line):
    """The blank-separated words of a line without its comment (quotes kept)."""
    return split_comment(line).split()


class ScenarioError(Exception):
    pass


class Cut:
    """What the shrinker took out of the scenario itself: the indexes (into
    Scenario.injects) of dropped inject lines, the (inject, recipient)
    index pairs of dropped recipients, the (inject, LAST) pairs of ranges
    made shorter, and the run's length in microseconds (None: the
    scenario's own)."""

    __slots__ = ('injects', 'rcpts', 'lasts', 'run_for_us')

    def __init__(self, injects=frozenset(), rcpts=frozenset(), lasts=frozenset(),
                 run_for_us=None):
        self.injects = frozenset(injects)
        self.rcpts = frozenset(rcpts)
        self.lasts = frozenset(lasts)
        self.run_for_us = run_for_us

    def replace(self, **changes):
        d = {k: getattr(self, k) for k in self.__slots__}
        d.update(changes)
        return Cut(**d)


# 'inject ID from <ADDR> to <ADDR>[,<ADDR>...] ...' (docs/scenario-language.md
# "inject"): recipients separated by commas, blanks or both.
_INJECT_TO = re.compile(r'^(\s*inject\s+\S+\s+from\s+<[^<>]*>\s+to\s+)'
                        r'((?:<[^<>]*>\s*,?\s*)+)(.*)$', re.I | re.S)
_RANGE = re.compile(r'^(\d+)\.\.(\d+)$')
_DURATION = re.compile(r'^(\d+(?:\.\d{1,6})?)(us|ms|s|m|h|d)?$')
_UNIT_US = {'us': 1, 'ms': 1000, 's': 10 ** 6, 'm': 60 * 10 ** 6, 'h': 3600 * 10 ** 6,
            'd': 86400 * 10 ** 6, None: 10 ** 6}


def duration_us(text):
    """A scenario duration in microseconds (docs/scenario-language.md
    "Values"), or None when it is not one."""
    m = _DURATION.match(text.lower())
    if not m:
        return None
    whole, _, frac = m.group(1).partition('.')
    unit = _UNIT_US[m.group(2)]
    return int(whole) * unit + int(frac.ljust(6, '0')) * unit // 10 ** 6 if frac else int(whole) * unit


def format_us(us):
    """Microseconds as the shortest exact scenario duration."""
    for unit in ('d', 'h', 'm', 's', 'ms'):
        if us % _UNIT_US[unit] == 0:
            return '%d%s' % (us // _UNIT_US[unit], unit)
    return '%dus' % us


def recipients(text):
    """The recipients of an inject line, in order ([] if it has none we can read)."""
    m = _INJECT_TO.match(split_comment(text))
    return re.findall(r'<[^<>]*>', m.group(2)) if m else []


class Line:
    """One line of the flattened scenario: its text, the folder whose
    relative paths it uses (the file that held it) and the includes it came
    through (outermost first, as indexes into the include list)."""

    __slots__ = ('text', 'folder', 'chain')

    def __init__(self, text, folder, chain):
        self.text = text
        self.folder = folder
        self.chain = chain


def _read_lines(path, depth, seen, chain=(), includes=None):
    if depth > MAX_INCLUDE_DEPTH:
        raise ScenarioError('%s: includes nest deeper than %d' % (path, MAX_INCLUDE_DEPTH))
    real = os.path.realpath(path)
    if real in seen:
        raise ScenarioError('%s: include cycle' % path)
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise ScenarioError('%s:1:1: cannot open scenario: %s' % (path, e.strerror))
    if data.startswith(b'\xef\xbb\xbf'):
        data = data[3:]
    text = data.decode('utf-8', errors='surrogateescape')
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    for raw in text.splitlines():
        w = words(raw)
        if not raw[:1].isspace() and len(w) == 2 and w[0].lower() == 'include':
            inc = os.path.join(folder, w[1].strip('"'))
            includes.append(inc)
            out.extend(_read_lines(inc, depth + 1, seen | {real}, chain + (len(includes) - 1,),
                                   includes))
            continue
        out.append(Line(raw, folder, chain))
    return out


def _is_top(line):
    return line.text[:1] not in (' ', '\t')


def _blank(line):
    return words(line.text) == []


class Scenario:
    def __init__(self, path, lines, includes):
        self.path = path
        self.lines = lines
        self.includes = includes    # the path of each include, in reading order
        self.remotes = {}       # address -> index of its 'remote' line
        self.remote_names = {}  # address -> its name, if any
        self.dns = {}           # lower-case name -> [index of each 'dns NAME ...' line]
        self.injects = []       # indexes of 'inject' lines
        self.expects = []       # (first, last) index ranges of dropped expectations
        self.run_for = None     # (index of the 'run for' line, its duration in us)
        self._index()

    @classmethod
    def load(cls, path):
        includes = []
        return cls(path, _read_lines(path, 0, frozenset(), (), includes), includes)

    def _index(self):
        n = len(self.lines)
        i = 0
        while i < n:
            ln = self.lines[i]
            w = words(ln.text)
            if not w or not _is_top(ln):
                i += 1
                continue
            key = w[0].lower()
            if key == 'remote' and len(w) >= 2:
                self.remotes[w[1]] = i
                if len(w) >= 4 and w[2].lower() == 'name':
                    self.remote_names[w[1]] = w[3]
            elif key == 'dns' and len(w) >= 3 and w[1].lower() not in ('latency', 'timeout', 'jitter'):
                self.dns.setdefault(w[1].lower(), []).append(i)
            elif key == 'inject':
                self.injects.append(i)
            elif key == 'run' and len(w) == 3 and w[1].lower() == 'for' \
                    and duration_us(w[2]) is not None:
                self.run_for = (i, duration_us(w[2]))
            elif key == 'expect' and not (len(w) >= 2 and w[1].lower() == 'always'):
                j = i + 1
                while j < n and (not _is_top(self.lines[j]) or _blank(self.lines[j])):
                    j += 1
                # trailing blank lines stay
                while j > i + 1 and _blank(self.lines[j - 1]):
                    j -= 1
                self.expects.append((i, j - 1))
                i = j
                continue
            i += 1

    def always_count(self):
        return sum(1 for ln in self.lines
                   if _is_top(ln) and [x.lower() for x in words(ln.text)[:2]] == ['expect', 'always'])

    def dns_names_for_faults(self):
        """Names whose DNS lines are plain records (no window, no failure,
        no CNAME, no latency), by type: a failure line with 'when query <= K'
        and the records with 'when query > K' never contradict
        (docs/scenario-language.md "Contradictions")."""
        out = {}
        for name, idxs in sorted(self.dns.items()):
            types = set()
            ok = True
            for i in idxs:
                w = [x.lower() for x in words(self.lines[i].text)]
                if len(w) < 3 or w[2] not in ('mx', 'a', 'aaaa') or len(w) < 4 \
                        or w[3] in ('nxdomain', 'servfail', 'timeout', 'nodata') \
                        or any(c in w for c in ('from', 'until', 'when')):
                    ok = False
                    break
                types.add(w[2])
            if ok and types:
                out[name] = sorted(types)
        relevant = self._relevant_names()
        return {n: t for n, t in out.items() if n in relevant}

    def _relevant_names(self):
        """The recipients' domains and their MX hosts: the names a fault can reach."""
        names = set()
        for i in self.injects:
            text = split_comment(self.lines[i].text)
            to = text.lower().partition(' to ')[2]
            names.update(re.findall(r'<[^<>@]*@([^<>]+)>', to))
        for name in sorted(names):
            for i in self.dns.get(name, ()):
                w = words(self.lines[i].text)
                if len(w) >= 5 and w[2].lower() == 'mx':
                    names.add(w[4].lower().rstrip('.'))
        return names

    # --- rendering -----------------------------------------------------

    def run_for_us(self):
        """The scenario's own 'run for', in microseconds, or None."""
        return self.run_for[1] if self.run_for else None

    def render(self, seed, faults, out_dir, header=(), cut=None):
        """The scenario's text with faults applied (see the module's contract)."""
        cut = cut or Cut()
        drop = set()
        for a, b in self.expects:
            drop.update(range(a, b + 1))
        drop.update(self.injects[k] for k in cut.injects)
        replaced = {}       # line index -> its new text
        lasts = dict(cut.lasts)
        for k, i in enumerate(self.injects):
            gone = {j for kk, j in cut.rcpts if kk == k}
            if (gone or k in lasts) and i not in drop:
                replaced[i] = self._cut_inject(i, gone, lasts.get(k))
        run_for = None
        if cut.run_for_us is not None:
            run_for = 'run for %s' % format_us(cut.run_for_us)
            if self.run_for:
                replaced[self.run_for[0]] = run_for
                run_for = None
        after = {}          # line index -> lines to insert after it
        tail = []
        dns_when = {}       # line index -> [clause]: one copy of the line per clause
        for f in faults:
            for place, text in f.lines(self):
                if place == 'tail':
                    tail.append(text)
                elif place[0] == 'after':
                    after.setdefault(place[1], []).append(text)
                elif place[0] == 'clause':
                    dns_when.setdefault(place[1], []).append(text)
        # An include none of whose lines changes stays an include (its
        # path made relative to out_dir); the others are written inline.
        touched = set(drop) | set(after) | set(dns_when) | set(replaced)
        touched.update(i for i, ln in enumerate(self.lines)
                       if ln.chain and words(ln.text)[:1] in (['seed'], ['SEED'], ['Seed']))
        inlined = {c for i in touched for c in self.lines[i].chain}
        out = list(header)
        seed_done = False
        emitted = set()
        for i, ln in enumerate(self.lines):
            kept = [c for c in ln.chain if c not in inlined]
            if kept:
                if kept[0] not in emitted:
                    emitted.add(kept[0])
                    rel = os.path.relpath(self.includes[kept[0]], out_dir)
                    out.append('include %s' % (rel if _SAFE.match(rel) else '"%s"' % rel))
                continue
            if i in drop:
                continue
            if i in replaced:
                ln = Line(replaced[i], ln.folder, ln.chain)
            w = words(ln.text)
            if w and _is_top(ln) and w[0].lower() == 'seed':
                out.append('seed %d' % seed)
                seed_done = True
                continue
            text = self._rewrite_paths(ln, w, out_dir)
            if i in dns_when:
                out.extend(split_comment(text).rstrip() + ' ' + c for c in dns_when[i])
            else:
                out.append(text)
            out.extend(after.get(i, ()))
        if not seed_done:
            out.append('seed %d' % seed)
        if run_for:
            out.append(run_for)
        out.extend(tail)
        return '\n'.join(out) + '\n'

    def id_range(self, k):
        """(FIRST, LAST) of inject line k when it is a range, else None."""
        w = words(self.lines[self.injects[k]].text)
        m = _RANGE.match(w[1]) if len(w) > 1 else None
        return (int(m.group(1)), int(m.group(2))) if m else None

    def _cut_inject(self, i, gone, last):
        """Inject line i without the recipients numbered in gone (one stays)
        and, for a range, ending at message id last."""
        text = self.lines[i].text
        code = split_comment(text)
        m = _INJECT_TO.match(code)
        rcpts = re.findall(r'<[^<>]*>', m.group(2))
        kept = [r for j, r in enumerate(rcpts) if j not in gone]
        assert kept, 'an inject line keeps a recipient'
        rest = m.group(3).rstrip()
        head = m.group(1)
        if last is not None:
            head = re.sub(r'^(\s*inject\s+\d+\.\.)\d+', lambda h: h.group(1) + str(last), head,
                          flags=re.I)
        return head + ', '.join(kept) + (' ' + rest if rest else '')

    def _rewrite_paths(self, ln, w, out_dir):
        """A path relative to the file that held the line, made relative to out_dir."""
        if not w:
            return ln.text
        key = w[0].lower()
        targets = []
        if key == 'plugin' and _is_top(ln) and len(w) >= 2:
            targets.append(w[1])
        for k, word in enumerate(w[:-1]):
            if word.lower() in ('body-file', 'send-data-file'):
                targets.append(w[k + 1])
        text = ln.text
        for tok in targets:
            quoted = tok.startswith('"')
            inner = tok.strip('"')
            path, sep, args = inner.partition(':') if key == 'plugin' else (inner, '', '')
            if os.path.isabs(path):
                continue
            if key == 'plugin' and '/' not in path:
                # A bare name: next to the file first, then the search path
                # (docs/scenario-language.md "plugin"); only the first moves.
                if not os.path.exists(os.path.join(ln.folder, path)):
                    continue
            new = os.path.relpath(os.path.join(ln.folder, path), out_dir)
            if '/' not in new:
                new = './' + new
            new_tok = new + sep + args
            if quoted:
                new_tok = '"' + new_tok + '"'
            text = text.replace(tok, new_tok, 1)
        return text


_SAFE = re.compile(r'^[A-Za-z0-9@%+=:,./_-]+$')


def shell_quote(s):
    """s quoted for a POSIX shell, as the replay lines of mtasim run do."""
    if s and _SAFE.match(s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"
