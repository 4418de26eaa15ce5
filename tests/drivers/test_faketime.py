"""The libfaketime bridge: plugins that read the wall clock see virtual time.

scenarios/plugins/faketime-*.scn pin the behaviour with expectations; this
module checks what they cannot say on their own:

  * every clock faketime_stamp.so reads equals the virtual time of each
    record, computed here independently from the trace (epoch + offset),
    including the formatted local time (TZ=UTC);
  * the precision is the microsecond for every fraction of a second, the
    ones libfaketime's double arithmetic would get wrong included (.999999);
  * --no-faketime: the plugin reads the real wall clock and the scenario's
    faketime expectations fail;
  * "requires faketime" fails with exit code 2 and a clear line when the
    bridge is off (--no-faketime, library missing, preload not acting);
  * a missing library is said once on stderr, and only when a run loads
    plugins;
  * the isolation watchdog (CLOCK_MONOTONIC) still kills a hang in wall
    time under the preload, and wall_ms in the JSON is real time;
  * mtasim_plugin_note(): numeric values compare as numbers, a bad key is
    a plugin fault (exit code 4);
  * the AddressSanitizer build runs the bridge with its runtime first in
    LD_PRELOAD and gets the same trace digest ($MTASIM_ASAN_BIN, which
    tests/run-tests.sh builds in build-asan; else build-asan/sim/mtasim).
Nothing here skips itself: libfaketime, cc and the ASan build are what
tests/deps.sh and tests/run-tests.sh provide, and their absence fails.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

RETRY = "scenarios/plugins/faketime-retry.scn"
JITTER = "scenarios/plugins/faketime-jitter.scn"
NO_PLUGIN = "scenarios/delivery/greylist-retry.scn"
PLUGIN_OK = "scenarios/plugins/conn-counter.scn"
HANG = "fixtures/bad/plugin-hang.scn"
MISSING = {"MTASIM_LIBFAKETIME": "/nonexistent/libfaketime.so.1"}
WARNING = re.compile(r"^mtasim: warning: libfaketime is not installed .*: plugins that read the "
                     r"wall clock see real time, not virtual time \(docs/faketime\.md\)$", re.M)
NOTE = re.compile(r"^(\d+):(\d\d):(\d\d)\.(\d{6}) plugin note plugin=(\S+) hook=(\S+) "
                  r"(\w+)=(\"[^\"]*\"|\S+)$")


def libfaketime_installed(mtasim):
    """The bridge can be on here: the library is where mtasim looks for it."""
    probe = run_mtasim(mtasim, ["--quiet", PLUGIN_OK], cwd=REPO_ROOT)
    return "libfaketime is not installed" not in probe.stderr


@pytest.fixture
def bridge(mtasim):
    if not libfaketime_installed(mtasim):
        pytest.fail("libfaketime is not installed: run sh tests/deps.sh (Debian package "
                    "libfaketime)", pytrace=False)
    return mtasim


def run_env(binary, args, env_extra, cwd=REPO_ROOT, timeout=300):
    """mtasim run with extra environment variables."""
    env = dict(os.environ, **env_extra)
    return subprocess.run([str(binary), "run", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def notes(trace_text):
    """[(offset_us, hook, key, value)] of every plugin note in a trace."""
    found = []
    for line in trace_text.splitlines():
        m = NOTE.match(line)
        if m:
            h, mi, s, us = (int(x) for x in m.group(1, 2, 3, 4))
            offset = ((h * 60 + mi) * 60 + s) * 1_000_000 + us
            found.append((offset, m.group(6), m.group(7), m.group(8).strip('"')))
    return found


def epoch_of(path):
    """The scenario's epoch (its own line, or world.inc's) as a UTC datetime."""
    for f in (Path(path), REPO_ROOT / "scenarios/world.inc"):
        m = re.search(r"^epoch (\S+)$", f.read_text(), re.M)
        if m:
            return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc)
    raise AssertionError(f"no epoch for {path}")


def check_stamps(trace_text, epoch):
    """Every note equals the virtual time of its record; returns how many hook calls."""
    found = notes(trace_text)
    assert found, "no plugin note in the trace"
    calls = 0
    for offset, hook, key, value in found:
        virtual = epoch + datetime.timedelta(microseconds=offset)
        if key == "wall":
            assert value == virtual.strftime("%Y-%m-%d %H:%M:%S UTC"), (offset, hook, value)
        else:
            assert key in ("time_delta_s", "gettimeofday_delta_us", "realtime_delta_ns"), key
            assert value == "0", (offset, hook, key, value)
            calls += key == "time_delta_s"
    return calls


def test_stamps_equal_virtual_time(bridge, tmp_path):
    for scn, calls in ((RETRY, 15), (JITTER, 11)):
        proc = run_mtasim(bridge, ["--trace", "-", scn], cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert check_stamps(proc.stdout, epoch_of(REPO_ROOT / scn)) == calls
        assert "warning" not in proc.stderr


def test_every_fraction_of_a_second(bridge, tmp_path):
    # libfaketime reads the fraction as a double: without the half
    # nanosecond mtasim adds, .999999 would come back as .999998.
    fractions = [0, 1, 2, 9, 10, 123456, 499999, 500000, 500001, 654321, 999990, 999998, 999999]
    fractions += [(k * 7919 * 7919) % 1_000_000 for k in range(1, 40)]
    lines = [f"scenario fractions\ninclude {REPO_ROOT}/scenarios/world.inc\nrequires faketime\n"
             "plugin faketime_stamp.so\nremote 198.51.100.10 name mx1.example.com\n"]
    for i, frac in enumerate(fractions, start=1):
        lines.append(f"inject {i} from <a@sender.test> to <r{i}@example.com> "
                     f"at {i * 10_000_000 + frac}us\n")
    scn = tmp_path / "fractions.scn"
    scn.write_text("".join(lines))
    proc = run_mtasim(bridge, ["--trace", "-", str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_stamps(proc.stdout, epoch_of(REPO_ROOT / "scenarios/world.inc"))
    # Each injection's first connection attempt runs at exactly its offset.
    stamped = {offset % 1_000_000 for offset, hook, key, _ in notes(proc.stdout)
               if hook == "post_initiate_connection_smtp" and key == "gettimeofday_delta_us"}
    assert set(fractions) <= stamped


def test_no_faketime_shows_the_wall_clock(bridge, tmp_path):
    # The same scenario without its "requires": it runs, and fails.
    text = (REPO_ROOT / RETRY).read_text().replace("\nrequires faketime\n", "\n")
    scn = tmp_path / "retry.scn"
    scn.write_text(text)
    before = time.time()
    proc = run_mtasim(bridge, ["--no-faketime", "--trace", "-", str(scn)], cwd=tmp_path)
    after = time.time()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # Every faketime expectation fails; only the message's fate holds.
    expects = [n for n, line in enumerate(text.splitlines(), start=1)
               if line.startswith("expect ") and not line.startswith("expect message")]
    assert len(expects) == 8
    for n in expects:
        assert f"(line {n}: " in proc.stdout, (n, proc.stdout)
    epoch = epoch_of(REPO_ROOT / RETRY).timestamp()
    deltas = [(offset, int(value)) for offset, _, key, value in notes(proc.stdout)
              if key == "time_delta_s"]
    assert len(deltas) == 15
    for offset, delta in deltas:
        seen = epoch + offset / 1e6 + delta     # what time() returned
        assert before - 1 <= seen <= after + 1, (offset, delta)
    # With the bridge the same file passes.
    assert run_mtasim(bridge, [str(scn)], cwd=tmp_path).returncode == 0


def test_requires_faketime_when_the_bridge_is_off(mtasim):
    off = run_mtasim(mtasim, ["--no-faketime", RETRY, PLUGIN_OK], cwd=REPO_ROOT)
    assert off.returncode == 2, off.stdout
    assert (f"ERROR {RETRY}:11:10: requires faketime: the libfaketime bridge is off "
            "(--no-faketime)") in off.stdout
    assert f"PASS {PLUGIN_OK}" in off.stdout
    assert off.stderr == ""

    missing = run_env(mtasim, [RETRY, PLUGIN_OK, JITTER], MISSING)
    assert missing.returncode == 2, missing.stdout
    assert (f"ERROR {RETRY}:11:10: requires faketime: libfaketime is not installed "
            "(MTASIM_LIBFAKETIME=/nonexistent/libfaketime.so.1 is not a readable absolute "
            "path)") in missing.stdout
    assert f"ERROR {JITTER}:9:10: requires faketime: libfaketime is not installed" in missing.stdout
    assert f"PASS {PLUGIN_OK}" in missing.stdout
    # Said once for the whole command, not once per scenario.
    assert len(WARNING.findall(missing.stderr)) == 1, missing.stderr

    # The guard without the preload (as if LD_PRELOAD had not acted): no
    # second re-execution, a clear reason instead.
    stuck = run_env(mtasim, [RETRY], {"MTASIM_FAKETIME_EXEC": "1", "LD_PRELOAD": ""})
    assert stuck.returncode == 2, stuck.stdout
    assert f"ERROR {RETRY}:11:10: requires faketime: libfaketime did not load" in stuck.stdout
    assert "mtasim: warning: libfaketime did not load" in stuck.stderr


def test_missing_library_warns_only_for_plugins(mtasim):
    quiet = run_env(mtasim, [NO_PLUGIN], MISSING)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    warned = run_env(mtasim, [PLUGIN_OK, NO_PLUGIN], MISSING)
    assert warned.returncode == 0, warned.stdout
    assert len(WARNING.findall(warned.stderr)) == 1, warned.stderr
    cli = run_env(mtasim, ["--plugin", "conn_counter.so", NO_PLUGIN], MISSING)
    assert len(WARNING.findall(cli.stderr)) == 1, cli.stderr


def test_requires_is_checked_by_the_parser(mtasim, tmp_path):
    scn = tmp_path / "bad.scn"
    scn.write_text("scenario bad\nrequires faketim\n")
    proc = subprocess.run([str(mtasim), "check", str(scn)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert (f"ERROR {scn}:2:10: unknown requirement 'faketim': expected 'faketime'; did you mean "
            "'faketime'?") in proc.stdout


def test_monotonic_clock_is_real_under_the_preload(bridge, tmp_path):
    start = time.monotonic()
    proc = run_mtasim(bridge, ["--timeout", "0.5", HANG], cwd=REPO_ROOT)
    assert time.monotonic() - start < 8
    assert proc.returncode == 4, proc.stdout
    assert "did not return from hook log_delivery_v1 within 0.5 s of wall-clock time" in proc.stdout
    # wall_ms comes from CLOCK_MONOTONIC in the re-executed process.
    out = tmp_path / "r.json"
    proc = run_mtasim(bridge, ["--json", str(out), "--timeout", "0.3", HANG], cwd=REPO_ROOT)
    (run,) = json.loads(out.read_text())["runs"]
    assert 250 <= run["wall_ms"] < 8000, run


def test_plugin_note_values_and_keys(mtasim, tmp_path):
    if shutil.which("cc") is None:
        pytest.fail("cc is not installed: run sh tests/deps.sh (Debian package gcc)",
                    pytrace=False)
    build = Path(mtasim).resolve().parents[1]
    src = tmp_path / "noter.c"
    src.write_text("""#include <string.h>
