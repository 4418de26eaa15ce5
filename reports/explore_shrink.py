"""explore_shrink - reduce a failing fault schedule while the failure recurs.

Contract: shrink(sc, seed, faults, want, runner, budget, end_us) returns
(faults, cut, runs_used): a schedule no larger than the one given and a
Cut of the scenario (explore_scenario.Cut), for which the rendered
scenario still fails with the same check (want = (exit code, signature),
explore_run.check: the failure's kind and location). end_us is when the
failing run stopped (results.md "end_us"). Greedy delta debugging (Zeller
and Hildebrandt's ddmin, with single-element steps: schedules hold at
most a handful of faults), repeated until nothing changes or the budget
of candidate runs is spent:

  1. drop one fault; or drop one and, when that empties its session,
     move the same remote's later session faults one session earlier
     (a fault in session 3 that only needed two sessions before it);
     only when no single drop keeps the failure: drop two at once (two
     faults each of which alone keeps the other's effect alive, e.g. a
     reset and a drop of the same session);
  2. make one fault simpler (Fault.simpler: earlier session, shorter
     delay, fewer bytes, fewer failing DNS queries);
  3. drop one message (an 'inject' line), while one is left; make a
     range ('inject FIRST..LAST') two messages long, or half as long (a
     range holds at least two, docs/scenario-language.md "inject");
  4. drop one recipient of a message, while it has another;
  5. shorten the run: a 'run for' below the scenario's own (or, without
     one, below the failing run's end when it has one: a run stopped by a
     plugin's crash reports end_us 0), from a fixed ladder of round
     durations, shortest first. Only for crashes and invariants (exit 3
     and 4): a cut-off makes neither (a cut-off run keeps every invariant,
     docs/cli.md), but it falsifies expectations such as 'delivered
     within 1h' by itself, so an 'expect always' failure (exit 1) keeps
     its run.

Each step tries all its candidates in one mtasim run process, in a fixed
order, and keeps the first that still fails the same way: the result only
depends on the inputs, never on timing.
"""

import itertools

from explore_run import check
from explore_scenario import Cut, recipients

SECOND = 10 ** 6
# Run lengths tried by step 5 (seconds): round figures a person reads at a
# glance, each within a factor 2.5 of the next.
RUN_LADDER = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200,
              10800, 21600, 43200, 86400, 2 * 86400, 4 * 86400, 7 * 86400]


def shrink(sc, seed, faults, want, runner, budget, end_us=None):
    faults = list(faults)
    cut = Cut()
    used = 0
    state = {'end_us': end_us or None}

    def first_failing(cands):
        nonlocal used
        cands = cands[:max(0, budget - used)]
        if not cands:
            return None
        used += len(cands)
        texts = [sc.render(seed, f, runner.workdir, cut=c) for f, c in cands]
        for cand, run in zip(cands, runner.run(texts)):
            if check(run) == want:
                if run.get('end_us'):
                    state['end_us'] = run['end_us']
                return cand
        return None

    def step(make):
        """Apply the first failing candidate of make() until none fails."""
        nonlocal faults, cut
        progress = False
        while used < budget:
            got = first_failing(make())
            if got is None:
                break
            faults, cut = got
            progress = True
        return progress

    def drops():
        one = [(faults[:i] + faults[i + 1:], cut) for i in range(len(faults))]
        one += [(c, cut) for c in (_drop_and_close_up(faults, i) for i in range(len(faults)))
                if c is not None]
        return one

    def pair_drops():
        return [([f for k, f in enumerate(faults) if k not in (i, j)], cut)
                for i, j in itertools.combinations(range(len(faults)), 2)]

    def simpler():
        return [(faults[:i] + [v] + faults[i + 1:], cut)
                for i, f in enumerate(faults) for v in f.simpler()]

    def fewer_injects():
        left = [k for k in range(len(sc.injects)) if k not in cut.injects]
        out = []
        if len(left) > 1:
            out += [(faults, cut.replace(injects=cut.injects | {k})) for k in left]
        lasts = dict(cut.lasts)
        for k in left:
            r = sc.id_range(k)
            if r is None:
                continue
            first, last = r[0], lasts.get(k, r[1])
            for new in sorted({first + 1, first + (last - first + 1) // 2 - 1}):
                if first < new < last:
                    lasts2 = dict(lasts)
                    lasts2[k] = new
                    out.append((faults, cut.replace(lasts=frozenset(lasts2.items()))))
        return out

    def fewer_rcpts():
        out = []
        for k, i in enumerate(sc.injects):
            if k in cut.injects:
                continue
            left = [j for j in range(len(recipients(sc.lines[i].text))) if (k, j) not in cut.rcpts]
            if len(left) > 1:
                out += [(faults, cut.replace(rcpts=cut.rcpts | {(k, j)})) for j in left]
        return out

    def shorter_run():
        if want[0] == 1:
            return []
        limit = min([x for x in (cut.run_for_us, sc.run_for_us(), state['end_us'])
                     if x is not None], default=None)
        return [(faults, cut.replace(run_for_us=s * SECOND)) for s in RUN_LADDER
                if limit is None or s * SECOND < limit]

    changed = True
    while changed and used < budget:
        changed = step(drops)
        if not changed and len(faults) > 1:
            got = first_failing(pair_drops())
            if got is not None:
                faults, cut = got
                changed = True
        changed |= step(simpler)
        changed |= step(fewer_injects)
        changed |= step(fewer_rcpts)
        changed |= step(shorter_run)
    return faults, cut, used


def _drop_and_close_up(faults, i):
    """faults without faults[i], the later sessions of its remote one
    earlier, when no fault of that remote is left in its session; else None."""
    gone = faults[i]
    s = gone.p('session')
    rest = faults[:i] + faults[i + 1:]
    if not s or any(f.target == gone.target and f.p('session') == s for f in rest):
        return None
    later = [f for f in rest if f.target == gone.target and (f.p('session') or 0) > s]
    if not later:
        return None
    return [f.replace(session=f.p('session') - 1) if f in later else f for f in rest]
