"""tests/layout/check_layout.py holds the layering, and would notice a breach.

The tree itself must pass; copies of it with one deliberate breach each
(an include that points up a layer, a module's private header used from
outside, a core-private header used by sim/, a file past the length limit,
a source folder missing from the layer table) must fail, naming the file
and line.
"""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tests/layout/check_layout.py"


def run_checker(root):
    return subprocess.run([sys.executable, str(CHECKER), str(root)],
                          capture_output=True, text=True, check=False)


@pytest.fixture
def tree(tmp_path):
    """A copy of the sources the checker reads (core/, sim/, live/)."""
    for top in ("core", "sim", "live"):
        shutil.copytree(ROOT / top, tmp_path / top,
                        ignore=shutil.ignore_patterns("*.py", "*.table", "meson.build"))
    return tmp_path


def add_after(path, anchor, text):
    src = path.read_text()
    assert anchor in src, f"{anchor!r} not in {path}"
    path.write_text(src.replace(anchor, anchor + text, 1))


def test_the_tree_keeps_its_layers():
    r = run_checker(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("layout: ")


def test_the_copy_passes_unchanged(tree):
    r = run_checker(tree)
    assert r.returncode == 0, r.stdout + r.stderr


def test_an_upward_include_fails(tree):
    # The world must not know the runner that drives it.
    add_after(tree / "sim/world/net.h", '#include "sim_sched.h"\n', '#include "runner.h"\n')
    r = run_checker(tree)
    assert r.returncode == 1
    assert 'sim/world/net.h:' in r.stdout
    assert 'includes "runner.h" (sim/run/runner.h): sim/run/ is a layer above sim/world/' \
        in r.stdout


def test_a_utility_calling_into_the_core_fails(tree):
    add_after(tree / "core/util/idxmap.c", '#include "idxmap.h"\n', '#include "mta.h"\n')
    r = run_checker(tree)
    assert r.returncode == 1
    assert "core/util/idxmap.c:" in r.stdout and "core/ is a layer above core/util/" in r.stdout


def test_a_private_header_from_outside_fails(tree):
    add_after(tree / "sim/lang/expect.c", '#include "expect.h"\n', '#include "remote_internal.h"\n')
    add_after(tree / "sim/run/runner.c", '#include "runner.h"\n', '#include "mta_internal.h"\n')
    r = run_checker(tree)
    assert r.returncode == 1
    assert 'sim/lang/expect.c:' in r.stdout and "private header of sim/world/" in r.stdout
    assert 'sim/run/runner.c:' in r.stdout and '"mta_internal.h", private to core/' in r.stdout


def test_a_file_past_the_limit_fails(tree):
    f = tree / "sim/world/prng.c"
    f.write_text(f.read_text() + "/* filler */\n" * 1500)
    r = run_checker(tree)
    assert r.returncode == 1
    assert "sim/world/prng.c:" in r.stdout and "more than 1500" in r.stdout


def test_a_folder_outside_the_table_fails(tree):
    (tree / "sim/extra").mkdir()
    (tree / "sim/extra/thing.c").write_text('#include "net.h"\n')
    r = run_checker(tree)
    assert r.returncode == 1
    assert "sim/extra/thing.c:1: directory sim/extra/ is not a layer" in r.stdout


def test_two_headers_of_one_name_fail(tree):
    shutil.copy(tree / "sim/world/net.h", tree / "sim/lang/net.h")
    r = run_checker(tree)
    assert r.returncode == 1
    assert '"net.h" is ambiguous' in r.stdout
