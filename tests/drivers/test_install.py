"""mtasim installed: relocatable, complete, and found where a user looks.

* ``meson install --destdir`` gives a tree that works wherever it lies: the
  binary finds its example plugins and report generators from its own
  path, no path of the build tree is in any installed file, and the tree
  still works after it is moved;
* a plugin named by its bare file name is found, in order, next to the
  scenario, in the working directory, in $MTASIM_PLUGIN_PATH, in the
  installed plugin folder (``mtasim run --plugin`` and pytest's
  ``--mtasim-plugin`` included);
* the docs, the example plugins' sources, the man pages, the bash
  completion and the pytest plugin (with its ``pytest11`` entry point) are
  installed; ``pytest-3 folder/`` outside the repository, with only the
  installed files, collects the folder's .scn files;
* mtasim(1) names every option of every command's --help;
* the README's non-root ``apt-get install`` line names exactly the
  packages tests/deps.sh installs.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT

COMMANDS = ["run", "check", "report", "import", "live", "serve", "bench", "explore", "trace"]


def scenario_text(plugin_line=""):
    return (f"scenario inst\ninclude {REPO_ROOT}/scenarios/world.inc\n{plugin_line}"
            "remote 198.51.100.10\ninject 1 from <a@sender.test> to <bob@example.com>\n"
            "expect message 1 delivered\n")


@pytest.fixture(scope="module")
def build_dir(mtasim):
    return Path(mtasim).resolve().parents[1]


@pytest.fixture(scope="module")
def stage(build_dir, tmp_path_factory):
    """The build installed into a scratch root, stripped as a package would be;
    (root, prefix inside it)."""
    root = tmp_path_factory.mktemp("stage")
    subprocess.run(["meson", "install", "-C", str(build_dir), "--no-rebuild", "--quiet",
                    "--strip", "--destdir", str(root)], check=True, capture_output=True,
                   text=True)
    prefix = root / subprocess.run(
        ["meson", "introspect", "--buildoptions", str(build_dir)], check=True,
        capture_output=True, text=True).stdout.split('"name": "prefix", "value": "', 1)[1] \
        .split('"', 1)[0].lstrip("/")
    assert (prefix / "bin" / "mtasim").is_file(), f"no bin/mtasim under {prefix}"
    return root, prefix


def run(binary, args, cwd, env=None):
    return subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def installed_python_dir(prefix):
    found = sorted(prefix.glob("lib/python3*/dist-packages/mtasim_pytest.py"))
    assert len(found) == 1, f"mtasim_pytest.py installed {len(found)} times under {prefix}"
    return found[0].parent


def test_no_build_tree_path_in_any_installed_file(stage, build_dir):
    root, _ = stage
    needles = {str(build_dir).encode(), str(REPO_ROOT).encode()}
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for needle in needles:
                assert needle not in data, f"{f} holds {needle.decode()}"


def test_installed_tree_runs_and_can_be_moved(stage, tmp_path):
    root, prefix = stage
    moved = tmp_path / "moved"
    shutil.copytree(root, moved, symlinks=True)
    for top in (prefix, moved / prefix.relative_to(root)):
        mtasim = top / "bin" / "mtasim"
        work = tmp_path / ("work-" + top.parts[-3])
        work.mkdir(exist_ok=True)
        (work / "s.scn").write_text(scenario_text("plugin conn_counter.so\n"))
        proc = run(mtasim, ["run", "--json", "r.json", "--json-trace", "s.scn"], work)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lost = run(mtasim, ["run", "--plugin", "nope.so", "s.scn"], work)
        assert lost.returncode == 2
        plugins = next(top.glob("lib/**/mtasim/plugins"))
        assert f"in {plugins}" in lost.stderr, lost.stderr
        report = run(mtasim, ["report", "r.json", "--markdown", "-"], work)
        assert report.returncode == 0 and "1 passed, 0 failed" in report.stdout, report.stderr


def test_docs_examples_man_pages_completion_installed(stage):
    _, prefix = stage
    doc = prefix / "share" / "doc" / "mtasim"
    for md in sorted((REPO_ROOT / "docs").glob("*.md")):
        assert (doc / md.name).read_text() == md.read_text(), f"{md.name} not installed"
    assert (doc / "README.md").is_file()
    plugins = next(prefix.glob("lib/**/mtasim/plugins"))
    for so in sorted(plugins.glob("*.so")):
        source = so.stem if not so.stem.startswith("order_") else "order"
        assert (doc / "examples" / "plugins" / f"{source}.c").is_file(), f"no source of {so.name}"
    assert (plugins / "conn_counter.so").is_file() and not (plugins / "buggy.so").exists()
    assert (prefix / "share/man/man1/mtasim.1").is_file()
    assert (prefix / "share/man/man5/mtasim-scenario.5").is_file()
    assert (prefix / "share/bash-completion/completions/mtasim").is_file()
    dist = installed_python_dir(prefix)
    entry = next(dist.glob("mtasim_pytest-*.dist-info")) / "entry_points.txt"
    assert entry.read_text().split() == ["[pytest11]", "mtasim", "=", "mtasim_pytest"]


def test_man_page_names_every_option(mtasim, build_dir):
    page = (build_dir / "man" / "mtasim.1").read_text().replace("\\-", "-")
    missing = []
    for cmd in COMMANDS:
        usage = run(mtasim, [cmd, "--help"], REPO_ROOT)
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", usage.stdout + usage.stderr))
        assert options or cmd == "check", f"mtasim {cmd} --help names no option"
        missing += [f"{cmd} {o}" for o in sorted(options - {"--help"}) if o not in page]
    assert not missing, "options not in mtasim(1) (docs/cli.md): " + ", ".join(missing)
    for cmd in COMMANDS:
        assert f"mtasim {cmd}" in page, f"mtasim {cmd} not in mtasim(1)"
    man5 = (build_dir / "man" / "mtasim-scenario.5").read_text()
    for directive in ("remote", "inject", "expect hooks in order", "plugin"):
        assert directive in man5
    view = subprocess.run(["man", "-l", str(build_dir / "man" / "mtasim.1")],
                          capture_output=True, text=True, env=dict(os.environ, MANWIDTH="100"),
                          check=False)
    assert view.returncode == 0 and re.search(r"mtasim +- +deterministic", view.stdout)


def test_bash_completion(mtasim, tmp_path):
    (tmp_path / "a.scn").write_text("")
    (tmp_path / "b.json").write_text("")
    script = f"""
