"""harness - every case through Postfix and through mtasim's core, side by side.

    results = run_all(mtasim_bin, workdir)      # {case name: CaseResult}

1. Each case's scenario is written once (cases.scenario_text).
2. mtasim's core: one ``mtasim run --json --json-trace`` over every
   scenario (a scenario mtasim refuses, e.g. for a config key it does not
   know yet, is that case's error; the others still run).
3. Postfix: one ``mtasim serve`` per case on a loopback port (port 0, the
   port it prints), one private Postfix instance routing each case's domain
   to its port, every message injected at once, then the wait until each
   has left Postfix's queue (or WAIT_TIMEOUT).  Cases run concurrently:
   nothing is shared but the instance, and Postfix's queue manager keeps
   per-destination state (each case is its own destination).
4. Observables (observe.py) of both sides.

Also a command line that writes docs/fidelity.md's generated section:
    python3 -m tests.fidelity.harness --mtasim-bin build/sim/mtasim --write-doc
"""
import argparse
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tests.fidelity import cases as cases_mod
from tests.fidelity import observe, postfix, verdicts

SERVE_DURATION = "300"      # seconds: a serve that outlives the harness stops by itself
READY_TIMEOUT = 10
WAIT_TIMEOUT = 120          # seconds for every message to leave Postfix's queue
RUN_TIMEOUT = 300


@dataclass
class CaseResult:
    case: cases_mod.Case
    postfix: Optional[dict]         # the observable, or None
    mtasim: Optional[dict]
    postfix_error: Optional[str] = None
    mtasim_error: Optional[str] = None
    verdict: Optional[verdicts.Verdict] = None


def run_mtasim(mtasim, scenarios, workdir):
    """{case name: (observable or None, error or None)} from one mtasim run."""
    out = Path(workdir) / "mtasim.json"
    proc = subprocess.run([str(mtasim), "run", "--quiet", "--json", str(out), "--json-trace",
                           *[str(p) for p in scenarios.values()]],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    if not out.exists():
        raise RuntimeError("mtasim run wrote no results (exit %d): %s%s"
                           % (proc.returncode, proc.stdout, proc.stderr))
    by_file = {r["file"]: r for r in json.loads(out.read_text())["runs"]}
    got = {}
    for name, path in scenarios.items():
        run = by_file.get(str(path))
        if run is None:
            got[name] = (None, "mtasim run has no result for %s" % path)
        elif run.get("error"):
            got[name] = (None, run["error"])
        elif run["exit_code"] != 0:
            got[name] = (None, "mtasim run exit %d: %s" % (run["exit_code"], run["violations"]))
        else:
            got[name] = (observe.mtasim_observable(run), None)
    return got


def start_serve(mtasim, scenario, trace):
    proc = subprocess.Popen([str(mtasim), "serve", str(scenario), "--listen", "127.0.0.1:0",
                             "--duration", SERVE_DURATION, "--trace", str(trace)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while time.monotonic() < deadline and sel.select(deadline - time.monotonic()):
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                return proc, int(m.group(1))
    finally:
        sel.close()
    proc.kill()
    _, err = proc.communicate(timeout=postfix.STEP_TIMEOUT)
    raise RuntimeError("mtasim serve %s did not start: %s" % (scenario, err))


def stop_serve(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=postfix.STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=postfix.STEP_TIMEOUT)


def run_postfix(mtasim, scenarios, workdir, case_list):
    """{case name: (observable or None, error or None)}: Postfix against mtasim serve."""
    workdir = Path(workdir)
    os.chmod(workdir, 0o755)        # Postfix's daemons (user postfix) go through it
    serves, routes = {}, {}
    pf = postfix.Postfix(workdir / "postfix", routes)
    got = {}
    try:
        for case in case_list:
            proc, port = start_serve(mtasim, scenarios[case.name],
                                     workdir / ("%s.serve.trace" % case.name))
            serves[case.name] = proc
            routes[case.domain] = (case.transport, port)
        pf.start()
        for case in case_list:
            pf.inject(cases_mod.SENDER, case.addresses(), cases_mod.message_text(case))
        qids = pf.wait_removed([c.message_id() for c in case_list], WAIT_TIMEOUT)
        left = pf.queue()
    finally:
        pf.stop()
        for proc in serves.values():
            stop_serve(proc)
    for case in case_list:
        qid = qids.get(case.message_id())
        if qid is None:
            got[case.name] = (None, "Postfix never took the message in (no queue id logged)")
            continue
        statuses = pf.fates(qid)
        for line in left:
            entry = json.loads(line)
            if entry.get("queue_id") == qid:
                for r in entry.get("recipients", []):
                    statuses.setdefault(r["address"], []).append(("queue", "still queued"))
        trace = (workdir / ("%s.serve.trace" % case.name)).read_text()
        got[case.name] = (observe.postfix_observable(trace, statuses), None)
    return got


def run_all(mtasim, workdir, case_list=None):
    case_list = case_list or cases_mod.CASES
    workdir = Path(workdir)
    scenarios, served = {}, {}
    for case in case_list:
        path = workdir / ("%s.scn" % case.name)
        path.write_text(cases_mod.scenario_text(case))
        scenarios[case.name] = path
        # The same remote for mtasim serve, without the core's own mode
        # (serve reads the config lines too, and refuses keys it does not know).
        path = workdir / ("%s.remote.scn" % case.name)
        path.write_text(cases_mod.scenario_text(case, config_lines=[]))
        served[case.name] = path
    core = run_mtasim(mtasim, scenarios, workdir)
    real = run_postfix(mtasim, served, workdir, case_list)
    results = {}
    for case in case_list:
        res = CaseResult(case, real[case.name][0], core[case.name][0],
                         real[case.name][1], core[case.name][1])
        res.verdict = verdicts.judge(case, res.postfix, res.mtasim, res.postfix_error,
                                     res.mtasim_error)
        results[case.name] = res
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mtasim-bin", default="build/sim/mtasim")
    ap.add_argument("--write-doc", action="store_true",
                    help="rewrite the generated section of docs/fidelity.md")
    ap.add_argument("--json", help="write the observables of both sides here")
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR (kept: scenarios, serve traces, Postfix's log)")
    ap.add_argument("--case", action="append", default=[],
                    help="only this case (repeatable); --write-doc needs them all")
    args = ap.parse_args(argv)
    if args.case and args.write_doc:
        ap.error("--write-doc needs every case")
    selected = [cases_mod.CASES_BY_NAME[n] for n in args.case] or None
    why = postfix.require_root()
    if why:
        print(why, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mtasim-fidelity-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        results = run_all(Path(args.mtasim_bin).resolve(), work, selected)
        took = time.monotonic() - t0
    table = verdicts.table(results)
    print(table)
    print("%d behaviours in %.1f s" % (len(results), took))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {n: {"postfix": r.postfix, "mtasim": r.mtasim, "postfix_error": r.postfix_error,
                 "mtasim_error": r.mtasim_error} for n, r in results.items()}, indent=1))
    if args.write_doc:
        verdicts.write_doc(table)
    bad = [n for n, r in results.items() if not r.verdict.accepted]
    if bad:
        print("unexplained differences: %s" % " ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
