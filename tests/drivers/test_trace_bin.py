"""The binary trace (--trace-format bin) and ``mtasim trace show``.

docs/trace-format.md: the binary trace is an output format only.  The digest
stays the SHA-256 of the text trace, so ``trace show`` must give back that
text byte for byte.  Checked here:

* every bundled scenario: the text ``--trace`` file equals ``trace show`` of
  the binary one, both with the records kept (``--json``) and streamed (no
  ``--json``), and each run's lines hash to the digest ``--json`` reports;
* ``mtasim bench --trace F --trace-format bin`` shows as the text bench trace;
* a small binary trace cut at every byte, and bit flips, give one line
  ``FILE:RECORD:BYTE: message`` and exit 2 (never 0, never a crash), the
  text before the bad record on stdout, and RECORD/BYTE where the cut is;
* files made by hand from the byte layout the document gives: a valid one
  renders as the document says, and each bound the reader enforces is
  reported at the byte that breaks it;
* an output that cannot be written is exit 2, never 0.
"""

import hashlib
import json
import re
import subprocess

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

SCENARIOS = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "scenarios").rglob("*.scn")
                   if not any(part.startswith(".") for part in p.relative_to(REPO_ROOT).parts))
SMALL = "scenarios/mailerq/lifecycle.scn"       # the smallest bundled trace
ERROR = re.compile(r"^(.*):(\d+):(\d+): (.+)\n$")
MAGIC = b"\x89MTB\r\n\x1a\n"


def show(mtasim, data, *args):
    """``mtasim trace show - ARGS`` with data on stdin: the CompletedProcess (bytes)."""
    return subprocess.run([mtasim, "trace", "show", "-", *args], input=data, capture_output=True,
                          timeout=60, check=False)


def text_runs(text):
    """[(header line, bytes of the records after it)] of a text --trace file."""
    runs = []
    for line in text.splitlines(keepends=True):
        if line.startswith(b"# scenario "):
            runs.append((line, []))
        else:
            assert runs, line
            runs[-1][1].append(line)
    return [(header, b"".join(lines)) for header, lines in runs]


