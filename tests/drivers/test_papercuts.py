"""Small things a new user tripped over (issue 22), each pinned.

* The failure diff's "what happened after T" names the time of the last
  matched record, and lists records from T on - even when a "closest"
  candidate line (a later time) is shown above it.
* A scenario file that cannot be opened is reported at FILE:1:1 (a
  file:line:col every reader takes), never :0:0, by run and check alike.
* mtasim bench names the option it refused and the values it takes (it
  said "bad arguments" for --domains 5000), exit 2.
"""

import re
import subprocess

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

TIME = r"(\d\d:\d\d:\d\d\.\d{6})"


def test_diff_header_time_matches_the_records_listed(mtasim, tmp_path):
    (tmp_path / "d.scn").write_text(f"""scenario diffhdr
include {REPO_ROOT}/scenarios/world.inc
remote 198.51.100.10
inject 1 from <a@sender.test> to <bob@example.com>
expect hooks in order
  post_initiate_connection_smtp conn_fd>=0
  log_delivery_v1 msg=2
""")
    proc = run_mtasim(mtasim, ["d.scn"], cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out
    ok_time = re.search(r"^  ok   " + TIME, out, re.M).group(1)
    closest = re.search(r"closest: " + TIME, out).group(1)
    assert closest > ok_time            # the case that used to overwrite the header's time
    assert re.search(r"never happened after " + re.escape(ok_time) + "$", out, re.M), out
    header = re.search(r"what happened after " + TIME + ":", out)
    assert header and header.group(1) == ok_time, out
    listed = re.findall(r"^       " + TIME + "  ", out.split("what happened after")[1], re.M)
    assert listed and listed[0] == ok_time and all(t >= ok_time for t in listed), out


def test_missing_file_is_at_line_1(mtasim, tmp_path):
    for cmd in ("run", "check"):
        proc = run_mtasim(mtasim, ["nothere.scn"], cwd=tmp_path) if cmd == "run" else \
            subprocess.run([mtasim, "check", "nothere.scn"], cwd=tmp_path,
                                         capture_output=True, text=True, check=False)
        assert proc.returncode == 2
        assert "ERROR nothere.scn:1:1: cannot open scenario: No such file or directory" \
            in proc.stdout, proc.stdout
        assert ":0:0:" not in proc.stdout + proc.stderr


def test_bench_names_the_option_it_refuses(mtasim):
    cases = [
        (["--domains", "5000"], "mtasim bench: --domains 5000: a whole number from 1 to 4096"),
        (["--messages", "-1"], "mtasim bench: --messages -1: a whole number from 0 to 10000000"),
        (["--runs", "x"], "mtasim bench: --runs x: a whole number from 1 to"),
        (["--seed", "99999999999999999999"], "mtasim bench: --seed 99999999999999999999: a whole"),
        (["--mode", "fast"], "mtasim bench: --mode fast: mix, reuse or queued"),
        (["extra"], "mtasim bench: unexpected argument 'extra'"),
    ]
    for args, first in cases:
        proc = subprocess.run([mtasim, "bench"] + args, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith(first), (args, proc.stderr)
        assert "usage: mtasim bench" in proc.stderr, (args, proc.stderr)
        assert proc.stdout == "", (args, proc.stdout)    # nothing was run
