"""test_live - live mode against real SMTP software on loopback (docs/live.md).

* ``mtasim live`` delivers to python3-aiosmtpd (tests/live/aiosmtpd_server.py)
  that accepts, greylists (451 on the first attempt) and rejects (550); the
  hook sequence, the SMTP dialogue and the fates equal those of ``mtasim run``
  of the same scenario, whose scripted remote replies as aiosmtpd does.
* ``mtasim live`` against ``mtasim serve`` of the same scenario: the same again,
  the scripted remote now on a real socket.
* swaks talks to ``mtasim serve`` and gets the scripted replies, per session.
* libESMTP (tests/live/esmtp_send.c) against ``mtasim serve``: its events
  beside the core's are compared in tests/fidelity/test_libesmtp.py
  (build_esmtp_send() is here).
* Safety and bounds: loopback only without --allow-remote-targets, unmapped
  remote addresses never contacted, --timeout, serve's delay cap and its
  --duration/--sessions, bad input exits 2.

Legitimate differences, ignored in every comparison:
  - timing fields, descriptor numbers (conn=, conn_fd=, fd=);
  - pre_read_smtp fires once per segment received, and a real server may write
    a multi-line reply line by line (aiosmtpd does), so consecutive
    pre_read_smtp calls count as one.

Every server runs with a duration limit and is killed in a finally block;
every subprocess has a timeout.  Nothing leaves 127.0.0.1.
"""
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT

LIVE = REPO_ROOT / "tests" / "live"
PYTHON = "/usr/bin/python3"
STEP_TIMEOUT = 30           # seconds, any one subprocess
READY_TIMEOUT = 10          # seconds for a server to say it listens
SERVER_DURATION = "20"      # seconds a server lives at most
FIELDS_IGNORED = {"conn", "conn_fd", "fd"}


def require_packages():
    """Fail clearly when a package tests/deps.sh installs is missing (never skip)."""
    missing = []
    if not shutil.which("swaks"):
        missing.append("swaks")
    if subprocess.run([PYTHON, "-c", "import aiosmtpd"], capture_output=True,
                      timeout=STEP_TIMEOUT, check=False).returncode != 0:
        missing.append("python3-aiosmtpd")
    if subprocess.run(["pkg-config", "--exists", "libesmtp-1.0"], capture_output=True,
                      timeout=STEP_TIMEOUT, check=False).returncode != 0:
        missing.append("libesmtp-dev")
    if missing:
        pytest.fail("live tests need Debian packages: %s (sh tests/deps.sh installs them as root)"
                    % " ".join(missing), pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def packages():
    require_packages()


def run(cmd, timeout=STEP_TIMEOUT):
    """Run cmd with a timeout; the CompletedProcess (text)."""
    try:
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("did not finish within %ss: %s" % (timeout, " ".join(map(str, cmd))),
                    pytrace=False)


@contextmanager
def server(cmd, ready):
    """Start a server, wait for its ready line (regex ready, group 1 = port), yield
    (process, port); the process is killed when the block ends, whatever happened."""
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_TIMEOUT
        port = None
        while port is None and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(ready, line)
            if m:
                port = int(m.group(1))
        sel.close()
        if port is None:
            proc.kill()
            _, err = proc.communicate(timeout=STEP_TIMEOUT)
            pytest.fail("server did not become ready: %s\n%s" % (" ".join(map(str, cmd)), err),
                        pytrace=False)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=STEP_TIMEOUT)


def aiosmtpd(mode, log):
    return server([PYTHON, LIVE / "aiosmtpd_server.py", "--mode", mode, "--duration",
                   SERVER_DURATION, "--log", log], r"^READY (\d+)")


def serve(mtasim, scenario, *opts):
    return server([mtasim, "serve", scenario, "--listen", "127.0.0.1:0", "--duration",
                   SERVER_DURATION, *opts], r"listening on 127\.0\.0\.1:(\d+)")


def result(path):
    """The one run of a result JSON."""
    runs = json.loads(Path(path).read_text())["runs"]
    assert len(runs) == 1
    return runs[0]


def hook_names(run_):
    """Hook names in order, consecutive pre_read_smtp calls as one (see above)."""
    names = [rec[2] for rec in run_["trace"] if rec[1] == "hook"]
    return [n for i, n in enumerate(names)
            if not (n == "pre_read_smtp" and i > 0 and names[i - 1] == n)]


def dialogue(run_):
    """The SMTP lines sent and received, in order, without descriptors."""
    return [(rec[2], rec[3].get("line")) for rec in run_["trace"] if rec[1] == "smtp"]


def fates(run_):
    return [(m["id"], m["fate"], m["attempts"], m["delivered"], m["failed"])
            for m in run_["messages"]]


def simulate(mtasim, scenario, tmp_path):
    out = tmp_path / "sim.json"
    proc = run([mtasim, "run", "--json", out, "--json-trace", scenario])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return result(out)