#include <mtasim_plugin.h>
#include <hooks/core/log_delivery_v1.h>
static const char *bad;
static void delivered(void *c, ec_message *m, domain_record *d, struct timeval *now,
                      const char *note, int len)
{
    (void)c; (void)m; (void)d; (void)now; (void)note; (void)len;
    mtasim_plugin_note("count", "-12");
    mtasim_plugin_note("text", "12 apples");
    mtasim_plugin_note(bad ? bad : "n.ok_1-x", NULL);
}
int mtasim_module_init(const char *args)
{
    if (args[0] != '\\0')
        bad = args;
    register_core_log_delivery_v1_hook_last(delivered, NULL);
    return 0;
}
""")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
                    f"-I{REPO_ROOT / 'core/include'}", f"-I{build / 'core/include'}",
                    str(src), "-o", str(tmp_path / "noter.so")], check=True)
    scn = tmp_path / "n.scn"
    scn.write_text(f"""scenario notes
include {REPO_ROOT}/scenarios/world.inc
plugin ./noter.so
remote 198.51.100.10 name mx1.example.com
inject 1 from <a@sender.test> to <bob@example.com>
expect trace in order
  plugin note plugin=./noter.so hook=log_delivery_v1 count<0
  plugin note hook=log_delivery_v1 text="12 apples"
  plugin note hook=log_delivery_v1 n.ok_1-x=""