. /usr/share/bash-completion/bash_completion
. {REPO_ROOT}/completion/mtasim.bash
try() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
        COMPREPLY=(); _mtasim mtasim "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
        echo "$(printf '%s ' "${{COMPREPLY[@]}}" | tr ' ' '\\n' | sort | tr '\\n' ' ')"; }}
try mtasim r
try mtasim run --se
try mtasim run ""
try mtasim report ""
try mtasim bench --mode q
try mtasim serve --li
try mtasim run --trace-format ""
try mtasim trace s
"""
    env = dict(os.environ, PATH=f"{Path(mtasim).parent}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env=env, check=True).stdout.splitlines()
    assert [line.strip() for line in out] == [
        "report run", "--seed --seeds", "a.scn", "b.json", "queued", "--listen", "bin text",
        "show"], out


def test_plugin_search_order(mtasim, tmp_path):
    """Bare names: next to the scenario, then the working directory, then
    $MTASIM_PLUGIN_PATH, then the plugin folder; the order_a/order_b fixtures
    copied under one name tell which was loaded."""
    plugins = Path(mtasim).resolve().parents[1] / "fixtures" / "plugins"
    here, there, path_dir = (tmp_path / d for d in ("cwd", "scn", "path"))
    for d in (here, there, path_dir):
        d.mkdir()
    scn = there / "s.scn"

    def loaded(env_path=None, cli=False):
        scn.write_text(scenario_text("" if cli else "plugin p.so:first\n"))
        env = dict(os.environ)
        env.pop("MTASIM_PLUGIN_PATH", None)
        if env_path:
            env["MTASIM_PLUGIN_PATH"] = env_path
        args = ["run", "--trace", "-", *(["--plugin", "p.so:first"] if cli else []), str(scn)]
        proc = run(mtasim, args, here, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        found = set(re.findall(r"provider log_delivery_v1 plugin=\S*p\.so closure=order-(\w)",
                               proc.stdout))
        assert len(found) == 1, proc.stdout
        return found.pop()

    shutil.copy(plugins / "order_a.so", path_dir / "p.so")
    assert loaded(str(path_dir)) == "a"                     # $MTASIM_PLUGIN_PATH
    shutil.copy(plugins / "order_b.so", here / "p.so")
    assert loaded(str(path_dir)) == "b"                     # the working directory first
    assert loaded(str(path_dir), cli=True) == "b"           # --plugin p.so from the cwd
    shutil.copy(plugins / "order_a.so", there / "p.so")
    assert loaded(str(path_dir)) == "a"                     # next to the scenario first
    for f in (here / "p.so", there / "p.so", path_dir / "p.so"):
        f.unlink()
    proc = run(mtasim, ["run", str(scn)], here)
    assert proc.returncode == 2 and "cannot find plugin" in proc.stdout + proc.stderr


def test_pytest_outside_the_repository(stage, tmp_path):
    """Only the installed files: pytest loads the plugin by its entry point,
    collects a folder's .scn files, and --mtasim-plugin finds a bare name in
    the working directory."""
    _, prefix = stage
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "one.scn").write_text(scenario_text())
    (folder / "two.scn").write_text(scenario_text())
    shutil.copy(next(prefix.glob("lib/**/mtasim/plugins/order_a.so")), tmp_path / "mine.so")
    env = dict(os.environ, PYTHONPATH=str(installed_python_dir(prefix)),
               PATH=f"{prefix / 'bin'}:{os.environ['PATH']}")
    env.pop("MTASIM", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--mtasim-plugin", "mine.so:first", "suite/"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert f"mtasim: {prefix / 'bin' / 'mtasim'}" in proc.stdout


def test_repository_suites_beside_an_installed_plugin(stage, mtasim, tmp_path):
    """With the package installed (its dist-packages on the path, so its
    pytest11 entry point is found), the repository's own suite and a suite
    that loads the plugin by -p still register mtasim's options once."""
    from tests.drivers.test_pytest_plugin import pytest_run
    _, prefix = stage
    site = installed_python_dir(prefix)
    inside = pytest_run(mtasim, ["--collect-only", "-q", "scenarios/dns"], site=site)
    assert inside.returncode == 0, inside.stdout + inside.stderr
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "one.scn").write_text(scenario_text())
    outside = pytest_run(mtasim, ["suite"], cwd=tmp_path, site=site)
    assert outside.returncode == 0 and "1 passed" in outside.stdout, \
        outside.stdout + outside.stderr


def test_readme_apt_line_matches_deps_sh():
    readme = (REPO_ROOT / "README.md").read_text()
    m = re.search(r"sudo apt-get install -y ((?:[^\n]|\\\n)*?)\n```", readme)
    assert m, "no 'sudo apt-get install -y' line in README.md"
    in_readme = m.group(1).replace("\\\n", " ").split()
    listed = (REPO_ROOT / "tests" / "deps.sh").read_text()
    in_deps = []
    for assignment in re.findall(r'^MTASIM_DEB_PACKAGES="([^"]*)"', listed, re.M):
        in_deps += [w for w in assignment.split() if w != "$MTASIM_DEB_PACKAGES"]
    assert in_deps and sorted(in_readme) == sorted(in_deps), (
        f"README only: {sorted(set(in_readme) - set(in_deps))}, "
        f"tests/deps.sh only: {sorted(set(in_deps) - set(in_readme))}")
