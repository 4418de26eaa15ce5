#!/usr/bin/python3
"""fuzz_report - a mutation fuzzer for mtasim report's result-JSON reader.

usage: fuzz_report.py --mtasim BIN (--time S | --runs N) [--seed N] [--artifacts DIR]

A real result document (mtasim run --json --json-trace over scenarios
with a pass, a failure and bad input) is mutated, structurally
(report_mutator.mutate: values replaced by wrong types, huge numbers, a
lone surrogate, ...) or as bytes (report_mutator.mutate_text: cut,
flipped, spliced, 3,000 nested arrays), and every mutant is fed to the
report generator in process (reports/mtasim_report.py main(), as mtasim
report runs it) with all three outputs asked for.

The oracle (docs/results.md, docs/cli.md): exit 0, or exit 2 with exactly
one stderr line "mtasim report: FILE:..." (FILE: or FILE:LINE:COL:); never an exception or another
code.  A mutant that breaks it is saved in --artifacts as crash-N.json and
the fuzzer exits 1.  Prints one line: executions, seconds, the outcome
classes seen (exit codes and the distinct error kinds - Python has no
libFuzzer coverage), and ok or FAILED.
"""

import argparse
import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "reports"))
from tests.fuzz.report_mutator import mutate, mutate_text, paths_of  # noqa: E402
import mtasim_report  # noqa: E402

SCENARIOS = ["scenarios/delivery/greylist-retry.scn", "scenarios/connect/refused.scn",
             "scenarios/faults/reset-after-rcpt.scn", "fixtures/bad/bad-address.scn"]


def base_document(mtasim, tmp):
    out = Path(tmp) / "results.json"
    subprocess.run([mtasim, "run", "--json", str(out), "--json-trace", *SCENARIOS],
                   cwd=REPO_ROOT, capture_output=True, timeout=300, check=False)
    return out.read_bytes()


def kind_of(err):
    """An error line's kind: its words with numbers, paths and quotes taken out."""
    line = err.split(": ", 2)[-1] if err.count(": ") >= 2 else err
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+|\$\S*", "_", line)[:60]


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--mtasim", required=True)
    ap.add_argument("--time", type=float)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("MTASIM_FUZZ_SEED", "18")))
    ap.add_argument("--artifacts", default=".")
    a = ap.parse_args(argv)
    if a.time is None and a.runs is None:
        ap.error("give --time or --runs (or both: whichever comes first)")
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="mtasim-fuzz-report-") as tmp:
        text = base_document(a.mtasim, tmp)
        base = json.loads(text)
        paths = [p for p in paths_of(base) if p]
        src = Path(tmp) / "mutant.json"
        outs = ["--junit", str(Path(tmp) / "j.xml"), "--html", str(Path(tmp) / "r.html"),
                "--markdown", str(Path(tmp) / "m.md")]
        t0 = time.monotonic()
        n, classes, failures = 0, set(), 0
        while (a.runs is None or n < a.runs) and (a.time is None or time.monotonic() - t0 < a.time):
            if rng.random() < 0.5:
                src.write_text(json.dumps(mutate(base, rng, paths)), encoding="utf-8",
                               errors="surrogatepass")
            else:
                src.write_bytes(mutate_text(text, rng))
            err = io.StringIO()
            problem = None
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    code = mtasim_report.main([str(src), *outs])
            except BaseException:       # noqa: B902 - any escape is the finding
                code, problem = None, traceback.format_exc()
            lines = err.getvalue().splitlines()
            if problem is None and code == 2:
                if len(lines) != 1 or not lines[0].startswith(f"mtasim report: {src}:"):
                    problem = f"exit 2 with stderr {lines!r}"
                else:
                    classes.add(("exit 2", kind_of(lines[0])))
            elif problem is None and code == 0:
                classes.add(("exit 0", ""))
            elif problem is None:
                problem = f"exit {code}, stderr {lines!r}"
            if problem is not None:
                failures += 1
                Path(a.artifacts).mkdir(parents=True, exist_ok=True)
                dest = Path(a.artifacts) / f"crash-{n}.json"
                dest.write_bytes(src.read_bytes())
                print(f"fuzz report: mutant {n} ({dest}): {problem}", file=sys.stderr)
                break
            n += 1
        secs = time.monotonic() - t0
    verdict = "ok" if failures == 0 else "FAILED"
    print(f"fuzz report: {n} executions in {secs:.0f} s, {len(classes)} outcome classes "
          f"({sum(1 for c in classes if c[0] == 'exit 2')} error kinds): {verdict}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
