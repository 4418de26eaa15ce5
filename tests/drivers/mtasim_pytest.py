"""mtasim_pytest - a pytest plugin that runs every *.scn scenario as a test.

Each ``*.scn`` file becomes one test item named after the scenario file's
stem (the node id keeps the path: ``scenarios/greylist/retry.scn::retry``).
The item runs ``mtasim run --json <tmp> <file>`` and passes only when
mtasim exits 0.  A failure shows mtasim's own report (the diff) and the
exact replay command instead of a Python traceback.

``*.inc`` files hold a shared world and are never collected; dot-files are
skipped too, so that the temporary mutants written next to the scenarios by
test_wrong_expectations.py never become items (xdist needs every worker to
collect the same items).

Options:
  --mtasim-bin PATH   the mtasim binary (default: $MTASIM, else
                      <repo>/build/sim/mtasim in the repository, else
                      the mtasim on $PATH: installed, this module is
                      loaded by its "pytest11" entry point, see
                      pytest-plugin/meson.build)
  --mtasim-seed N     pass --seed N to every run
  --mtasim-plugin PATH[:ARGS]
                      pass --plugin PATH[:ARGS] to every run (repeatable, in
                      the order given; PATH as mtasim finds it from the
                      directory pytest was started in)
  --mtasim-shard I/N  run only shard I of N (1 <= I <= N) of the collected
                      items, for CI matrices: an item belongs to shard
                      1 + (the first 8 bytes of SHA-256 of its node id,
                      as an integer, mod N).  Stable hashing, not
                      position: every item is in exactly one shard, and
                      adding a test moves no other test to another shard.
                      The rest are reported as deselected.
  --mtasim-results DIR
                      keep each scenario's result JSON (with --json-trace)
                      as DIR/<file path with / as __>.json, for
                      ``mtasim report DIR/*.json --html ...`` after the run
                      (works with -n auto: each item writes its own file)

Parallel runs (``-n auto``, python3-pytest-xdist) need every worker to
collect the same items in the same order: pytest collects directories and
files sorted by name, each .scn gives exactly one item, and nothing here
depends on the worker.  Each failing item's JUnit entry (``--junitxml``)
carries the diff as its failure text and the seed, digest and replay
command as properties.

Also provides the ``mtasim`` fixture (the binary's path, or a clear failure
telling how to build it) and run_mtasim() for the other driver tests.
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# In the repository (tests/drivers/) the build tree's binary; installed (as
# <site>/mtasim_pytest.py) the one on $PATH.
IN_REPO = Path(__file__).resolve().parent == REPO_ROOT / "tests" / "drivers"
if IN_REPO:
    DEFAULT_BIN = REPO_ROOT / "build" / "sim" / "mtasim"
    BUILD_HINT = "build it with: meson setup build && meson compile -C build"
else:
    DEFAULT_BIN = Path(shutil.which("mtasim") or "/usr/bin/mtasim")
    BUILD_HINT = "install mtasim (the Debian package, or meson install from its sources)"
RUN_TIMEOUT = 300   # seconds; a scenario runs in virtual time, so this only catches hangs

EXIT_MEANING = {
    0: "all expectations met",
    1: "an expectation failed",
    2: "bad input or usage",
    3: "invariant violation or internal error",
    4: "a plugin crashed",
}


def pytest_addoption(parser):
    group = parser.getgroup("mtasim", "mtasim scenarios")
    group.addoption("--mtasim-bin", metavar="PATH", default=None,
                    help="mtasim binary (default: $MTASIM, else build/sim/mtasim in the "
                         "repository, else mtasim on $PATH)")
    group.addoption("--mtasim-seed", metavar="N", type=int, default=None,
                    help="run every scenario with --seed N")
    group.addoption("--mtasim-plugin", metavar="PATH[:ARGS]", action="append", default=[],
                    help="load this plugin into every scenario run (repeatable)")
    group.addoption("--mtasim-shard", metavar="I/N", default=None,
                    help="run only shard I of N of the collected items (stable hashing)")
    group.addoption("--mtasim-results", metavar="DIR", default=None,
                    help="keep each scenario's result JSON in DIR, for mtasim report")


def parse_shard(text):
    """(index, count) from "I/N" with 1 <= I <= N; pytest.UsageError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise pytest.UsageError(f"--mtasim-shard wants I/N with 1 <= I <= N, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def shard_of(nodeid, count):
    """The shard (1..count) an item belongs to: stable hashing of its node id."""
    digest = hashlib.sha256(nodeid.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def pytest_configure(config):
    # Check --mtasim-shard before collecting anything.
    if config.getoption("mtasim_shard"):
        parse_shard(config.getoption("mtasim_shard"))


def pytest_collection_modifyitems(config, items):
    """--mtasim-shard I/N: keep this shard's items, report the rest deselected."""
    if not config.getoption("mtasim_shard"):
        return
    index, count = parse_shard(config.getoption("mtasim_shard"))
    keep = [item for item in items if shard_of(item.nodeid, count) == index]
    dropped = [item for item in items if shard_of(item.nodeid, count) != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def mtasim_binary(config):
    """The configured binary path: --mtasim-bin, then $MTASIM, then the build dir."""
    chosen = config.getoption("mtasim_bin") or os.environ.get("MTASIM") or DEFAULT_BIN
    return Path(chosen).absolute()


def require_binary(config):
    """The binary's path as a string, or fail the current test saying how to build it."""
    binary = mtasim_binary(config)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"mtasim binary not found or not executable: {binary}\n{BUILD_HINT}\n"
                    "(or point --mtasim-bin / $MTASIM at it)", pytrace=False)
    return str(binary)


def run_mtasim(binary, args, cwd=None, timeout=RUN_TIMEOUT):
    """Run ``mtasim run ARGS``; return the CompletedProcess (text, both streams captured)."""
    try:
        return subprocess.run([binary, "run", *args], cwd=cwd, capture_output=True,
                              text=True, errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mtasim did not finish within {timeout}s: {shlex.join(exc.cmd)}",
                    pytrace=False)


def describe_exit(rc):
    """Human words for an mtasim exit status."""
    if rc < 0:
        return f"killed by signal {-rc}"
    return EXIT_MEANING.get(rc, "unknown exit status")


@pytest.fixture(scope="session")
def mtasim(pytestconfig):
    """Path of the mtasim binary under test."""
    return require_binary(pytestconfig)


def pytest_report_header(config):
    binary = mtasim_binary(config)
    state = "" if binary.is_file() else f"  (MISSING - {BUILD_HINT})"
    seed = config.getoption("mtasim_seed")
    shard = config.getoption("mtasim_shard")
    return (f"mtasim: {binary}{state}" + (f"  seed {seed}" if seed is not None else "")
            + "".join(f"  plugin {p}" for p in config.getoption("mtasim_plugin"))
            + (f"  shard {shard}" if shard else ""))


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".scn" and not file_path.name.startswith("."):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A .scn file: holds exactly one scenario item."""

    def collect(self):
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class ScenarioFailure(Exception):
    """mtasim ran and did not exit 0; carries what repr_failure shows."""

    def __init__(self, report):
        super().__init__(report)
        self.report = report


class ScenarioItem(pytest.Item):
    """One scenario run through ``mtasim run``."""

    def _display_path(self):
        # The path as the user would type it from where pytest was started,
        # so that mtasim's report and the replay command are copy-pasteable.
        start = self.config.invocation_params.dir
        try:
            return str(self.path.relative_to(start))
        except ValueError:
            return str(self.path)

    def runtest(self):
        binary = require_binary(self.config)
        seed = self.config.getoption("mtasim_seed")
        path = self._display_path()
        cwd = self.config.invocation_params.dir
        plugins = [arg for p in self.config.getoption("mtasim_plugin") for arg in ("--plugin", p)]
        results_dir = self.config.getoption("mtasim_results")
        with tempfile.TemporaryDirectory(prefix="mtasim-") as tmp:
            json_path = os.path.join(tmp, "result.json")
            if results_dir:
                os.makedirs(results_dir, exist_ok=True)
                json_path = os.path.join(results_dir, result_file_name(path))
            args = ["--json", json_path] + (["--json-trace"] if results_dir else []) \
                + (["--seed", str(seed)] if seed is not None else []) + plugins
            proc = run_mtasim(binary, args + [path], cwd=cwd)
            result = load_json(json_path)
        self._record_properties(result)
        if proc.returncode != 0:
            raise ScenarioFailure(self._report(binary, path, seed, proc, result))

    def _record_properties(self, result):
        """Seed, digest and verdict as JUnit properties (--junitxml)."""
        runs = (result or {}).get("runs") or [{}]
        for key in ("seed", "digest", "verdict"):
            if runs[0].get(key) is not None:
                self.user_properties.append((f"mtasim_{key}", str(runs[0][key])))

    def _report(self, binary, path, seed, proc, result):
        """The failure text: exit status, mtasim's own output, the replay command."""
        lines = [f"mtasim exited {proc.returncode} ({describe_exit(proc.returncode)})"]
        out = proc.stdout.rstrip("\n")
        err = proc.stderr.rstrip("\n")
        if out:
            lines.append(out)
        if err:
            lines += ["--- stderr ---", err]
        plugins = self.config.getoption("mtasim_plugin")
        lines.append("replay: " + _replay_command(binary, path, seed, proc.stdout, result, plugins))
        return "\n".join(lines)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailure):
            return excinfo.value.report
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"scenario {self.name}"


def result_file_name(path):
    """The --mtasim-results file name for a scenario path: scenarios/a/b.scn ->
    scenarios__a__b.scn.json (unique per path, safe as one file name)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", os.path.normpath(path).replace(os.sep, "__")) + ".json"


def load_json(path):
    """The --json result, or None when mtasim wrote none (crash, usage error)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _replay_command(binary, path, seed, stdout, result, plugins=()):
    """The command that replays this run with a trace, using the binary actually tested.

    Prefer mtasim's own "replay: mtasim ..." line (it knows the seed the
    scenario chose); else build one from the JSON's seed or our --seed.
    The --mtasim-plugin plugins are part of the run, so of the replay too.
    """
    plugin_args = "".join(f" --plugin {shlex.quote(p)}" for p in plugins)
    for line in stdout.splitlines():
        words = line.strip().split(None, 2)
        if len(words) == 3 and words[0] == "replay:" and words[1] == "mtasim":
            rest = words[2]
            if plugin_args and rest.startswith("run "):
                rest = "run" + plugin_args + rest[3:]
            return f"{shlex.quote(binary)} {rest}"
    if seed is None and result:
        runs = result.get("runs") or [{}]
        seed = runs[0].get("seed")
    cmd = [binary, "run"] + [a for p in plugins for a in ("--plugin", p)] \
        + (["--seed", str(seed)] if seed is not None else [])
    return shlex.join(cmd + ["--trace", "-", path])