def live(mtasim, scenario, port, tmp_path, *opts):
    out = tmp_path / "live.json"
    proc = run([mtasim, "live", scenario, "--remote", "mx1.example.com=127.0.0.1:%d" % port,
                "--json", out, "--json-trace", "--timeout", "15", *opts])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^PASS \S+  live  2 expectations", proc.stdout, re.M), proc.stdout
    got = result(out)
    assert got["mode"] == "live"
    return got


def assert_same_run(sim, got):
    assert hook_names(got) == hook_names(sim)
    assert dialogue(got) == dialogue(sim)
    assert fates(got) == fates(sim)


# mode -> (RCPT replies aiosmtpd gave, messages it accepted)
AIOSMTPD_SEES = {
    "accept": (["250"], 1),
    "greylist": (["451", "250"], 1),
    "reject": (["550"], 0),
}


@pytest.mark.parametrize("mode", sorted(AIOSMTPD_SEES))
def test_live_against_aiosmtpd_matches_simulation(mtasim, tmp_path, mode):
    scenario = LIVE / ("%s.scn" % mode)
    sim = simulate(mtasim, scenario, tmp_path)
    log = tmp_path / "aiosmtpd.json"
    with aiosmtpd(mode, log) as (proc, port):
        got = live(mtasim, scenario, port, tmp_path)
        proc.terminate()
        proc.wait(timeout=STEP_TIMEOUT)
    assert_same_run(sim, got)
    seen = json.loads(log.read_text())
    rcpt_codes, messages = AIOSMTPD_SEES[mode]
    assert [r["reply"][:3] for r in seen["rcpt"]] == rcpt_codes
    assert len(seen["messages"]) == messages
    # The trace says where the host map sent the connection.
    assert all(rec[3]["real"] == "127.0.0.1:%d" % port
               for rec in got["trace"] if rec[1:3] == ["conn", "open"])


def test_live_against_serve_matches_simulation(mtasim, tmp_path):
    scenario = LIVE / "greylist.scn"
    sim = simulate(mtasim, scenario, tmp_path)
    with serve(mtasim, scenario, "--sessions", "2") as (proc, port):
        got = live(mtasim, scenario, port, tmp_path)
        out, _ = proc.communicate(timeout=STEP_TIMEOUT)
        assert proc.returncode == 0
    assert "2 sessions served" in out
    assert_same_run(sim, got)


def swaks(port, to):
    proc = run(["swaks", "--server", "127.0.0.1:%d" % port, "--from", "alice@sender.test",
                "--to", to, "--timeout", "10"])
    return proc.stdout


def test_swaks_gets_the_scripted_replies(mtasim, tmp_path):
    trace = tmp_path / "serve.trace"
    with serve(mtasim, LIVE / "serve.scn", "--sessions", "2", "--trace", trace) as (proc, port):
        first = swaks(port, "bob@example.com")
        second = swaks(port, "nobody@example.com")
        out, _ = proc.communicate(timeout=STEP_TIMEOUT)
        assert proc.returncode == 0
    assert "<-  220 mx.serve.test ESMTP scripted by mtasim" in first
    assert "<-  250-mx.serve.test" in first and "<-  250 ENHANCEDSTATUSCODES" in first
    assert "<** 451 4.7.1 greylisted, session 1" in first
    assert "<-  221 2.0.0 see you" in first
    # Session 2: the recipient pattern decides, and the delayed reply arrives.
    assert "<** 550 5.1.1 no such user" in second
    assert "2 sessions served" in out
    text = trace.read_text()
    assert "remote accept remote=198.51.100.77 session=2" in text
    assert text.count("conn accept ") == 2


def build_esmtp_send(tmp_path):
    flags = run(["pkg-config", "--cflags", "--libs", "libesmtp-1.0"]).stdout.split()
    exe = tmp_path / "esmtp_send"
    proc = run(["cc", "-Wall", "-Wextra", "-Werror", "-o", exe, LIVE / "esmtp_send.c", *flags])
    assert proc.returncode == 0, proc.stderr
    return exe


def test_live_refuses_targets_outside_loopback(mtasim, tmp_path):
    proc = run([mtasim, "live", LIVE / "accept.scn", "--remote", "mx1.example.com=192.0.2.9:25"])
    assert proc.returncode == 2
    assert "not a loopback address" in proc.stderr and "--allow-remote-targets" in proc.stderr
    proc = run([mtasim, "serve", LIVE / "accept.scn", "--listen", "0.0.0.0:0", "--once"])
    assert proc.returncode == 2 and "not a loopback address" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--remote", "mx1.example.com"], "HOST=ADDR:PORT"),
    (["--remote", "mx1.example.com=127.0.0.1:99999"], "HOST=ADDR:PORT"),
    (["--remote", "nowhere.test=127.0.0.1:25"], "neither an address nor a remote's name"),
    (["--timeout", "0"], "--timeout wants seconds"),
    (["--json-trace"], "--json-trace adds the trace"),
])
def test_live_bad_usage(mtasim, args, message):
    proc = run([mtasim, "live", LIVE / "accept.scn", *args])
    assert proc.returncode == 2
    assert message in proc.stderr


