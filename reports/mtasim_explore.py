"""mtasim explore - swarm testing of plugins and the core under random faults.

usage: mtasim explore SCENARIO... --seeds A..B [--plugin PATH[:ARGS]]... [--out DIR]
                      [--jobs N] [--shard I/N] [--json FILE] [--timeout S]
                      [--shrink-budget N] [--time-limit S] [-q]

Contract (docs/explore.md): for every scenario and every seed of the range
(of this shard: the seeds s with (s - A) mod N == I), the scenario is run
with the seed's fault schedule (explore_faults.draw) written into it as
plain scenario lines, its ordinary expectations dropped and only
'expect always' ones kept. A run that ends with exit code 1, 3 or 4 is a
failure; per scenario and distinct check (explore_run.check) the lowest
failing seed's schedule is shrunk (explore_shrink) and written as
DIR/NAME-seedN.scn, then run once more from there to prove it fails the
same way. Exit status: 0 nothing failed, 1 something did, 2 bad usage or
a scenario that cannot be read or run (with one line saying what).

It runs the mtasim binary named by $MTASIM_BIN (the mtasim that started
it, sim/cmd/report_cmd.c) and is deterministic: the same scenarios,
seeds, plugins and binary give the same failures and the same shrunk
files, whatever --jobs and --shard are (only --time-limit, a wall-clock
budget, can make a run stop early; it says so).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from explore_faults import draw                     # noqa: E402
from explore_run import Runner, check               # noqa: E402
from explore_scenario import Scenario, ScenarioError, shell_quote   # noqa: E402
from explore_shrink import shrink                   # noqa: E402

BATCH = 20          # generated scenarios per mtasim run process
VERSION = '0.1.0'


class Usage(Exception):
    pass


def parse_seeds(text):
    a, sep, b = text.partition('..')
    if not sep or not a.isdigit() or not b.isdigit() or int(a) > int(b) or int(b) >= 1 << 64:
        raise Usage("--seeds wants a range A..B of non-negative integers with A <= B, not '%s'" % text)
    return int(a), int(b)


def parse_shard(text):
    i, sep, n = text.partition('/')
    if not sep or not i.isdigit() or not n.isdigit() or int(n) < 1 or int(i) >= int(n):
        raise Usage("--shard wants I/N with 0 <= I < N, not '%s'" % text)
    return int(i), int(n)


def arguments(argv):
    ap = argparse.ArgumentParser(prog='mtasim explore', description='Swarm-test scenarios under '
                                 'random faults and shrink every distinct failure to a scenario '
                                 '(docs/explore.md).')
    ap.add_argument('scenarios', nargs='+', metavar='SCENARIO')
    ap.add_argument('--seeds', required=True, help='the seeds A..B to explore')
    ap.add_argument('--plugin', action='append', default=[], metavar='PATH[:ARGS]',
                    help='load a plugin into every run (as mtasim run --plugin)')
    ap.add_argument('--out', default='explore-out', metavar='DIR',
                    help='where the shrunk scenarios go (default explore-out)')
    ap.add_argument('--jobs', type=int, default=1, metavar='N', help='local mtasim processes at once')
    ap.add_argument('--shard', default='0/1', metavar='I/N',
                    help='explore only the seeds s with (s - A) mod N == I')
    ap.add_argument('--json', metavar='FILE', help='write results (docs/results.md)')
    ap.add_argument('--timeout', type=float, default=10, metavar='S',
                    help='wall-clock limit per run (as mtasim run --timeout)')
    ap.add_argument('--shrink-budget', type=int, default=300, metavar='N',
                    help='at most N candidate runs to shrink one failure (default 300)')
    ap.add_argument('--time-limit', type=float, default=0, metavar='S',
                    help='stop starting new seeds after S seconds of wall-clock time')
    ap.add_argument('-q', '--quiet', action='store_true', help='no progress line')
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        if e.code == 0:
            raise
        raise Usage(None)
    a.seed_range = parse_seeds(a.seeds)
    a.shard_i, a.shard_n = parse_shard(a.shard)
    if a.jobs < 1 or a.jobs > 64:
        raise Usage('--jobs wants 1 to 64, not %d' % a.jobs)
    if not 0 < a.timeout <= 86400:
        raise Usage('--timeout wants seconds between 0 and 86400')
    for p in a.plugin:
        path = p.partition(':')[0]
        if '/' in path and not os.path.exists(path):
            raise Usage('--plugin %s: no such file' % path)
    return a


class Progress:
    """One line on a terminal: seeds done, failures, rate (as mtasim run's, docs/cli.md)."""

    def __init__(self, total, quiet):
        env = os.environ.get('MTASIM_PROGRESS')
        on = sys.stderr.isatty() and not os.environ.get('CI') and os.environ.get('TERM') != 'dumb'
        self.on = (env == '1' or (env != '0' and on)) and not quiet
        self.total = total
        self.t0 = time.monotonic()

    def show(self, done, failed):
        if self.on:
            rate = done / max(time.monotonic() - self.t0, 1e-3)
            sys.stderr.write('\r\033[Kmtasim explore [%d/%d]  %d failed  %.0f seeds/s'
                             % (done, self.total, failed, rate))
            sys.stderr.flush()

    def clear(self):
        if self.on:
            sys.stderr.write('\r\033[K')
            sys.stderr.flush()


def plugin_args(plugins):
    return ''.join(' --plugin ' + shell_quote(p) for p in plugins)


def out_name(sc, seed, taken):
    base = os.path.basename(sc.path)
    base = base[:-4] if base.endswith('.scn') else base
    name = '%s-seed%d' % (base, seed)
    k = 2
    while name in taken:
        name = '%s-seed%d-%d' % (base, seed, k)
        k += 1
    taken.add(name)
    return name + '.scn'


def explore(a):
    binary = os.environ.get('MTASIM_BIN')
    if not binary:
        raise Usage('MTASIM_BIN is not set: run this as mtasim explore')
    scenarios = []
    status = 0
    for path in a.scenarios:
        try:
            scenarios.append(Scenario.load(path))
        except ScenarioError as e:
            print('ERROR %s' % e)
            status = 2
    first, last = a.seed_range
    seeds = range(first + a.shard_i, last + 1, a.shard_n)
    work = tempfile.mkdtemp(prefix='mtasim-explore-')
    try:
        runner = Runner(binary, a.plugin, a.timeout, work)
        # Does each scenario run at all, without faults?  One that is bad
        # input cannot be explored (exit 2, as mtasim run would).
        base = runner.run([sc.render(0, [], work) for sc in scenarios]) if scenarios else []
        ok = []
        for sc, run in zip(scenarios, base):
            if run.get('exit_code') == 2:
                print('ERROR %s' % (run.get('error') or sc.path))
                status = 2
            else:
                ok.append(sc)
        items = [(sc, s) for sc in ok for s in seeds]
        results = explore_items(a, runner, items)
        failures = report_failures(a, runner, results)
        write_json(a, results, failures)
        nfail = sum(1 for r in results if r[3] is not None)
        print('explored %d scenario%s x %d seed%s%s: %d passed, %d failed (%d distinct)'
              % (len(ok), '' if len(ok) == 1 else 's', len(seeds), '' if len(seeds) == 1 else 's',
                 '' if a.shard_n == 1 else ' (shard %d/%d)' % (a.shard_i, a.shard_n),
                 len(results) - nfail, nfail, len(failures)))
        if len(results) < len(items):
            print('time limit: %d of %d runs not started' % (len(items) - len(results), len(items)))
        if nfail:
            status = max(status, 1)
        return status
    finally:
        shutil.rmtree(work, ignore_errors=True)


def explore_items(a, runner, items):
    """[(sc, seed, run object, check or None)] in item order."""
    progress = Progress(len(items), a.quiet)
    batches = [items[k:k + BATCH] for k in range(0, len(items), BATCH)]
    t0 = time.monotonic()

    def one(batch):
        if a.time_limit and time.monotonic() - t0 > a.time_limit:
            return None
        texts = [sc.render(seed, draw(sc, seed), runner.workdir) for sc, seed in batch]
        out = []
        for (sc, seed), run in zip(batch, runner.run(texts)):
            chk = check(run)
            # A passing run's results are kept only for --json: memory stays
            # bounded by the failures over millions of seeds.
            out.append((sc, seed, run if (chk or a.json) else None, chk))
        return out

    out = []
    done = failed = 0
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        for got in pool.map(one, batches):
            if got is None:
                continue
            out.extend(got)
            done += len(got)
            failed += sum(1 for g in got if g[3] is not None)
            progress.show(done, failed)
    progress.clear()
    return out


def report_failures(a, runner, results):
    """Shrink the first failure of each (scenario, check); print every failure."""
    firsts = {}
    for sc, seed, run, chk in results:
        if chk is not None and (sc.path, chk) not in firsts:
            firsts[(sc.path, chk)] = (sc, seed, run.get('end_us'))
    if firsts:
        os.makedirs(a.out, exist_ok=True)
    taken = set()
    names = {key: out_name(sc, seed, taken) for key, (sc, seed, _) in firsts.items()}

    def do(key):
        sc, seed, end_us = firsts[key]
        faults0 = draw(sc, seed)
        faults, cut, used = shrink(sc, seed, faults0, key[1], runner, a.shrink_budget, end_us)
        path = os.path.join(a.out, names[key])
        replay = 'mtasim run%s %s' % (plugin_args(a.plugin), shell_quote(path))
        header = ['# shrunk by mtasim explore from %s, seed %d: %d of %d faults left, %d candidate runs'
                  % (sc.path, seed, len(faults), len(faults0), used),
                  '# check: %s (exit code %d)' % (key[1][1], key[1][0]),
                  '# replay: %s' % replay]
        text = sc.render(seed, faults, os.path.dirname(os.path.abspath(path)), header=header,
                         cut=cut)
        with open(path, 'w', encoding='utf-8', errors='surrogateescape') as f:
            f.write(text)
        code, run = runner.run_file(path)
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith('#')]
        return {'path': path, 'faults': len(faults), 'faults0': len(faults0), 'lines': len(lines),
                'replay': replay, 'reproduced': code == key[1][0] and check(run) == key[1]}

    keys = list(firsts)     # in the order of the results: scenario, then seed
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        shrunk = dict(zip(keys, pool.map(do, keys)))
    for sc, seed, run, chk in results:
        if chk is None:
            continue
        key = (sc.path, chk)
        s = shrunk[key]
        print('FAIL %s  seed %d  exit %d  %s' % (sc.path, seed, chk[0], chk[1]))
        print('  replay: mtasim explore %s --seeds %d..%d%s' % (shell_quote(sc.path), seed, seed,
                                                               plugin_args(a.plugin)))
        if firsts[key][1] == seed:
            print('  shrunk: %s  (%d of %d faults, %d lines)%s'
                  % (s['path'], s['faults'], s['faults0'], s['lines'],
                     '' if s['reproduced'] else '  NOT REPRODUCED'))
            print('  run:    %s' % s['replay'])
        else:
            print('  same check as seed %d: %s' % (firsts[key][1], s['path']))
    return shrunk