expect count trace plugin note count>=-12 = 1
expect never trace plugin note text>0
""")
    proc = run_mtasim(mtasim, ["--trace", "-", str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "plugin note plugin=./noter.so hook=log_delivery_v1 count=-12\n" in proc.stdout
    good = scn.read_text()
    for bad in ("plugin", "two words", "9lives"):
        scn.write_text(good.replace("plugin ./noter.so", f'plugin "./noter.so:{bad}"'))
        proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
        assert proc.returncode == 4, (bad, proc.stdout)
        assert "crashed with SIGABRT in hook log_delivery_v1" in proc.stdout, proc.stdout
        assert (f"mtasim_plugin_note: bad key '{bad}' from plugin ./noter.so in hook "
                "log_delivery_v1") in proc.stderr, proc.stderr


def test_asan_build_runs_the_bridge(bridge):
    asan = Path(os.environ.get("MTASIM_ASAN_BIN") or REPO_ROOT / "build-asan" / "sim" / "mtasim")
    if not asan.is_file():
        pytest.fail(f"no AddressSanitizer build at {asan}: sh tests/run-tests.sh builds it "
                    "(or: MTASIM_BUILD=build-asan MTASIM_SANITIZE=1 sh tests/build.sh)",
                    pytrace=False)
    digests = {}
    for binary in (bridge, asan):
        proc = run_mtasim(binary, ["--trace", "-", RETRY], cwd=REPO_ROOT)
        assert proc.returncode == 0, (binary, proc.stdout, proc.stderr)
        assert check_stamps(proc.stdout, epoch_of(REPO_ROOT / RETRY)) == 15
        digests[str(binary)] = re.search(r"digest (\w+)", proc.stdout).group(1)
    assert len(set(digests.values())) == 1, digests
