"""Plugins end to end: loading, ordering, crash isolation, the installed SDK.

The scenarios under scenarios/plugins/ pin each example plugin's behaviour
and fixtures/bad/plugin-*.scn each way a plugin can fail; this module checks
what those cannot say on their own:

  * a crashing plugin ends only its own scenario: the others of the same
    command still run and pass, the exit code is 4, --json says "plugin";
  * --plugin plugins load before the scenario's own, in the order given;
  * the trace written before a crash is kept (--trace FILE);
  * --timeout bounds a hang in wall-clock time;
  * --check-determinism works with plugins (both runs in children), and a
    second run that hangs or crashes is reported as that, not as a
    difference of digests;
  * the installed SDK: ``meson install --destdir`` stages the headers and
    mtasim.pc, and a fixture plugin built out of tree with
    ``cc -shared -fPIC $(pkg-config --cflags mtasim)`` runs in a scenario;
    every fixture plugin builds that way with -Wall -Wextra -Werror.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

SEGV = "fixtures/bad/plugin-segv.scn"
HANG = "fixtures/bad/plugin-hang.scn"
GOOD = "scenarios/plugins/order-last-last.scn"


def test_crash_does_not_stop_the_others(mtasim, tmp_path):
    json_path = tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--json", str(json_path), SEGV, GOOD], cwd=REPO_ROOT)
    out = proc.stdout
    assert proc.returncode == 4, out + proc.stderr
    assert f"FAIL {SEGV}  seed 1  (plugin crashed)" in out, out
    assert "  plugin buggy.so crashed with SIGSEGV in hook log_delivery_v1 at 00:00:00.012000" in out
    assert f"PASS {GOOD}  seed 1" in out, out
    verdicts = {r["file"]: (r["verdict"], r["exit_code"])
                for r in json.loads(json_path.read_text())["runs"]}
    assert verdicts == {SEGV: ("plugin", 4), GOOD: ("pass", 0)}


def test_trace_before_the_crash_is_kept(mtasim, tmp_path):
    trace = tmp_path / "trace.txt"
    proc = run_mtasim(mtasim, ["--trace", str(trace), SEGV, GOOD], cwd=REPO_ROOT)
    assert proc.returncode == 4
    text = trace.read_text()
    crashed, good = text.split(f"# scenario order-last-last  file {GOOD}")
    assert crashed.startswith("# scenario plugin-segv  file fixtures/bad/plugin-segv.scn  seed 1\n")
    # Every record up to the crash: the reply that triggered log_delivery_v1.
    assert "queue delivered msg=1" in crashed
    assert "hook log_delivery_v1" not in crashed      # the call never finished
    assert "hook log_delivery_v1 msg=1" in good


def test_command_line_plugins_load_first(mtasim, tmp_path):
    scn = tmp_path / "order.scn"
    scn.write_text(f"""scenario cli-order
include {REPO_ROOT}/scenarios/world.inc
plugin order_a.so:last
remote 198.51.100.10
inject 1 from <a@sender.test> to <bob@example.com>
expect trace exactly for message 1
  provider log_delivery_v1 plugin=order_b.so
  provider log_delivery_v1 plugin=order_a.so
