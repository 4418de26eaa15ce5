"""Hostile input is contained (issue 18): each defect the outside attack found.

Every case runs the hostile input in one ``mtasim run`` beside a good
scenario and asserts, through contained():

* the exit code (2 for bad input, never 0 and never 3);
* exactly one ``ERROR FILE:LINE:COL: message`` line for the hostile file,
  at the position of the offending token;
* the good scenario still ran (its PASS line) and the run's reports were
  still written: the --json result holds both verdicts, and
  ``mtasim report`` turns it into JUnit XML.

The cases, by the issue's numbering:

 3. durations over the documented maximum (36500d, 100 years) are refused
    where they are parsed, at every site; the maximum at every site at
    once, from the last possible epoch, runs clean (under the sanitizer
    build: no overflow anywhere);
 4. addresses over RFC 5321 4.5.3.1.1-3's limits (local part 64, domain
    255, path 256) are refused by the parser; exactly at the limits the
    core queues them.

The others, each in a section of its own below: 2. capture names stay in
their folder; 6. lost output is an error naming the file; 8. the
importer's reassembly; 7. what import writes passes check; 9. mtasim
serve; 10. the smaller ones (--seed's range, the replay line quoted for a
shell, a byte order mark, a scenario that is not a regular file, a
plugin's stdout, a plugin's leak under LeakSanitizer).  Defects 1 and 5
(mtasim report) are test_report_robustness.py's.
"""

import json
import os
import re
import shlex
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim
from tests.drivers.test_live import STEP_TIMEOUT, serve

GOOD = "scenarios/delivery/greylist-retry.scn"
WORLD = REPO_ROOT / "scenarios" / "world.inc"


