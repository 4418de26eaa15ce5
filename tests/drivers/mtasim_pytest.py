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
                      With --mtasim-durations FILE holding the items'
                      recorded durations, the items it knows are spread
                      by duration instead (longest first, each to the
                      shard with the least time so far, ties by node id:
                      the same file gives the same shards); the others
                      still by hash.
  --mtasim-durations FILE
                      read the items' recorded durations from FILE (JSON
                      {node id: seconds}) when it exists, for
                      --mtasim-shard; at the end of the run write the
                      durations measured in it back, merged
  --mtasim-results DIR
                      keep each scenario's result JSON (with --json-trace)
                      as DIR/<file path with / as __>.json, for
                      ``mtasim report DIR/*.json --html ...`` after the run
                      (works with -n auto: each item writes its own file)

A failing item's short-summary line (``-ra``) and JUnit ``message`` give
the reason in one line (mtasim's FAIL/ERROR line); the full report is
the JUnit element's text.  Bad input (mtasim exit status 2: the scenario
or a --mtasim-plugin cannot be used) is an error, not a failure: the run
happens in the item's setup, and exit 2 is raised there.

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
from _pytest._code.code import (ReprEntryNative, ReprExceptionInfo, ReprFileLocation,
                                ReprTraceback)

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
    group.addoption("--mtasim-durations", metavar="FILE", default=None,
                    help="recorded durations (JSON) that balance --mtasim-shard; "
                         "this run's are merged back into FILE")


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


def load_durations(path):
    """{node id: seconds} from a --mtasim-durations file; {} when there is none."""
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"--mtasim-durations {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise pytest.UsageError(f"--mtasim-durations {path}: not a JSON object")
    return {k: float(v) for k, v in raw.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and v >= 0}


def shards_by_duration(nodeids, durations, count):
    """{node id: shard} for the ids with a recorded duration: longest first,
    each to the shard with the least recorded time so far (lowest shard on a
    tie); the greedy "longest processing time" rule.  Deterministic."""
    load = [0.0] * count
    chosen = {}
    for nodeid in sorted((n for n in nodeids if n in durations),
                         key=lambda n: (-durations[n], n)):
        shard = min(range(count), key=lambda i: (load[i], i))
        load[shard] += durations[nodeid]
        chosen[nodeid] = shard + 1
    return chosen


def pytest_collection_modifyitems(config, items):
    """--mtasim-shard I/N: keep this shard's items, report the rest deselected."""
    if not config.getoption("mtasim_shard"):
        return
    index, count = parse_shard(config.getoption("mtasim_shard"))
    durations = load_durations(config.getoption("mtasim_durations"))
    by_time = shards_by_duration([item.nodeid for item in items], durations, count)

    def shard(item):
        return by_time.get(item.nodeid) or shard_of(item.nodeid, count)
    keep = [item for item in items if shard(item) == index]
    dropped = [item for item in items if shard(item) != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def pytest_runtest_logreport(report):
    """Collect each item's time (setup + call) for --mtasim-durations."""
    if report.when in ("setup", "call") and "::" in report.nodeid:
        _MEASURED[report.nodeid] = _MEASURED.get(report.nodeid, 0.0) + report.duration


_MEASURED = {}


def pytest_sessionfinish(session):
    """--mtasim-durations FILE: merge this run's durations into FILE (the
    controller only under xdist: the workers' reports reach it)."""
    path = session.config.getoption("mtasim_durations")
    if not path or hasattr(session.config, "workerinput") or not _MEASURED:
        return
    merged = load_durations(path)
    merged.update({k: round(v, 3) for k, v in _MEASURED.items()})
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(merged, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


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
    """mtasim ran and did not exit 0; carries what repr_failure shows:
    reason (one line) and report (everything)."""

    def __init__(self, reason, report):
        super().__init__(reason)
        self.reason, self.report = reason, report


def failure_repr(item, failure):
    """The report as pytest's own exception representation: its toterminal()
    prints the text as is, reprcrash.message is the one-line reason (the
    short summary's and JUnit's message), and it crosses xdist intact."""
    lines = [line + "\n" for line in failure.report.splitlines()]
    crash = ReprFileLocation(str(item.path), 1, failure.reason)
    return ReprExceptionInfo(reprtraceback=ReprTraceback([ReprEntryNative(lines)], None, "native"),
                             reprcrash=crash)


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

    def setup(self):
        """Run the scenario; bad input (exit 2) is raised here, so pytest
        reports it as an error.  runtest() judges the rest."""
        self._failure = None
        self._failure = self._run()
        if self._failure is not None and self._exit == 2:
            raise self._failure

    def runtest(self):
        if self._failure is not None:
            raise self._failure

    def _run(self):
        """mtasim run on this scenario: None when it passed, else a ScenarioFailure."""
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
        self._exit = proc.returncode
        if proc.returncode == 0:
            return None
        return ScenarioFailure(self._reason(proc), self._report(binary, path, seed, proc, result))

    @staticmethod
    def _reason(proc):
        """One line: mtasim's FAIL/ERROR line (or its first words on stderr)."""
        for line in proc.stdout.splitlines() + proc.stderr.splitlines():
            if re.match(r"(FAIL|ERROR|INVARIANT|mtasim\b)", line):
                return f"exit {proc.returncode}: {line.strip()}"
        return f"mtasim exited {proc.returncode} ({describe_exit(proc.returncode)})"

    def _record_properties(self, result):
        """Seed, digest and verdict as JUnit properties (--junitxml)."""
        runs = (result or {}).get("runs") or [{}]
        for key in ("seed", "digest", "verdict"):
            if runs[0].get(key) is not None:
                self.user_properties.append((f"mtasim_{key}", str(runs[0][key])))

    def _report(self, binary, path, seed, proc, result):
        """The failure text: exit status, mtasim's own output, the replay command."""
        lines = [f"mtasim exited {proc.returncode} ({describe_exit(proc.returncode)})"]
        # mtasim's own replay line gives way to ours (the binary tested, the
        # plugins): the report shows one.
        out = "\n".join(line for line in proc.stdout.rstrip("\n").splitlines()
                        if not line.lstrip().startswith("replay: mtasim "))
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
            return failure_repr(self, excinfo.value)
        return super().repr_failure(excinfo, style)

    def _repr_failure_py(self, excinfo, style=None):
        # pytest shows an exception raised in setup() (bad input) through
        # this one, not repr_failure(): the same report for both.
        if isinstance(excinfo.value, ScenarioFailure):
            return failure_repr(self, excinfo.value)
        return super()._repr_failure_py(excinfo, style)

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
