"""explore_shrink - reduce a failing fault schedule while the failure recurs.

Contract: shrink(sc, seed, faults, want, runner, budget) returns
(faults, dropped_injects, runs_used): a schedule no larger than the one
given, for which the rendered scenario still fails with the same check
(want = (exit code, signature), explore_run.check). Greedy delta
debugging (Zeller and Hildebrandt's ddmin, with single-element steps:
schedules hold at most a handful of faults), repeated until nothing
changes or the budget of candidate runs is spent:

  1. drop one fault; or drop one and, when that empties its session,
     move the same remote's later session faults one session earlier
     (a fault in session 3 that only needed two sessions before it);
  2. make one fault simpler (Fault.simpler: earlier session, shorter
     delay, fewer bytes, fewer failing DNS queries);
  3. drop one message (an 'inject' line), while one is left.

Each step tries all its candidates in one mtasim run process, in a fixed
order, and keeps the first that still fails the same way: the result only
depends on the inputs, never on timing.
"""

from explore_run import check


def shrink(sc, seed, faults, want, runner, budget):
    faults = list(faults)
    dropped = frozenset()
    used = 0

    def first_failing(cands):
        nonlocal used
        cands = cands[:max(0, budget - used)]
        if not cands:
            return None
        used += len(cands)
        texts = [sc.render(seed, f, runner.workdir, drop_injects=d) for f, d in cands]
        for cand, run in zip(cands, runner.run(texts)):
            if check(run) == want:
                return cand
        return None

    changed = True
    while changed and used < budget:
        changed = False
        while faults:
            cands = [(faults[:i] + faults[i + 1:], dropped) for i in range(len(faults))]
            cands += [(c, dropped) for c in (_drop_and_close_up(faults, i) for i in range(len(faults)))
                      if c is not None]
            got = first_failing(cands)
            if got is None:
                break
            faults = got[0]
            changed = True
        while True:
            cands = [(faults[:i] + [v] + faults[i + 1:], dropped)
                     for i, f in enumerate(faults) for v in f.simpler()]
            got = first_failing(cands)
            if got is None:
                break
            faults = got[0]
            changed = True
        left = [k for k in range(len(sc.injects)) if k not in dropped]
        while len(left) > 1:
            got = first_failing([(faults, dropped | {k}) for k in left])
            if got is None:
                break
            dropped = got[1]
            left = [k for k in range(len(sc.injects)) if k not in dropped]
            changed = True
    return faults, dropped, used


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