def contained(mtasim, tmp_path, bad, code, error, *, extra=(), good=GOOD, cwd=None):
    """Run bad (a path) beside the good scenario; check what the module doc says.

    error is a regex for what follows "ERROR " on the hostile file's line;
    returns the completed process."""
    cwd = cwd or REPO_ROOT
    out = tmp_path / "result.json"
    proc = run_mtasim(mtasim, ["--json", str(out), *extra, good, str(bad)], cwd=cwd)
    text = proc.stdout + proc.stderr
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}\n{text}"
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 1, text
    assert re.match(r"ERROR " + error, errors[0]), (error, errors[0])
    assert re.search(rf"^PASS {re.escape(good)}\b", proc.stdout, re.M), text
    result = json.loads(out.read_text())
    verdicts = {run["file"]: run["verdict"] for run in result["runs"]}
    assert verdicts == {good: "pass", str(bad): "error"}, verdicts
    junit = tmp_path / "junit.xml"
    rep = subprocess.run([mtasim, "report", str(out), "--junit", str(junit)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert rep.returncode == 0 and junit.read_text().startswith("<?xml"), rep.stderr
    return proc


def write_scenario(tmp_path, name, text):
    """A scenario file; returns (path, line, col) of the first 'X' placeholder
    (replaced by nothing: the caller's value follows it)."""
    path = tmp_path / f"{name}.scn"
    for lineno, line in enumerate(text.splitlines(), 1):
        col = line.find("@@")
        if col >= 0:
            break
    else:
        lineno, col = 0, -1
    path.write_text(text)
    return path, lineno, col + 1


# ------------------------------------------------------- 3. durations bounded

# Each site where a duration is parsed; @@ marks where it goes.
DURATION_SITES = {
    "run-for": "run for @@",
    "dns-latency": "dns latency @@",
    "dns-jitter": "dns jitter @@",
    "dns-timeout": "dns timeout @@",
    "dns-name-latency": "dns mx1.example.com latency @@",
    "retry-interval": "config retry_interval @@",
    "max-retry-interval": "config max_retry_interval @@",
    "message-expiration": "config message_expiration @@",
    "connect-timeout": "config connect_timeout @@",
    "timeout-dot": "config timeout_dot @@",
    "scan-interval": "config delayed_queue_scan_interval @@",
    "link-latency": "network link 192.0.2.1 198.51.100.10 latency @@",
    "link-jitter": "network link 192.0.2.1 198.51.100.10 jitter @@",
    "connect-latency": "remote 198.51.100.10\n  connect accept latency @@",
    "remote-latency": "remote 198.51.100.10\n  latency @@",
    "remote-jitter": "remote 198.51.100.10\n  jitter @@",
    "close-delay": "remote 198.51.100.10\n  close delay @@",
    "reply-delay": "remote 198.51.100.10\n  rcpt 451 4.7.1 later delay @@",
    "reset-at": "remote 198.51.100.10\n  reset at @@",
    "inject-at": "inject 2 from <a@sender.test> to <b@example.com> at @@",
    "deliver-by": "inject 2 from <a@sender.test> to <b@example.com> deliver-by @@",
    "listen-timeout": "listen 192.0.2.1 timeout @@",
    "client-at": "client 192.0.2.9 at @@\n  quit",
    "client-delay": "client 192.0.2.9\n  delay @@\n  quit",
    "within": "expect message 1 delivered within @@",
}
HEAD = f"scenario hostile\ninclude {WORLD}\ninject 1 from <a@sender.test> to <b@example.com>\n"


@pytest.mark.parametrize("value", ["36501d", "9223372036854775807us"])
@pytest.mark.parametrize("site", sorted(DURATION_SITES))
def test_duration_over_the_maximum(mtasim, tmp_path, site, value):
    bad, line, col = write_scenario(tmp_path, site, HEAD + DURATION_SITES[site] + "\n")
    bad.write_text(bad.read_text().replace("@@", value))
    contained(mtasim, tmp_path, bad, 2,
              rf"{re.escape(str(bad))}:{line}:{col}: .*'{value}' is too long: at most 36500d")


MAXIMA = f"""scenario maxima
# Every duration at the maximum, from the last epoch there is: the sums the
# simulation forms (epoch + at + latency + delays + timeouts) must all fit.
# (The client sends after the run's end: no reply to expect.)
epoch 9999-12-31T23:59:59Z
run for 36500d
dns latency 36500d
dns jitter 36500d
dns timeout 36500d
dns example.com MX 10 mx1.example.com
dns mx1.example.com A 198.51.100.10
dns mx1.example.com latency 36500d
config retry_interval 36500d
config max_retry_interval 36500d
config message_expiration 36500d
config connect_timeout 36500d
config host_failure_retry 36500d
config timeout_banner 36500d
config timeout_rcpt 36500d
config delayed_queue_scan_interval 36500d
config dns_cache_ttl_max 36500d
config throttle_connections 1/36500d
network link 192.0.2.1 198.51.100.10 latency 36500d jitter 36500d
remote 198.51.100.10 name mx1.example.com
  connect accept latency 36500d
  jitter 36500d
  close delay 36500d
  greet 220 hi delay 36500d
  rcpt 451 4.7.1 later delay 36500d
  reset at 36500d when session 3
inject 1 from <a@sender.test> to <bob@example.com> at 36500d deliver-by 36500d
listen 192.0.2.1 timeout 36500d
client 192.0.2.9 at 36500d
  delay 36500d
  send EHLO x
expect message 1 deferred within 36500d
"""


def test_every_duration_at_the_maximum_runs(mtasim, tmp_path):
    path = tmp_path / "maxima.scn"
    path.write_text(MAXIMA)
    proc = run_mtasim(mtasim, [str(path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "runtime error" not in proc.stderr, proc.stderr


# ------------------------------------------------------- 4. address limits

def address_case(local, domain, sender="a@sender.test"):
    return f"inject 2 from <{sender}> to <{local}@{domain}>"


LONG_DOMAIN = ".".join(["d" * 63] * 4)          # 255 octets
ADDRESS_CASES = {
    # id: (inject line, what the error says)
    "domain-256": (address_case("bob", LONG_DOMAIN + "x"), "the path is over 256 octets"),
    "local-65": (address_case("l" * 65, "example.com"), "the local part is over 64 octets"),
    "path-257": (address_case("l" * 60, "d" * 63 + "." + "e" * 63 + "." + "f" * 63 + ".test"),
                 "the path is over 256 octets"),
    "sender-path-257": (address_case("bob", "example.com", sender="s" * 64 + "@" + "d" * 191),
                        "the path is over 256 octets"),
    "sender-local-65": (address_case("bob", "example.com", sender="s" * 65 + "@sender.test"),
                        "the local part is over 64 octets"),
}


@pytest.mark.parametrize("case", sorted(ADDRESS_CASES))
def test_address_over_the_limits(mtasim, tmp_path, case):
    inject, why = ADDRESS_CASES[case]
    bad = tmp_path / f"{case}.scn"
    bad.write_text(HEAD + inject + "\n")
    # The sender's token, or the recipient's.
    col = inject.index("<") + 1 if case.startswith("sender") else inject.index("to <") + 4
    contained(mtasim, tmp_path, bad, 2, rf"{re.escape(str(bad))}:4:{col}: bad (recipient|sender) "
              rf".*{re.escape(why)} \(RFC 5321 4\.5\.3\.1\.[123]\)")


def test_addresses_at_the_limits_are_queued(mtasim, tmp_path):
    """Local part 64, path 256 (an address of 254): parsed and queued."""
    local = "l" * 64
    domain = ".".join(["d" * 63, "e" * 63, "f" * 56, "test"])
    assert len(local) + 1 + len(domain) + 2 == 256
    path = tmp_path / "limits.scn"
    path.write_text(HEAD + address_case(local, domain, sender=local + "@" + domain) + "\n"
                    + "expect message 2 bounced\n")
    proc = run_mtasim(mtasim, [str(path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------- 2. capture names

PCAP_NAMES = {
    # id: (file name, scenario line or None, the capture's expected name)
    "dotdot": ("esc.scn", "scenario ../../x", "_._.._x.pcap"),
    "absolute-like": ("abs.scn", "scenario /tmp/x", "_tmp_x.pcap"),
    "subdir": ("sub.scn", "scenario a/b", "a_b.pcap"),
    "file-name": ("$(id) a\tb\x01.scn", None, "__id__a_b_.pcap"),
    "file-name-dots": ("...scn", None, "_..pcap"),
}


@pytest.mark.parametrize("case", sorted(PCAP_NAMES))
def test_capture_names_stay_inside_the_folder(mtasim, tmp_path, case):
    fname, line, expected = PCAP_NAMES[case]
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    text = (line + "\n" if line else "") + HEAD.split("\n", 1)[1]
    (deep / fname).write_text(text)
    caps = tmp_path / "a" / "b" / "caps"
    out = tmp_path / "result.json"
    proc = run_mtasim(mtasim, ["--json", str(out), "--pcap", "caps/", str(REPO_ROOT / GOOD),
                               fname], cwd=deep)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in caps.iterdir()) == sorted([expected, "greylist-retry.pcap"])
    outside = [p for p in tmp_path.rglob("*.pcap") if p.parent != caps]
    assert outside == [], outside
    assert [r["verdict"] for r in json.loads(out.read_text())["runs"]] == ["pass", "pass"]


# ------------------------------------------------------- 6. lost output

TWO = [GOOD, "scenarios/connect/refused.scn"]


def one_stderr_line(proc, *words):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def passed_both(stdout):
    for scn in TWO:
        assert re.search(rf"^PASS {re.escape(scn)}\b", stdout, re.M), stdout


def verdicts(path):
    return [r["verdict"] for r in json.loads(path.read_text())["runs"]]


def test_trace_to_a_full_device(mtasim, tmp_path):
    out = tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--trace", "/dev/full", "--json", str(out), *TWO], cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_stderr_line(proc, "cannot write trace file /dev/full: No space left on device")
    passed_both(proc.stdout)
    assert verdicts(out) == ["pass", "pass"]


def test_trace_on_a_full_standard_output(mtasim, tmp_path):
    out = tmp_path / "r.json"
    with open("/dev/full", "w") as full:
        proc = subprocess.run([mtasim, "run", "--trace", "-", "--json", str(out), *TWO],
                              cwd=REPO_ROOT, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    one_stderr_line(proc, "standard output: No space left on device")
    assert verdicts(out) == ["pass", "pass"]


def test_standard_output_on_a_full_device(mtasim, tmp_path):
    out, trace = tmp_path / "r.json", tmp_path / "trace.txt"
    with open("/dev/full", "w") as full:
        proc = subprocess.run([mtasim, "run", "--trace", str(trace), "--json", str(out), *TWO],
                              cwd=REPO_ROOT, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    one_stderr_line(proc, "cannot write standard output: No space left on device")
    assert verdicts(out) == ["pass", "pass"]
    assert trace.read_text().count("# scenario ") == 2


def test_json_to_a_full_device(mtasim, tmp_path):
    trace = tmp_path / "trace.txt"
    proc = run_mtasim(mtasim, ["--json", "/dev/full", "--trace", str(trace), *TWO], cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    one_stderr_line(proc, "cannot write /dev/full: No space left on device")
    passed_both(proc.stdout)
    assert trace.read_text().count("# scenario ") == 2


def test_capture_to_a_full_device(mtasim, tmp_path):
    """--pcap DIR/ where one run's capture is a link to /dev/full: that run is
    an error naming the file (exit 2, not an invariant's 3); the other's
    capture, the results and the other verdict are all there."""
    caps = tmp_path / "caps"
    caps.mkdir()
    (caps / "greylist-retry.pcap").symlink_to("/dev/full")
    out = tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--pcap", str(caps) + "/", "--json", str(out), *TWO],
                      cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR ")]
    assert errors == [f"ERROR cannot write {caps}/greylist-retry.pcap: No space left on device"], \
        proc.stdout
    assert re.search(r"^PASS scenarios/connect/refused\.scn\b", proc.stdout, re.M), proc.stdout
    assert verdicts(out) == ["error", "pass"]
    assert (caps / "refused.pcap").stat().st_size > 24


def test_import_output_to_a_full_device(mtasim, tmp_path):
    capture = str(REPO_ROOT / "fixtures" / "captures" / "deliver.pcap")
    proc = subprocess.run([mtasim, "import", capture, "-o", "/dev/full"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    one_stderr_line(proc, "cannot write /dev/full: No space left on device")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([mtasim, "import", capture], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    one_stderr_line(proc, "cannot write standard output: No space left on device")


@pytest.mark.parametrize("cmd", [["check", GOOD], ["help"], ["version"]])
def test_other_commands_on_a_full_standard_output(mtasim, cmd):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([mtasim, *cmd], cwd=REPO_ROOT, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    one_stderr_line(proc, "cannot write standard output: No space left on device")


def test_live_trace_to_a_full_device(mtasim):
    proc = subprocess.run([mtasim, "live", "tests/live/accept.scn", "--timeout", "1",
                           "--remote", "mx1.example.com=127.0.0.1:9",
                           "--trace", "/dev/full"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "mtasim live: cannot write trace file /dev/full: No space left on device" \
        in proc.stderr


# ------------------------------------------------------- 8. reassembly UB

def pcap_frames(data):
    header, frames, off = data[:24], [], 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
        frames.append((sec, frac, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return header, frames


def test_stale_segment_half_the_sequence_space_behind(mtasim, tmp_path):
    """A server segment 2^31 bytes behind the stream: seq_diff() is INT32_MIN,
    whose negation was undefined (caught by the sanitizer build CI runs the
    suite with).  It is a stale retransmission: skipped, the import succeeds
    with the same scenario as without it."""
    src = tmp_path / "src.pcap"
    proc = run_mtasim(mtasim, ["--quiet", "--pcap", str(src), GOOD], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header, frames = pcap_frames(src.read_bytes())
    server = [i for i, (_, _, f) in enumerate(frames)
              if f[6:12] == b"\x02\0\0\0\0\x02" and len(f) > 54]
    i = server[-1]
    sec, frac, frame = frames[i]
    seq = struct.unpack(">I", frame[38:42])[0]
    stale = frame[:38] + struct.pack(">I", (seq + len(frame) - 54 - 2 ** 31) % 2 ** 32) + frame[42:]
    frames.insert(i + 1, (sec, frac, stale))
    out = bytearray(header)
    for sec, frac, f in frames:
        out += struct.pack("<IIII", sec, frac, len(f), len(f)) + f
    hostile = tmp_path / "hostile.pcap"
    hostile.write_bytes(bytes(out))
    want = subprocess.run([mtasim, "import", str(src)], capture_output=True, text=True,
                          timeout=60, check=False)
    got = subprocess.run([mtasim, "import", str(hostile)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert got.returncode == 0 and "runtime error" not in got.stderr, got.stderr
    assert got.stdout.replace("hostile", "src") == want.stdout


# ------------------------------------------------------- 7. import writes what parses

def import_capture(mtasim, capture, out):
    return subprocess.run([mtasim, "import", str(capture), "-o", str(out)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_capture_after_2038_has_the_epoch_tshark_reads(mtasim, tmp_path):
    """Classic pcap seconds are unsigned 32-bit: 2^31 is 2038-01-19T03:14:08Z as
    tshark reads it (libpcap's signed reading gave 1901, an epoch the parser
    refuses, after an exit 0)."""
    header, frames = pcap_frames((REPO_ROOT / "fixtures" / "captures" / "deliver.pcap").read_bytes())
    first = frames[0][0]
    out = bytearray(header)
    for sec, frac, f in frames:
        out += struct.pack("<IIII", sec - first + 2 ** 31, frac, len(f), len(f)) + f
    capture = tmp_path / "late.pcap"
    capture.write_bytes(bytes(out))
    tshark = subprocess.run(["tshark", "-r", str(capture), "-c", "1", "-T", "fields",
                             "-e", "frame.time_epoch"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert tshark.stdout.startswith("2147483648"), tshark.stdout + tshark.stderr
    scn = tmp_path / "late.scn"
    proc = import_capture(mtasim, capture, scn)
    assert proc.returncode == 0, proc.stderr
    assert "\nepoch 2038-01-19T03:14:08Z\n" in scn.read_text()
    check = subprocess.run([mtasim, "check", str(scn)], capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


TWO_MESSAGES = f"""scenario two
include {WORLD}
remote 198.51.100.10 name mx1.example.com
inject 1 from <alice@sender.test> to <bob@example.com>
inject 2 from <carol@sender.test> to <dave@example.com>
"""


@pytest.mark.parametrize("damage", [b"<carol,sender.test>", b"<" + b"c" * 17 + b">"])
def test_left_out_transaction_takes_its_expectations(mtasim, tmp_path, damage):
    """A transaction whose sender a scenario cannot name is not injected; the
    lines of its session are not expected either, so the imported scenario
    passes when run (it expected a second session that never came)."""
    src = tmp_path / "two.scn"
    src.write_text(TWO_MESSAGES)
    capture = tmp_path / "two.pcap"
    proc = run_mtasim(mtasim, ["--quiet", "--pcap", str(capture), str(src)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    data = capture.read_bytes()
    assert len(damage) == len(b"<carol@sender.test>")
    capture.write_bytes(data.replace(b"<carol@sender.test>", damage))
    scn = tmp_path / "imported.scn"
    proc = import_capture(mtasim, capture, scn)
    assert proc.returncode == 0, proc.stderr
    text = scn.read_text()
    assert "1 transaction(s) with addresses a scenario cannot name" in text
    assert "carol" not in text.split("\nscenario ", 1)[1]
    run = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload=b""):
    """An Ethernet/IPv4/TCP frame (checksums zero: the importer does not read them)."""
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, bytes(src), bytes(dst))
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


def smtp_capture(dialogue, start=1600000000):
    """A classic pcap of one SMTP session: handshake, then (from_client, bytes)
    segments each acknowledged, then FIN both ways."""
    cli, srv, cport = (192, 0, 2, 1), (198, 51, 100, 10), 40000
    cseq, sseq, t, frames = 1000, 5000, start * 1000000, []

    def add(frame):
        nonlocal t
        t += 1000
        frames.append((t // 1000000, t % 1000000, frame))
    add(tcp_frame(cli, srv, cport, 25, cseq, 0, 0x02))
    add(tcp_frame(srv, cli, 25, cport, sseq, cseq + 1, 0x12))
    cseq, sseq = cseq + 1, sseq + 1
    add(tcp_frame(cli, srv, cport, 25, cseq, sseq, 0x10))
    for from_client, data in dialogue:
        if from_client:
            add(tcp_frame(cli, srv, cport, 25, cseq, sseq, 0x18, data))
            cseq += len(data)
            add(tcp_frame(srv, cli, 25, cport, sseq, cseq, 0x10))
        else:
            add(tcp_frame(srv, cli, 25, cport, sseq, cseq, 0x18, data))
            sseq += len(data)
            add(tcp_frame(cli, srv, cport, 25, cseq, sseq, 0x10))
    add(tcp_frame(cli, srv, cport, 25, cseq, sseq, 0x11))
    add(tcp_frame(srv, cli, 25, cport, sseq, cseq + 1, 0x11))
    add(tcp_frame(cli, srv, cport, 25, cseq + 1, sseq + 1, 0x10))
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for sec, usec, f in frames:
        out += struct.pack("<IIII", sec, usec, len(f), len(f)) + f
    return bytes(out)


@pytest.mark.parametrize("sender", ["l" * 65 + "@sender.test", "s" * 60 + "@" + "d" * 200])
def test_import_leaves_out_addresses_over_the_core_limits(mtasim, tmp_path, sender):
    """A 65-octet local part or a path over 256 octets (RFC 5321 4.5.3.1.1, .3)
    leaves its transaction out, instead of an inject line the parser refuses."""
    dialogue = [(0, b"220 mx ESMTP\r\n"), (1, b"EHLO c\r\n"), (0, b"250 mx\r\n"),
                (1, f"MAIL FROM:<{sender}>\r\n".encode()), (0, b"250 ok\r\n"),
                (1, b"RCPT TO:<bob@example.com>\r\n"), (0, b"250 ok\r\n"),
                (1, b"QUIT\r\n"), (0, b"221 bye\r\n")]
    capture = tmp_path / "long.pcap"
    capture.write_bytes(smtp_capture(dialogue))
    scn = tmp_path / "long.scn"
    proc = import_capture(mtasim, capture, scn)
    assert proc.returncode == 0, proc.stderr
    assert "1 transaction(s) with addresses a scenario cannot name" in scn.read_text()
    check = subprocess.run([mtasim, "check", str(scn)], capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


# ------------------------------------------------------- 9. mtasim serve

def read_all(sock, limit=10.0):
    """Everything until the server closes (or limit seconds pass)."""
    sock.settimeout(limit)
    out = b""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        if not data:
            break
        out += data
    return out


def serve_scenario(tmp_path, body=""):
    scn = tmp_path / "serve.scn"
    scn.write_text("scenario serve-test\nremote 198.51.100.10 name mx.test\n" + body)
    return scn


def test_serve_answers_commands_sent_before_the_fin(mtasim, tmp_path):
    """RFC 9293 3.6: the client's FIN closes its direction only; the commands
    it sent before are answered, then the server closes."""
    scn = serve_scenario(tmp_path, "  rcpt 250 2.1.5 slow ok delay 300ms\n")
    with serve(mtasim, scn, "--once") as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as c:
            banner = c.recv(4096)
            c.sendall(b"EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\n"
                      b"RCPT TO:<b@example.com>\r\nNOOP\r\n")
            c.shutdown(socket.SHUT_WR)
            got = (banner + read_all(c)).decode()
        proc.communicate(timeout=STEP_TIMEOUT)
    lines = got.splitlines()
    assert lines[0] == "220 mx.test ESMTP mtasim", got
    assert "250 2.1.0 Ok" in lines and "250 2.1.5 slow ok" in lines, got
    assert lines[-1] == "250 2.0.0 Ok", got            # the NOOP's, the last command's


def test_serve_idle_session_times_out(mtasim, tmp_path):
    """RFC 5321 4.5.3.2.7: a session idle past the server timeout (300 s by
    default; 1 s here) gets 421 and is closed, freeing its slot."""
    scn = serve_scenario(tmp_path)
    with serve(mtasim, scn, "--once", "--idle-timeout", "1") as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as c:
            t0 = time.monotonic()
            got = read_all(c, limit=15).decode()
            took = time.monotonic() - t0
        proc.communicate(timeout=STEP_TIMEOUT)
    assert got.splitlines() == ["220 mx.test ESMTP mtasim",
                                "421 4.4.2 mx.test Error: timeout exceeded"], got
    assert 0.9 < took < 10, took


def test_serve_idle_timeout_usage(mtasim, tmp_path):
    scn = serve_scenario(tmp_path)
    proc = subprocess.run([mtasim, "serve", str(scn), "--listen", "127.0.0.1:0",
                           "--idle-timeout", "0"], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 2
    assert "--idle-timeout wants seconds" in proc.stderr


@pytest.mark.parametrize("command,reply", [
    (b"FROB x", "500 5.5.2 Error: command not recognized"),
    (b"VRFY bob", "502 5.5.1 Error: command not implemented"),
    (b"EHLO a\0b", "501 5.5.2 Error: NUL character in the command's argument"),
    (b"MAIL FROM:<a\0@sender.test>", "501 5.5.2 Error: NUL character in the command's argument"),
])
def test_serve_unknown_commands_and_nul_bytes(mtasim, tmp_path, command, reply):
    """RFC 5321 4.2.4: 500 for a command not recognized, 502 for one recognized
    but not implemented; 4.1.2: no NUL in a domain or path (501).  The
    simulated remote answers alike (tests/unit/test_remote.c)."""
    scn = serve_scenario(tmp_path)
    with serve(mtasim, scn, "--once") as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as c:
            banner = c.recv(4096)
            c.sendall(b"EHLO client.test\r\n" + command + b"\r\nQUIT\r\n")
            got = (banner + read_all(c)).decode(errors="replace")
        proc.communicate(timeout=STEP_TIMEOUT)
    lines = got.splitlines()
    assert lines[-2:] == [reply, "221 2.0.0 Bye"], got


def test_serve_trace_to_a_full_device(mtasim, tmp_path):
    scn = serve_scenario(tmp_path)
    with serve(mtasim, scn, "--once", "--trace", "/dev/full") as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as c:
            c.recv(4096)
            c.sendall(b"QUIT\r\n")
            read_all(c)
        _, err = proc.communicate(timeout=STEP_TIMEOUT)
    assert proc.returncode == 2, err
    assert "mtasim serve: cannot write trace file /dev/full: No space left on device" in err


# ------------------------------------------------------- 10. the smaller ones

@pytest.mark.parametrize("value", ["18446744073709551616", "99999999999999999999999", " 5",
                                   "+5", "-1", "0x10", ""])
def test_seed_out_of_range_is_refused(mtasim, tmp_path, value):
    """--seed takes what the scenario's seed directive takes, 0 to 2^64-1, in
    decimal digits: 2^64 used to run silently as 2^64-1 (strtoull clamps)."""
    proc = run_mtasim(mtasim, ["--seed", value, GOOD], cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == ("mtasim run: --seed wants an integer from 0 to "
                                   f"18446744073709551615, not '{value}'"), proc.stderr
    assert "PASS" not in proc.stdout


def test_seed_at_the_maximum_runs(mtasim):
    proc = run_mtasim(mtasim, ["--seed", "18446744073709551615", GOOD], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"^PASS {re.escape(GOOD)}  seed 18446744073709551615 ", proc.stdout, re.M)


# A file name a shell would expand: a command substitution and a quote.
HOSTILE_NAME = "$(touch pwned)'q.scn"


@pytest.mark.parametrize("seeds", [(), ("--seeds", "1..2")])
def test_replay_line_is_shell_quoted(mtasim, tmp_path, seeds):
    """The replay line of a failed run, pasted into a shell, runs that file:
    the name is quoted as shlex.quote does (the reports' rule), so
    "$(touch pwned)" is part of the name, never a command."""
    scn = tmp_path / HOSTILE_NAME
    scn.write_text(f"scenario quoted\ninclude {WORLD}\nremote 198.51.100.10\n"
                   "inject 1 from <a@sender.test> to <b@example.com>\n"
                   "expect message 1 bounced\n")
    proc = run_mtasim(mtasim, [*seeds, HOSTILE_NAME], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    replays = re.findall(r"^ *replay: (mtasim run .*)$", proc.stdout, re.M)
    assert len(replays) == (4 if seeds else 1), proc.stdout     # per run, then the summary
    for seed, line in zip([1, 2, 1, 2] if seeds else [1], replays):
        assert line == f"mtasim run --seed {seed} --trace - '$(touch pwned)'\"'\"'q.scn'", line
        assert shlex.split(line)[-1] == HOSTILE_NAME
        pasted = subprocess.run(["sh", "-c", f"{shlex.quote(str(mtasim))}{line[len('mtasim'):]}"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60,
                                check=False)
        assert not (tmp_path / "pwned").exists(), "the pasted replay line ran a command"
        assert pasted.returncode == 1, pasted.stdout + pasted.stderr
        assert f"# scenario quoted  file {HOSTILE_NAME}  seed {seed}" in pasted.stdout


def test_byte_order_mark_is_not_a_directive(mtasim, tmp_path):
    """A UTF-8 byte order mark, as some editors write, used to be an invisible
    'unknown directive' at 1:1; the file now runs as without it."""
    text = (REPO_ROOT / GOOD).read_text().replace("include ../world.inc", f"include {WORLD}")
    plain, bom = tmp_path / "plain.scn", tmp_path / "bom.scn"
    plain.write_text(text)
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    digests = []
    for scn in (plain, bom):
        proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        digests.append(re.search(r"digest (\w+)", proc.stdout).group(1))
    assert digests[0] == digests[1]


def test_byte_order_mark_only_at_the_start(mtasim, tmp_path):
    """Only the file's first three bytes may be a byte order mark: elsewhere
    it is text, and an unknown directive at its line's column 1."""
    bad = tmp_path / "late-bom.scn"
    bad.write_bytes(b"scenario late\n\xef\xbb\xbfscenario again\n")
    contained(mtasim, tmp_path, bad, 2, re.escape(f"{bad}:2:1: unknown directive"))


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_scenario_that_is_not_a_regular_file(mtasim, tmp_path, kind):
    """A FIFO as a scenario used to block the whole command waiting for a
    writer (and /dev/zero would never end): only a regular file is read,
    opened without blocking; the others of the run still run."""
    if kind == "fifo":
        bad = tmp_path / "pipe.scn"
        os.mkfifo(bad)
        why = "not a regular file"
    elif kind == "directory":
        bad = tmp_path / "dir.scn"
        bad.mkdir()
        why = "is a directory"
    else:
        bad, why = Path("/dev/zero"), "not a regular file"
    contained(mtasim, tmp_path, bad, 2, re.escape(f"{bad}:1:1: cannot open scenario: {why}"))


def test_plugin_stdout_stays_out_of_the_trace(mtasim, tmp_path):
    """What a plugin prints (stdio or write(2) to descriptor 1) is a
    diagnostic: on mtasim's standard error, never in a "--trace -"."""
    scn = tmp_path / "print.scn"
    scn.write_text(f"scenario print\ninclude {WORLD}\nplugin buggy.so:print@log_delivery_v1\n"
                   "remote 198.51.100.10 name mx1.example.com\n"
                   "inject 1 from <alice@sender.test> to <bob@example.com>\n"
                   "expect message 1 delivered\n")
    proc = run_mtasim(mtasim, ["--trace", "-", str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "buggy:" not in proc.stdout, proc.stdout
    assert "hook log_delivery_v1 msg=1" in proc.stdout
    assert "buggy: printf on standard output\n" in proc.stderr, proc.stderr
    assert "buggy: write(2) to descriptor 1\n" in proc.stderr, proc.stderr


def asan_binary():
    """The AddressSanitizer build (as test_faketime finds it); never skipped."""
    asan = Path(os.environ.get("MTASIM_ASAN_BIN") or REPO_ROOT / "build-asan" / "sim" / "mtasim")
    if not asan.is_file():
        pytest.fail(f"no AddressSanitizer build at {asan}: sh tests/run-tests.sh builds it "
                    "(or: MTASIM_BUILD=build-asan MTASIM_SANITIZE=1 sh tests/build.sh)",
                    pytrace=False)
    return asan


def test_plugin_leak_is_the_plugins(tmp_path):
    """Under LeakSanitizer a plugin's leak used to be found at the child's exit,
    after its result: the core's "internal error" (3).  The run's process now
    checks once the run is over and names the plugins: exit 4."""
    scn = tmp_path / "leak.scn"
    scn.write_text(f"scenario leak\ninclude {WORLD}\nplugin buggy.so:leak@log_delivery_v1\n"
                   "remote 198.51.100.10 name mx1.example.com\n"
                   "inject 1 from <alice@sender.test> to <bob@example.com>\n"
                   "expect message 1 delivered\n")
    out = tmp_path / "result.json"
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
    proc = subprocess.run([asan_binary(), "run", "--json", str(out), GOOD, str(scn)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env=env, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 4, text
    assert f"FAIL {scn}  seed 1  (plugin leaked memory)" in proc.stdout, text
    assert ("  a plugin leaked memory (LeakSanitizer's report above names the allocations; "
            "plugins loaded: buggy.so)") in proc.stdout, text
    assert "Direct leak of 100 byte(s) in 1 object(s)" in proc.stderr, text
    assert re.search(rf"^PASS {re.escape(GOOD)}\b", proc.stdout, re.M), text
    verdicts = {run["file"]: (run["verdict"], run["exit_code"])
                for run in json.loads(out.read_text())["runs"]}
    assert verdicts == {GOOD: ("pass", 0), str(scn): ("plugin", 4)}, verdicts


# ------------------------------------------------------- found by fuzz_smtp_server

def test_bounce_to_a_sender_without_a_local_part(mtasim, tmp_path):
    """A sender "<@sender.test>" (an '@', no local part: no mailbox by RFC
    5321 4.1.2) whose message bounced: its DSN could not be queued and the
    run ended in an internal error (3).  No DSN is made, and the trace says
    why, as for a sender without a domain."""
    scn = tmp_path / "at-sender.scn"
    scn.write_text(f"scenario at-sender\ninclude {WORLD}\nremote 198.51.100.10\n"
                   "  rcpt 550 5.1.1 no such user\n"
                   "inject 1 from <@sender.test> to <bob@example.com>\n"
                   "expect message 1 bounced\n"
                   "expect trace in order\n  queue no_dsn msg=1 reason~\"no local part\"\n"
                   "expect no dsn for message 1\n")
    proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_inbound_addresses_the_queue_cannot_take(mtasim, tmp_path):
    """The inbound server took MAIL FROM:<@b.test> (found by fuzz_smtp_server:
    the message's bounce then ended the run in an internal error) and
    recipients over RFC 5321 4.5.3.1's limits, which the queue refused only
    after the data.  Both are refused at their command, with 501."""
    long_local = "l" * 65
    scn = tmp_path / "inbound.scn"
    scn.write_text(f"""scenario inbound-addresses
listen 192.0.2.1:25

client 203.0.113.50
  expect 220
  send EHLO client.test
  expect 250
  send MAIL FROM:<@b.test>
  expect 501
  send MAIL FROM:<a@>
  expect 501
  send MAIL FROM:<a@client.test>
  expect 250
  send RCPT TO:<@example.com>
  expect 501
  send RCPT TO:<{long_local}@example.com>
  expect 501
  send RCPT TO:<b@example.com>
  expect 250
  send QUIT
  expect 221

expect trace in order
  inbound reply line="501 5.1.7 Error: bad sender address syntax"
  inbound reply line="501 5.1.7 Error: bad sender address syntax"
  inbound reply line="250 2.1.0 Ok"
  inbound reply line="501 5.1.3 Error: bad recipient address syntax"
  inbound reply line="501 5.1.3 Error: bad recipient address syntax"
  inbound reply line="250 2.1.5 Ok"
expect never trace client unexpected
""")
    proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------- found by fuzz_run

def test_recipient_given_twice_is_queued_once(mtasim, tmp_path):
    """A message for <a@example.com> twice, the copies in different
    transactions (max_recipients_per_transaction 2), was delivered twice:
    an invariant violation (3).  Queued once, as Postfix's cleanup(8)
    eliminates duplicate envelope recipients: the domain in any case, the
    local part exact (RFC 5321 2.4), so <A@example.com> is another."""
    scn = tmp_path / "twice.scn"
    scn.write_text(f"""scenario twice
include {WORLD}
config max_recipients_per_transaction 2
remote 198.51.100.10 name mx1.example.com
inject 1 from <alice@sender.test> to <a@example.com>, <b@example.com>, <a@EXAMPLE.com>, <A@example.com>, <a@example.com>
expect trace in order
  queue inject msg=1 rcpts=3
  queue done msg=1 delivered=3 failed=0
expect count trace smtp send line="RCPT TO:<a@example.com>" = 1
expect count trace smtp send line="RCPT TO:<A@example.com>" = 1
expect count trace smtp send line~"^RCPT TO" = 3
expect message 1 delivered
""")
    proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------- regular expressions that explode

def test_nested_repetitions_are_refused_before_regcomp(mtasim, tmp_path):
    """glibc's regcomp() writes out every count of an interval and nests the
    copies: "((a{1,255}){1,255}){1,255}" in one expectation took 23.8 GB and
    was killed by the kernel (65 s) before this check; "(a{1,255}){1,255}"
    took 160 MB.  An ERE whose repetitions stand for more than 10,000
    characters is refused at its column, exit 2, the other scenario still
    run (sim/lang/parse_token.c, regex_expanded_size); ordinary and
    moderately large ones still compile, in expectations and in a remote's
    "when rcpt ~"."""
    import resource

    # The old binary would take the machine down: 2 GB of address space - but
    # not for a sanitizer build, whose shadow memory alone reserves terabytes
    # (the check is the same code there).
    sanitized = b"__asan_init" in Path(mtasim).read_bytes()

    def limit_memory():
        if not sanitized:
            resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    cases = {
        'expect never trace dns query name~"((a{1,255}){1,255}){1,255}"\n': (2, 35),
        'expect never trace dns query name~"x(a{1,255}){1,255}"\n': (2, 35),
        'expect never trace dns query name~"((((((a{1,5}){1,5}){1,5}){1,5}){1,5}){1,5})"\n': (2, 35),
        'remote 192.0.2.1\n  rcpt 550 no when rcpt ~ "^(b{2,200}){100,}$"\n': (3, 27),
    }
    for i, (text, (line, col)) in enumerate(cases.items()):
        bad = tmp_path / f"regex{i}.scn"
        bad.write_text(f"scenario regex{i}\n{text}")
        proc = subprocess.run([mtasim, "run", GOOD, str(bad)], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=120, preexec_fn=limit_memory, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, f"{text!r}: exit {proc.returncode}\n{out[-2000:]}"
        assert re.search(rf"^ERROR {re.escape(str(bad))}:{line}:{col}: bad regular expression '.*': "
                         r"its repetitions stand for more than 10000 characters", out, re.M), out
        assert re.search(rf"^PASS {re.escape(GOOD)}\b", out, re.M), out
    fine = tmp_path / "fine.scn"
    fine.write_text("scenario fine\n"
                    'remote 192.0.2.1\n  rcpt 550 no when rcpt ~ "^(x{1,100}y){1,90}$"\n'
                    'expect never trace dns query name~"(a{1,100}){1,100}"\n'
                    'expect never trace dns query name~"^mx[0-9]+\\.(a|b)+\\.test$"\n'
                    'expect never trace dns query name~".{1,255}z{3}"\n')
    proc = subprocess.run([mtasim, "check", str(fine)], capture_output=True, text=True,
                          timeout=120, preexec_fn=limit_memory, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