def write_json(a, results, shrunk):
    if not a.json:
        return
    runs = []
    passed = failed = 0
    for sc, seed, run, chk in results:
        run = dict(run)
        run['file'] = sc.path
        ex = {'seed': seed, 'check': None, 'shrunk': None,
              'faults': [t for f in draw(sc, seed) for _, t in f.lines(sc)],
              'replay': 'mtasim explore %s --seeds %d..%d%s' % (shell_quote(sc.path), seed, seed,
                                                                plugin_args(a.plugin))}
        if chk is not None:
            s = shrunk[(sc.path, chk)]
            ex.update(check=chk[1], shrunk=s['path'], replay=s['replay'], reproduced=s['reproduced'])
            failed += 1
        else:
            passed += 1
        run['explore'] = ex
        runs.append(run)
    doc = {'mtasim': VERSION, 'runs': runs, 'summary': {'passed': passed, 'failed': failed, 'errors': 0}}
    tmp = a.json + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(doc, f, sort_keys=True, indent=1)
    os.replace(tmp, a.json)


def main(argv):
    try:
        a = arguments(argv)
        return explore(a)
    except Usage as e:
        if e.args and e.args[0]:
            sys.stderr.write('mtasim explore: %s\n' % e.args[0])
        return 2
    except OSError as e:
        sys.stderr.write('mtasim explore: %s\n' % e)
        return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