def test_live_refuses_inbound_scenarios(mtasim):
    inbound = sorted((REPO_ROOT / "scenarios" / "inbound").glob("*.scn"))[0]
    proc = run([mtasim, "live", inbound])
    assert proc.returncode == 2
    assert "live mode drives the outbound path" in proc.stderr


def test_live_refuses_inject_ranges(mtasim, tmp_path):
    """A FIRST..LAST range would send every message to real servers: a usage
    error at the line, before anything is sent (live/live_run.c)."""
    scn = tmp_path / "range.scn"
    scn.write_text("scenario range\nremote 127.0.0.1 name mx.example.com\n"
                   "dns example.com MX 10 mx.example.com\ndns mx.example.com A 127.0.0.1\n"
                   "inject 1..5 from <a@sender.test> to <b@example.com>\n", encoding="utf-8")
    proc = run([mtasim, "live", scn])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{scn}:5: mtasim live: an inject range (1..5) is for mtasim run" in proc.stderr
    assert proc.stdout == ""


def test_live_without_remote_is_a_usage_error(mtasim):
    """Nothing could answer: said at once, exit 2, instead of a 30 s wait."""
    t0 = time.monotonic()
    proc = run([mtasim, "live", LIVE / "accept.scn"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no --remote HOST=ADDR:PORT given" in proc.stderr
    assert time.monotonic() - t0 < 5 and proc.stdout == ""


def test_unmapped_remote_is_never_contacted(mtasim, tmp_path):
    trace = tmp_path / "t"
    # Another address is mapped; the scenario's remote stays unmapped.
    proc = run([mtasim, "live", LIVE / "accept.scn", "--timeout", "1", "--trace", trace,
                "--remote", "192.0.2.77=127.0.0.1:9"])
    assert "has no --remote mapping" in proc.stderr
    assert "conn open fd=" in trace.read_text()
    assert "real=none" in trace.read_text()
    assert "conn established" not in trace.read_text()
    assert proc.returncode == 3
    assert "did not settle within the --timeout of 1 s" in proc.stdout


def test_live_timeout_bounds_a_silent_server(mtasim, tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)          # the handshake completes; nobody ever speaks
        port = listener.getsockname()[1]
        t0 = time.monotonic()
        proc = run([mtasim, "live", LIVE / "accept.scn", "--timeout", "1.5",
                    "--remote", "mx1.example.com=127.0.0.1:%d" % port])
        took = time.monotonic() - t0
    assert proc.returncode == 3, proc.stdout
    assert "did not settle within the --timeout of 1.5 s" in proc.stdout
    assert 1.4 < took < 10


def test_serve_caps_long_delays(mtasim, tmp_path):
    scn = tmp_path / "slow.scn"
    scn.write_text("remote 198.51.100.10\n  greet 220 slow delay 400s\n")
    proc = run([mtasim, "serve", scn, "--listen", "127.0.0.1:0", "--once"])
    assert proc.returncode == 2
    assert re.search(r"slow\.scn:2:\d+: reply delay of 400\.000 s is longer than mtasim "
                     r"serve's limit of 10 s \(--allow-long-delays serves it\)", proc.stderr)
    with serve(mtasim, scn, "--allow-long-delays", "--once") as (proc, port):
        pass


def test_serve_stops_by_itself(mtasim):
    t0 = time.monotonic()
    proc = run([mtasim, "serve", LIVE / "accept.scn", "--listen", "127.0.0.1:0",
                "--duration", "0.5"])
    assert proc.returncode == 0
    assert "0 sessions served" in proc.stdout
    assert time.monotonic() - t0 < 10


def test_serve_stops_on_sigterm(mtasim):
    with serve(mtasim, LIVE / "accept.scn") as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            assert client.recv(200).startswith(b"220 mx1.example.com")
            proc.terminate()
            out, err = proc.communicate(timeout=STEP_TIMEOUT)
    assert proc.returncode == 0, err
    assert "1 session served" in out


def test_serve_bad_usage(mtasim, tmp_path):
    for args, message in [
            ([], "--listen ADDR:PORT is required"),
            (["--listen", "localhost"], "--listen wants ADDR:PORT"),
            (["--listen", "127.0.0.1:0", "--remote", "mx9.test"], "has no remote 'mx9.test'"),
            (["--listen", "127.0.0.1:0", "--sessions", "0"], "--sessions wants"),
    ]:
        proc = run([mtasim, "serve", LIVE / "accept.scn", *args])
        assert proc.returncode == 2, args
        assert message in proc.stderr, args
