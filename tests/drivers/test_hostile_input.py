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
"""

import json
import re
import socket
import struct
import subprocess
import time

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
  expect 250
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