""")
    proc = run_mtasim(mtasim, ["--plugin", "order_b.so:last", str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    missing = run_mtasim(mtasim, ["--plugin", "nope.so", str(scn)], cwd=tmp_path)
    assert missing.returncode == 2
    assert "--plugin nope.so: cannot find plugin 'nope.so'" in missing.stderr


@pytest.mark.parametrize("how", ["block", "loop"])
def test_timeout_bounds_a_hang(mtasim, tmp_path, how):
    """A provider that sleeps forever (the fixture) or spins forever (the same
    fixture with buggy.so:loop) is killed at --timeout."""
    hang = tmp_path / f"{how}.scn"
    hang.write_text((REPO_ROOT / HANG).read_text().replace(
        "include ../../scenarios/world.inc", f"include {REPO_ROOT}/scenarios/world.inc").replace(
        "buggy.so:block@", f"buggy.so:{how}@"))
    start = time.monotonic()
    proc = run_mtasim(mtasim, ["--timeout", "0.5", str(hang)], cwd=REPO_ROOT)
    assert time.monotonic() - start < 8
    assert proc.returncode == 4, proc.stdout
    assert ("plugin buggy.so did not return from hook log_delivery_v1 within 0.5 s of "
            "wall-clock time (killed) at 00:00:00.012000") in proc.stdout
    bad = run_mtasim(mtasim, ["--timeout", "soon", GOOD], cwd=REPO_ROOT)
    assert bad.returncode == 2 and "--timeout wants seconds" in bad.stderr


def test_determinism_with_plugins(mtasim):
    # Not the dot-files: the mutation tests write theirs here at the same time.
    scenarios = sorted(str(p.relative_to(REPO_ROOT))
                       for p in (REPO_ROOT / "scenarios" / "plugins").glob("*.scn")
                       if not p.name.startswith("."))
    proc = run_mtasim(mtasim, ["--quiet", "--check-determinism", *scenarios], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout
    assert f"{len(scenarios)} passed, 0 failed" in proc.stdout


@pytest.mark.parametrize("how, why, what", [
    ("block", "plugin hung", "did not return from hook log_delivery_v1 within 0.5 s of "
     "wall-clock time (killed) at 00:00:00.012000"),
    ("segv", "plugin crashed", "crashed with SIGSEGV in hook log_delivery_v1 at 00:00:00.012000"),
])
def test_determinism_rerun_that_fails_reports_its_own_verdict(mtasim, tmp_path, how, why, what):
    """--check-determinism when only the second run hangs or crashes (buggy.so's
    again-WHAT: the first run passes): the scenario fails with the second run's
    verdict and exit code 4, never as "nondeterminism" against an empty digest."""
    scn = tmp_path / "hang-again.scn"
    scn.write_text((REPO_ROOT / HANG).read_text().replace(
        "include ../../scenarios/world.inc", f"include {REPO_ROOT}/scenarios/world.inc").replace(
        "plugin buggy.so:block@log_delivery_v1\n", ""))
    marker, json_path = tmp_path / "ran-once", tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--check-determinism", "--timeout", "0.5", "--json", str(json_path),
                               "--plugin", f"buggy.so:again-{how}@log_delivery_v1@{marker}",
                               str(scn)], cwd=REPO_ROOT)
    out = proc.stdout
    assert marker.exists(), "the first run never called the plugin: nothing was tested"
    assert proc.returncode == 4, out + proc.stderr
    assert f"FAIL {scn}  seed 1  ({why})" in out, out
    assert f"  in the second run (--check-determinism): plugin buggy.so {what}\n" in out, out
    assert "nondeterminism" not in out, out
    (run,) = json.loads(json_path.read_text())["runs"]
    assert (run["verdict"], run["exit_code"]) == ("plugin", 4), run


def test_out_of_tree_plugin_against_installed_sdk(mtasim, tmp_path):
    for tool in ("cc", "pkg-config", "meson"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run sh tests/deps.sh", pytrace=False)
    build_dir = Path(mtasim).resolve().parents[1]
    stage = tmp_path / "stage"
    subprocess.run(["meson", "install", "-C", str(build_dir), "--no-rebuild", "--quiet",
                    "--destdir", str(stage)], check=True, capture_output=True, text=True)
    pcs = list(stage.rglob("mtasim.pc"))
    assert len(pcs) == 1, f"mtasim.pc not staged: {pcs}"
    env = dict(os.environ, PKG_CONFIG_PATH=str(pcs[0].parent), PKG_CONFIG_SYSROOT_DIR=str(stage))
    cflags = subprocess.run(["pkg-config", "--cflags", "mtasim"], env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    include = Path(cflags[0][2:])
    for header in ("mtasim_plugin.h", "connection.h", "hooks/hook_types.h",
                   "hooks/core/log_delivery_v1.h"):
        assert (include / header).is_file(), f"{header} not installed under {include}"
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", *cflags,
                    str(REPO_ROOT / "fixtures/plugins/order.c"),
                    "-o", str(plugin_dir / "order_a.so")], check=True)
    scn = tmp_path / "sdk.scn"
    scn.write_text(f"""scenario sdk
include {REPO_ROOT}/scenarios/world.inc
plugin plugins/order_a.so:first
remote 198.51.100.10
inject 1 from <a@sender.test> to <bob@example.com>
expect trace exactly for message 1
  provider log_delivery_v1 plugin=plugins/order_a.so closure=order-a
  hook log_delivery_v1
""")
    proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every fixture plugin is written as its product's documentation writes
    # one: each builds out of tree with nothing but the installed headers.
    failed = []
    for source in sorted((REPO_ROOT / "fixtures/plugins").glob("*.c")):
        out = plugin_dir / (source.stem + ".so")
        built = subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", *cflags,
                                str(source), "-o", str(out)], capture_output=True, text=True)
        if built.returncode != 0:
            failed.append(f"{source.name}:\n{built.stderr}")
    assert not failed, "\n".join(failed)
