"""Reports for CI systems: HTML under Jenkins' default CSP, GitHub annotations, GitLab Code Quality.

* ``mtasim report --html-dir DIR`` writes report.html, report.css and
  report.js with no inline code.  Served over HTTP on loopback with Jenkins'
  default Content-Security-Policy header (Jenkins docs, "Configuring
  Content Security Policy": ``sandbox; default-src 'none'; img-src 'self';
  style-src 'self';``), headless Chromium renders it styled: the header's
  dark background is in the screenshot.  The self-contained ``--html`` file
  served the same way renders unstyled (white), which is why --html-dir
  exists - and proves the check can fail.
* Results written without ``--json-trace`` give a report that says why it
  has no diagrams and how to get them.
* ``--github FILE`` writes one ``::error file=...,line=...::`` workflow
  command per failing run, the message escaped to one line.
* ``--gitlab FILE`` writes GitLab's Code Quality JSON: one issue per failing
  run with the required fields, its line, a stable fingerprint.
"""

import http.server
import struct
import threading
import zlib

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim
from tests.drivers.test_reports import chromium, run_report

JENKINS_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'self';"
SCENARIOS = ["scenarios/connect/refused.scn", "scenarios/delivery/greylist-retry.scn",
             "fixtures/bad/bad-address.scn", "fail.scn"]
# A scenario whose expectation fails at line 6 (its message is delivered).
FAILING = f"""scenario fails
include {REPO_ROOT}/scenarios/world.inc
remote 198.51.100.10
inject 1 from <a@sender.test> to <bob@example.com>
# the message is delivered, not bounced:
expect message 1 bounced
"""


def png_pixel(png, x, y):
    """(r, g, b) of pixel (x, y) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    for row in range(y + 1):
        ftype, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        prev = line
    return tuple(prev[x * bpp:x * bpp + 3])


class CspHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder with Jenkins' default CSP on every response."""

    def end_headers(self):
        self.send_header("Content-Security-Policy", JENKINS_CSP)
        super().end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def results(mtasim, tmp_path_factory):
    out = tmp_path_factory.mktemp("csp")
    (out / "fail.scn").write_text(FAILING)
    files = [str(REPO_ROOT / f) if f != "fail.scn" else f for f in SCENARIOS]
    for name, extra in (("traced.json", ["--json-trace"]), ("plain.json", [])):
        proc = run_mtasim(mtasim, ["--json", str(out / name), *extra, *files], cwd=out)
        assert proc.returncode == 2, proc.stdout        # the bad-address fixture
    return out


def serve(folder):
    handler = lambda *a, **kw: CspHandler(*a, directory=str(folder), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_html_dir_renders_styled_under_jenkins_csp(mtasim, results, tmp_path):
    site = tmp_path / "site"
    proc = run_report(mtasim, [str(results / "traced.json"), "--html-dir", str(site / "dir"),
                               "--html", str(site / "inline.html")])
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (site / "dir").iterdir()) == \
        ["report.css", "report.html", "report.js"]
    page = (site / "dir" / "report.html").read_text()
    assert "<style" not in page and "<script>" not in page and " style=" not in page
    assert ' on' not in page.split("<body>")[0]
    assert (site / "dir" / "report.css").read_text() == (REPO_ROOT / "reports/report.css").read_text()
    server = serve(site)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        colours = {}
        for name, path in (("dir", "/dir/report.html"), ("inline", "/inline.html")):
            shot = tmp_path / f"{name}.png"
            run = chromium(["--window-size=1000,700", f"--screenshot={shot}", base + path],
                           tmp_path)
            assert shot.is_file(), run.stderr[-2000:]
            colours[name] = png_pixel(shot.read_bytes(), 4, 4)
    finally:
        server.shutdown()
    # The header's gradient starts at #0f172a: dark.  Unstyled: white.
    assert max(colours["dir"]) < 80, colours
    assert min(colours["inline"]) > 200, colours


def test_report_without_trace_says_how_to_get_diagrams(mtasim, results, tmp_path):
    out = tmp_path / "r.html"
    proc = run_report(mtasim, [str(results / "plain.json"), "--html", str(out)])
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "these results hold no trace" in page and "--json-trace" in page
    assert 'class="ladder"' not in page
    traced = tmp_path / "t.html"
    run_report(mtasim, [str(results / "traced.json"), "--html", str(traced)])
    assert "these results hold no trace" not in traced.read_text()
    assert 'class="ladder"' in traced.read_text()


def test_github_annotations(mtasim, results, tmp_path):
    out = tmp_path / "gh.txt"
    proc = run_report(mtasim, [str(results / "traced.json"), "--github", str(out)])
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 2, lines
    failing = next(line for line in errors if "file=fail.scn," in line)
    assert failing.startswith("::error file=fail.scn,line=6,title=mtasim FAIL fails::line 6: ")
    assert failing.endswith("%0Areplay: mtasim run --seed 1 --trace - fail.scn")
    bad = next(line for line in errors if "bad-address" in line)
    assert bad.startswith(f"::error file={REPO_ROOT}/fixtures/bad/bad-address.scn,line=4,"
                          "title=mtasim ERROR bad-address::")
    assert lines[-1] == "::notice title=mtasim::2 passed, 2 failed"


def test_gitlab_code_quality(mtasim, results, tmp_path):
    """GitLab's Code Quality format: an array of issues, each with the five
    fields GitLab requires; the line of the failure; a fingerprint that is
    the same for the same results and differs between runs."""
    import json
    out, again = tmp_path / "cq.json", tmp_path / "cq2.json"
    proc = run_report(mtasim, [str(results / "traced.json"), "--gitlab", str(out)])
    assert proc.returncode == 0, proc.stderr
    issues = json.loads(out.read_text())
    assert [i["check_name"] for i in issues] == ["mtasim-error", "mtasim-fail"], issues
    for issue in issues:
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert len(issue["fingerprint"]) == 32 and int(issue["fingerprint"], 16) >= 0
    bad, failing = issues
    assert bad["location"] == {"path": f"{REPO_ROOT}/fixtures/bad/bad-address.scn",
                               "lines": {"begin": 4}}
    assert bad["severity"] == "blocker"
    assert failing["location"] == {"path": "fail.scn", "lines": {"begin": 6}}
    assert failing["severity"] == "major"
    assert failing["description"].startswith("line 6: ")
    assert failing["description"].endswith("(replay: mtasim run --seed 1 --trace - fail.scn)")
    assert bad["fingerprint"] != failing["fingerprint"]
    run_report(mtasim, [str(results / "plain.json"), "--gitlab", str(again)])
    assert [i["fingerprint"] for i in json.loads(again.read_text())] == \
        [i["fingerprint"] for i in issues]
    passing = tmp_path / "pass.json"
    proc = run_mtasim(mtasim, ["--json", str(passing), str(REPO_ROOT / SCENARIOS[0])],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    run_report(mtasim, [str(passing), "--gitlab", str(again)])
    assert json.loads(again.read_text()) == []