def test_every_scenario_shows_as_its_text_trace(mtasim, tmp_path):
    text, kept, streamed = tmp_path / "t.txt", tmp_path / "kept.bin", tmp_path / "streamed.bin"
    res = tmp_path / "r.json"
    # One invocation per format over every scenario (not one per scenario).
    for args in (["--trace", str(text), "--json", str(res)],
                 ["--trace", str(kept), "--trace-format", "bin", "--json", str(tmp_path / "k.json")],
                 ["--trace", str(streamed), "--trace-format", "bin"]):
        proc = run_mtasim(mtasim, ["--quiet", *args, *SCENARIOS], cwd=REPO_ROOT, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    want = text.read_bytes()
    for binary in (kept, streamed):
        data = binary.read_bytes()
        assert data.startswith(MAGIC) and len(data) < len(want) * 0.6, (binary, len(data))
        proc = show(mtasim, data)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == want, binary.name
    runs = json.loads(res.read_text())["runs"]
    texts = text_runs(want)
    assert [r["file"] for r in runs] == SCENARIOS and len(texts) == len(SCENARIOS)
    for run, (header, body) in zip(runs, texts):
        assert header.startswith(f"# scenario {run['scenario']}  file {run['file']}".encode())
        assert hashlib.sha256(body).hexdigest() == run["digest"], run["file"]


def test_bench_binary_trace_shows_as_the_text(mtasim, tmp_path):
    common = [mtasim, "bench", "--messages", "300", "--domains", "20", "--hours", "2", "--runs", "1"]
    text, binary = tmp_path / "b.txt", tmp_path / "b.bin"
    for args in (["--trace", str(text)], ["--trace", str(binary), "--trace-format", "bin"]):
        proc = subprocess.run(common + args, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    want = text.read_bytes()
    assert want.count(b"\n") > 1000
    out = tmp_path / "shown.txt"
    proc = subprocess.run([mtasim, "trace", "show", str(binary), "-o", str(out)],
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert out.read_bytes() == want


@pytest.fixture(scope="module")
def small(mtasim, tmp_path_factory):
    """(binary trace, its text) of the smallest bundled scenario."""
    d = tmp_path_factory.mktemp("small")
    for fmt in ("text", "bin"):
        proc = run_mtasim(mtasim, ["--trace", str(d / fmt), "--trace-format", fmt, SMALL],
                          cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return (d / "bin").read_bytes(), (d / "text").read_bytes()


def bad(proc, text, exact=True):
    """(RECORD, BYTE, message) of a rejected file; checks the exit, the one
    stderr line, and that stdout holds exactly the lines before RECORD (with
    exact clear, as many lines: a flipped length changes what they hold)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    m = ERROR.match(proc.stderr.decode())
    assert m and m.group(1) == "-", proc.stderr
    record, byte = int(m.group(2)), int(m.group(3))
    lines = text.splitlines(keepends=True)
    assert 1 <= record <= len(lines) + 1 and byte >= 1
    if exact:
        assert proc.stdout == b"".join(lines[:record - 1]), (record, proc.stdout[-200:])
    else:
        assert proc.stdout.count(b"\n") == record - 1, (record, proc.stdout[-200:])
    return record, byte, m.group(4)


def test_cut_at_every_byte(mtasim, small):
    data, text = small
    assert show(mtasim, data).stdout == text
    start = {}                              # RECORD -> file offset its bytes begin at
    for k in range(len(data)):
        record, byte, msg = bad(show(mtasim, data[:k]), text)
        assert msg.startswith("truncated") or (k == 0 and msg.startswith("empty file")), (k, msg)
        # The missing byte is the file's byte k + 1: BYTE counts from where
        # RECORD's bytes begin, the same place for every cut inside it.
        assert start.setdefault(record, k - byte + 1) == k - byte + 1, (k, record, byte)
    assert start[1] == 0
    # Each line's bytes begin where the one before ended: a cut right there is byte 1.
    assert sorted(start) == list(range(1, len(text.splitlines()) + 2))
    for record, offset in start.items():
        assert bad(show(mtasim, data[:offset]), text)[:2] == (record, 1)


def test_bit_flips_are_clean(mtasim, small):
    data, text = small
    rejected = 0
    for bit in range(0, len(data) * 8, 5):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        proc = show(mtasim, bytes(flipped))
        assert proc.returncode in (0, 2), (bit, proc.returncode, proc.stderr)
        if proc.returncode == 2:
            bad(proc, text, exact=False)
            rejected += 1
        else:
            assert proc.stderr == b""
    assert rejected > 0
    # Flips that must be caught, and where.
    for offset, want in ((0, (1, 1, "not a binary trace")), (8, (1, 9, "binary trace version")),
                         (len(data) - 1, (len(text.splitlines()) + 1, 1, "block type 0x23"))):
        flipped = bytearray(data)
        flipped[offset] ^= 1
        record, byte, msg = bad(show(mtasim, bytes(flipped)), text)
        assert (record, byte) == want[:2] and msg.startswith(want[2]), (offset, record, byte, msg)
    record, byte, msg = bad(show(mtasim, data + b"\x22"), text)
    # The end block is byte 1 of the (lineless) bytes after the last line.
    assert (record, byte, msg) == (len(text.splitlines()) + 1, 2, "data after the end block")
    # A text trace is not a binary one.
    assert bad(show(mtasim, text), b"")[2].startswith("not a binary trace")


def uv(v):
    """LEB128 of v >= 0."""
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zz(v):
    return uv((v << 1) ^ (v >> 63) if v < 0 else v << 1)


def new(s):
    return b"\x00" + uv(len(s)) + s


HEAD = MAGIC + b"\x01"
EPOCH = 1585180800 * 1000000
RUN = b"\x20" + zz(EPOCH)


def test_a_file_made_by_hand_renders_as_documented(mtasim):
    rec1 = (b"\x02" + zz(1500000) + new(b"queue") + new(b"delivered")
            + new(b"msg") + b"\x03" + zz(-7)                 # number, its decimal text
            + new(b"why") + b"\x00" + uv(5) + b"a b=c")      # text that must be quoted
    rec2 = (b"\x01" + zz(3600 * 1000000) + b"\x02" + b"\x01" + uv(4) + b"lit!"
            + b"\x04" + b"\x01" + zz(-10) + uv(16) + b"CONN_ERR_CONNECT")
    data = HEAD + b"\x21" + uv(5) + b"# hi!" + RUN + rec1 + rec2 + b"\x22"
    proc = show(mtasim, data)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (b"# hi!\n"
                           b"00:00:01.500000 queue delivered msg=-7 why=\"a b=c\"\n"
                           b"01:00:01.500000 queue lit! msg=CONN_ERR_CONNECT\n")


@pytest.mark.parametrize("body, where, message", [
    (b"\x00" + zz(0) + new(b"k") + new(b"n"), (1, 10), "a record before any run block"),
    (RUN + b"\x00" + zz(0) + b"\x02", (1, 21), "string id 0 used before it is defined"),
    (RUN + b"\x00" + zz(0) + b"\x00" + uv(257) + b"x" * 257, (1, 22), "an interned string of 257"),
    (RUN + b"\x00" + zz(0) + b"\x01" + uv(16 * 2**20 + 1), (1, 22), "a literal string of 16777217"),
    (RUN + b"\x00" + zz(0) + new(b"a\x00b"), (1, 21), "a kind, name or key holds a NUL byte"),
    (RUN + b"\x01" + zz(0) + new(b"k") + new(b"n") + new(b"f") + b"\x04", (1, 30),
     "field flags 0x04 unknown"),
    (RUN + b"\x01" + zz(0) + new(b"k") + new(b"n") + new(b"f") + b"\x02", (1, 30),
     "field flags 0x02 unknown"),
    (RUN + b"\x00" + b"\xff" * 10 + b"\x01", (1, 20), "varint longer than 64 bits"),
    (RUN + b"\x00" + zz(2**62) + new(b"k") + new(b"n") + b"\x00" + zz(2**62), (2, 2),
     "time out of range"),
    # Each step fits, the distance from the epoch does not (fuzz_trace_bin
    # found the renderer's overflow on such a file).
    (b"\x20" + zz(-2**62 - 2**61) + b"\x00" + zz(2**62) + new(b"k") + new(b"n") + b"\x00"
     + zz(2**62 + 2**61) + b"\x02\x03", (2, 2), "time out of range"),
    (b"\x20" + zz(2**62) + b"\x00" + zz(-2**63) + new(b"k") + new(b"n"), (1, 22),
     "time out of range"),                  # the distance is INT64_MIN: no negation
    (RUN + b"\x11", (1, 19), "block type 0x11 unknown"),
])
def test_each_bound_is_reported_where_it_breaks(mtasim, body, where, message):
    proc = show(mtasim, HEAD + body + b"\x22")
    assert proc.returncode == 2
    m = ERROR.match(proc.stderr.decode())
    assert m and (int(m.group(2)), int(m.group(3))) == where and m.group(4).startswith(message), \
        proc.stderr


def test_at_most_65536_interned_strings_a_run(mtasim):
    recs = b"".join(b"\x00" + zz(0) + new(b"k%d" % i) + b"\x02" for i in range(65536))
    proc = show(mtasim, HEAD + RUN + recs + b"\x22")
    assert proc.returncode == 0 and proc.stdout.count(b"\n") == 65536, proc.stderr
    proc = show(mtasim, HEAD + RUN + recs + b"\x00" + zz(0) + new(b"one more"))
    m = ERROR.match(proc.stderr.decode())
    assert proc.returncode == 2 and m and m.group(2, 3) == ("65537", "3"), proc.stderr
    assert m.group(4) == "more than 65536 interned strings in a run"
    # A run block starts the table afresh.
    proc = show(mtasim, HEAD + RUN + recs + RUN + b"\x00" + zz(0) + new(b"k") + b"\x02\x22")
    assert proc.returncode == 0 and proc.stdout.endswith(b" k k\n"), proc.stderr[-300:]


def test_outputs_that_cannot_be_written(mtasim, small, tmp_path):
    data, _ = small
    src = tmp_path / "t.bin"
    src.write_bytes(data)
    proc = subprocess.run([mtasim, "trace", "show", str(src), "-o", "/dev/full"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "cannot write /dev/full" in proc.stderr, proc.stderr
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([mtasim, "trace", "show", str(src)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "cannot write" in proc.stderr, proc.stderr
    proc = run_mtasim(mtasim, ["--trace", "/dev/full", "--trace-format", "bin", SMALL],
                      cwd=REPO_ROOT)
    assert proc.returncode == 2 and "cannot write trace file /dev/full" in proc.stderr, proc.stderr
    proc = subprocess.run([mtasim, "bench", "--messages", "10", "--domains", "2", "--runs", "1",
                           "--trace", "/dev/full", "--trace-format", "bin"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "cannot write /dev/full" in proc.stderr, proc.stderr


@pytest.mark.parametrize("argv", [["run", "--trace-format", "xml", SMALL],
                                  ["bench", "--trace-format", "xml"],
                                  ["trace", "show"], ["trace", "list", "x"],
                                  ["trace", "show", "/nonexistent.bin"]])
def test_usage_errors(mtasim, argv):
    proc = subprocess.run([mtasim, *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("mtasim "), proc.stderr


def test_the_documented_example(mtasim):
    """docs/trace-format.md's hex dump renders as the line it says."""
    doc = (REPO_ROOT / "docs" / "trace-format.md").read_text(encoding="utf-8")
    example = doc.split("## An example", 1)[1].split("```", 2)[1]
    hexes = []
    for row in example.strip().splitlines():        # the bytes, then a comment
        words = row.split()
        while words and re.fullmatch(r"[0-9a-f]{2}", words[0]):
            hexes.append(words.pop(0))
    dump = bytes.fromhex("".join(hexes))
    line = re.search(r"whose first record is\s+`([^`]+)`", doc).group(1)
    proc = show(mtasim, dump)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == f"# hi!\n{line}\n"


def test_binary_trace_on_standard_output(mtasim, small):
    """``--trace - --trace-format bin``: standard output is the binary trace
    alone, the report goes to standard error."""
    _, text = small
    proc = subprocess.run([mtasim, "run", "--trace", "-", "--trace-format", "bin", SMALL],
                          cwd=REPO_ROOT, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(MAGIC) and show(mtasim, proc.stdout).stdout == text
    assert re.search(rb"^PASS scenarios/mailerq/lifecycle\.scn .*\n1 passed, 0 failed\n\Z",
                     proc.stderr, re.M), proc.stderr
