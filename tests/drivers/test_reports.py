"""CI reports end to end: the result JSON, mtasim report, the HTML in Chromium.

What is checked, each against real output:

  * the result JSON's connection_log and conn_err agree with the --trace
    text of the same run, and --json-trace carries exactly its records;
  * JSON and every report are deterministic apart from wall_ms;
  * JUnit XML parses, follows the JUnit schema's shape (one testsuite,
    one testcase per run with name/classname, failure/error with message
    and type, counts that add up) and holds the diff and replay command;
    characters XML 1.0 cannot carry are spelled out;
  * the Markdown summary has one table row per run and each failure's diff
    and replay command, with no live HTML from a scenario;
  * the HTML report is self-contained, and in headless Chromium with
    JavaScript on it renders (a screenshot), shows the counts of the JSON,
    and shows a remote's <script> / <img onerror> replies as text: no
    injected element, the title unchanged;
  * bad input (missing, corrupt, wrong-shaped JSON; no output asked for)
    is one clear line and exit status 2, and nothing is written;
  * progress on a terminal, silence in CI logs (mtasim run).
"""

import copy
import json
import os
import pty
import re
import select
import struct
import subprocess
import xml.etree.ElementTree as ET
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

HOSTILE = "fixtures/reports/hostile-replies.scn"
REPORT_SCENARIOS = ["scenarios/connect/refused.scn", "scenarios/connect/timeout.scn",
                    "scenarios/delivery/greylist-retry.scn", "scenarios/faults/reset-after-rcpt.scn",
                    "scenarios/faults/random-faults.scn", HOSTILE, "fixtures/bad/bad-address.scn"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def run_report(mtasim, args, cwd=REPO_ROOT, env=None):
    """``mtasim report ARGS``: the CompletedProcess."""
    return subprocess.run([mtasim, "report", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, env=env)


def without_wall_ms(value):
    """A copy of a result document with every wall_ms set to 0."""
    value = copy.deepcopy(value)
    for run in value.get("runs", []):
        if "wall_ms" in run:
            run["wall_ms"] = 0
    return value


@pytest.fixture(scope="module")
def results(mtasim, tmp_path_factory):
    """The report scenarios run once with --json --json-trace: (path, document)."""
    out = tmp_path_factory.mktemp("results") / "results.json"
    proc = run_mtasim(mtasim, ["--json", str(out), "--json-trace", *REPORT_SCENARIOS], cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr     # the bad-address file
    return out, json.loads(out.read_text())


@pytest.fixture(scope="module")
def reports(mtasim, results, tmp_path_factory):
    """junit.xml, report.html and summary.md made from the results."""
    out = tmp_path_factory.mktemp("reports")
    paths = {"junit": out / "junit.xml", "html": out / "report.html", "markdown": out / "summary.md"}
    proc = run_report(mtasim, [str(results[0]), "--junit", str(paths["junit"]),
                               "--html", str(paths["html"]), "--markdown", str(paths["markdown"])])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"report: 5 passed, 2 failed -> ", proc.stderr), proc.stderr
    return paths


# ---------------------------------------------------------------- result JSON


def parse_trace_text(text):
    """{scenario name: [(t, kind, name, rest)]} from a --trace file."""
    traces, current = {}, None
    for line in text.splitlines():
        if line.startswith("# scenario "):
            current = traces.setdefault(line.split()[2], [])
            continue
        stamp, kind, name, *rest = line.split(" ", 3)
        h, m, s = stamp.split(":")
        t = (int(h) * 3600 + int(m) * 60) * 1000000 + round(float(s) * 1000000)
        current.append((t, kind, name, rest[0] if rest else ""))
    return traces


def test_connection_log_and_conn_err_agree_with_the_trace(mtasim, tmp_path):
    scenarios = ["scenarios/connect/refused.scn", "scenarios/delivery/greylist-retry.scn",
                 "scenarios/connect/timeout.scn", "scenarios/faults/random-faults.scn"]
    out, trace = tmp_path / "r.json", tmp_path / "trace.txt"
    proc = run_mtasim(mtasim, ["--json", str(out), "--trace", str(trace), *scenarios], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout
    doc = json.loads(out.read_text())
    texts = parse_trace_text(trace.read_text())
    for run in doc["runs"]:
        records = texts[run["scenario"]]
        assert "trace" not in run                   # only with --json-trace
        opens = [r for r in records if r[1:3] == ("conn", "open")]
        log = run["connection_log"]
        assert len(log) == len(opens) == run["connections"]
        for entry, rec in zip(log, opens):
            assert entry["opened_us"] == rec[0]
            assert f"fd={entry['fd']} " in rec[3] and f"dst={entry['remote']}" in rec[3]
            assert entry["closed_us"] is not None and entry["closed_us"] >= entry["opened_us"]
        # CONN_ERR counts: post_initiate_connection_smtp calls by outcome.
        initiate, descriptors, failures = {}, 0, {}
        for _, kind, name, rest in records:
            if (kind, name) == ("hook", "post_initiate_connection_smtp"):
                value = re.search(r"conn_fd=(\S+)", rest).group(1)
                if value.startswith("CONN_ERR_"):
                    initiate[value] = initiate.get(value, 0) + 1
                else:
                    descriptors += 1
            if (kind, name) == ("hook", "log_client_connection_failure"):
                err = re.search(r"err=(\S+)", rest).group(1)
                failures[err] = failures.get(err, 0) + 1
        assert run["conn_err"] == {"initiate": initiate, "initiate_fd": descriptors,
                                   "failures": failures}
    by_name = {r["scenario"]: r for r in doc["runs"]}
    refused = by_name["refused"]["connection_log"][0]
    assert (refused["outcome"], refused["error"], refused["established_us"]) == \
        ("refused", "CONN_ERR_CONNECT", None)
    assert by_name["connect-timeout"]["connection_log"][0]["outcome"] == "timeout"
    first, second = by_name["greylist-retry"]["connection_log"]
    assert first["commands"] == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert 451 in first["replies"] and first["replies"][-1] == 221 and first["outcome"] == "quit"
    assert second["replies"][-2:] == [250, 221] and second["data_bytes"] > 0
    assert second["domain"] == "example.com" and second["binding"] == "default"


def test_json_trace_carries_every_record(results):
    _, doc = results
    run = next(r for r in doc["runs"] if r["scenario"] == "greylist-retry")
    assert len(run["trace"]) == run["trace_records"]
    times = [rec[0] for rec in run["trace"]]
    assert times == sorted(times) and times[-1] <= run["end_us"]
    assert all(len(rec) == 4 and isinstance(rec[3], dict) for rec in run["trace"])
    hooks = [rec for rec in run["trace"] if rec[1:3] == ["hook", "post_initiate_connection_smtp"]]
    assert hooks[0][3]["conn_fd"] == "CONN_ERR_MX_LOOKUP_PENDING"     # the name, as in the trace
    assert any(rec[3].get("conn_fd") == 3 for rec in hooks)            # a descriptor: a number
    bad = next(r for r in doc["runs"] if r["verdict"] == "error")
    assert bad["connection_log"] == [] and "trace" not in bad


def test_json_trace_needs_json(mtasim):
    proc = run_mtasim(mtasim, ["--json-trace", "scenarios/connect/refused.scn"], cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert "--json-trace adds the trace to the --json file" in proc.stderr


def test_output_path_that_is_a_scenario_is_refused(mtasim, tmp_path):
    """'--json a.scn b.scn' names a.scn as the results file: mtasim refuses
    (exit 2) instead of writing over the scenario; same for --trace."""
    scn = tmp_path / "a.scn"
    text = (REPO_ROOT / "scenarios/connect/refused.scn").read_text()
    scn.write_text(text)
    for opt in ("--json", "--trace"):
        proc = run_mtasim(mtasim, [opt, str(scn), "scenarios/connect/refused.scn"], cwd=REPO_ROOT)
        assert proc.returncode == 2, (opt, proc.stdout, proc.stderr)
        assert f"{opt} {scn} would write over a scenario" in proc.stderr, proc.stderr
        assert scn.read_text() == text


def test_json_is_deterministic_apart_from_wall_ms(mtasim, results, tmp_path):
    again = tmp_path / "again.json"
    run_mtasim(mtasim, ["--json", str(again), "--json-trace", *REPORT_SCENARIOS], cwd=REPO_ROOT)
    assert without_wall_ms(json.loads(again.read_text())) == without_wall_ms(results[1])


# ---------------------------------------------------------------- JUnit XML

# The JUnit schema's shape as Jenkins, GitLab and GitHub's reporters read it
# (Jenkins' junit-10.xsd): allowed attributes per element and which are required.
JUNIT_ATTRS = {
    "testsuites": ({"name", "tests", "failures", "errors", "time", "disabled"}, set()),
    "testsuite": ({"name", "tests", "failures", "errors", "skipped", "time", "disabled",
                   "timestamp", "hostname", "id", "package", "file"}, {"name", "tests"}),
    "testcase": ({"name", "classname", "time", "file", "line", "assertions", "status"},
                 {"name", "classname"}),
    "failure": ({"message", "type"}, {"message", "type"}),
    "error": ({"message", "type"}, {"message", "type"}),
    "system-out": (set(), set()),
}
JUNIT_CHILDREN = {"testsuites": {"testsuite"}, "testsuite": {"testcase", "properties", "system-out",
                                                             "system-err"},
                  "testcase": {"failure", "error", "skipped", "system-out", "system-err"}}


def check_junit_shape(element):
    """Assert element and its descendants have the JUnit schema's shape."""
    allowed, required = JUNIT_ATTRS[element.tag]
    assert set(element.attrib) <= allowed, (element.tag, element.attrib)
    assert required <= set(element.attrib), (element.tag, element.attrib)
    for key in ("tests", "failures", "errors", "skipped"):
        if key in element.attrib:
            assert element.attrib[key].isdigit()
    if "time" in element.attrib:
        assert re.fullmatch(r"\d+(\.\d+)?", element.attrib["time"])
    for child in element:
        assert child.tag in JUNIT_CHILDREN.get(element.tag, set()), (element.tag, child.tag)
        check_junit_shape(child)
    if element.tag == "testcase":
        assert len([c for c in element if c.tag in ("failure", "error")]) <= 1


def test_junit_xml(reports, results):
    _, doc = results
    root = ET.parse(reports["junit"]).getroot()
    check_junit_shape(root)
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    assert len(cases) == len(doc["runs"]) == int(suite.get("tests"))
    verdicts = [r["verdict"] for r in doc["runs"]]
    assert int(suite.get("failures")) == verdicts.count("fail") == len(suite.findall("testcase/failure"))
    assert int(suite.get("errors")) == verdicts.count("error") == len(suite.findall("testcase/error"))
    for case, run in zip(cases, doc["runs"]):
        expected_name = run["scenario"] or Path(run["file"]).stem
        assert case.get("name") == expected_name
        assert case.get("classname") == str(Path(run["file"]).parent).replace("/", ".")
        out = case.find("system-out").text
        if run["seed"] is not None:
            assert f"replay: mtasim run --seed {run['seed']} --trace - {run['file']}" in out
    hostile = next(c for c in cases if c.get("name") == "hostile-replies")
    failure = hostile.find("failure")
    assert failure.get("message") == "line 18: expect message 1 delivered"
    assert "last error: 550 <script>document.title='pwned'</script>" in failure.text
    bad = next(c for c in cases if c.get("name") == "bad-address")
    assert bad.get("classname") == "fixtures.bad"
    assert bad.find("error").get("type") == "bad-input"
    assert "bad IPv4 address" in bad.find("error").get("message")


def test_junit_spells_out_characters_xml_cannot_carry(mtasim, results, tmp_path):
    doc = copy.deepcopy(results[1])
    run = next(r for r in doc["runs"] if r["verdict"] == "fail")
    run["expectations"][0]["diff"] = "bell \x07 nul \x00 esc \x1b[31m ffff \uffff tab\tok"
    run["scenario"] = "name-with-\x01-and-<&>"
    src = tmp_path / "control.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "junit.xml"
    proc = run_report(mtasim, [str(src), "--junit", str(out)])
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(out).getroot()         # raises on any character XML 1.0 forbids
    case = root.find("testsuite/testcase[failure]")
    assert case.get("name") == "name-with-\\x01-and-<&>"
    assert "bell \\x07 nul \\x00 esc \\x1b[31m ffff \\uffff tab\tok" in case.find("failure").text


# ---------------------------------------------------------------- Markdown


def test_markdown_summary(reports, results):
    _, doc = results
    text = reports["markdown"].read_text()
    assert text.startswith("## ❌ mtasim: 5 passed, 2 failed (1 bad input)")
    rows = [line for line in text.splitlines() if re.match(r"\| (✅|❌|⚠️|💥|🧩) ", line)]
    assert len(rows) == len(doc["runs"])
    assert text.count("<details>") == 2
    assert "mtasim run --seed 1 --trace - fixtures/reports/hostile-replies.scn" in text
    # HTML from a scenario lives only inside fenced blocks.
    outside = re.sub(r"(?ms)^(`{3,})\w*\n.*?^\1$", "", text)
    assert "<script>" not in outside and "<img" not in outside
    assert "last error: 550 <script>document.title='pwned'</script>" in text   # in the fence


# ---------------------------------------------------------------- HTML


def test_reports_are_deterministic(mtasim, results, tmp_path):
    """Two runs' JSON differ only in wall_ms; without it, the reports are identical."""
    outputs = []
    for i, doc in enumerate([results[1], json.loads(results[0].read_text())]):
        src = tmp_path / f"in{i}.json"
        src.write_text(json.dumps(without_wall_ms(doc), indent=1))
        made = [tmp_path / f"out{i}.{ext}" for ext in ("xml", "html", "md")]
        proc = run_report(mtasim, [str(src), "--junit", str(made[0]), "--html", str(made[1]),
                                   "--markdown", str(made[2])])
        assert proc.returncode == 0, proc.stderr
        outputs.append([p.read_bytes() for p in made])
    assert outputs[0] == outputs[1]


def test_html_is_self_contained(reports):
    html = reports["html"].read_text()
    # The only URL is the SVG namespace name; nothing is fetched.
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<>]*", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"<(link|iframe|object|embed|img)\b", html)
    assert not re.search(r"\b(src|srcset)\s*=", html.split("<body>")[0])
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in unescape(html)      # the browser enforces it too
    assert html.count("<script>") == 1 and html.count("<style>") == 1


class DomSummary(HTMLParser):
    """What a test needs from a dumped DOM: tags seen, text, title, counts."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.counts = [], [], {}
        self.title = ""
        self._in, self._count_key = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag not in self.VOID:
            self._in.append(tag)
        self._count_key = attrs.get("data-count")

    def handle_endtag(self, tag):
        if tag in self._in:
            while self._in and self._in.pop() != tag:
                pass
        self._count_key = None

    def handle_data(self, data):
        self.text.append(data)
        if self._in[-2:] == ["head", "title"]:        # the page's, not an SVG tooltip
            self.title += data
        if self._count_key:
            self.counts[self._count_key] = int(data)


def chromium(args, tmp_path):
    """Run headless Chromium (JavaScript on); its CompletedProcess."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (sh tests/deps.sh)",
                    pytrace=False)
    profile = tmp_path / "chromium-profile"
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_html_renders_in_chromium(reports, results, tmp_path):
    _, doc = results
    url = reports["html"].as_uri()
    shot = tmp_path / "report.png"
    proc = chromium(["--window-size=1280,1600", f"--screenshot={shot}", url], tmp_path)
    assert shot.is_file(), proc.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1280, 1600)
    assert len(png) > 20000            # a blank page compresses to a few kilobytes

    dom = chromium(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = DomSummary()
    page.feed(dom.stdout)
    passed = sum(r["verdict"] == "pass" for r in doc["runs"])
    errors = sum(r["verdict"] == "error" for r in doc["runs"])
    # The cards split the runs: bad input is not counted again as "failed".
    assert page.counts == {"passed": passed, "failed": len(doc["runs"]) - passed - errors,
                           "bad input": errors, "runs": len(doc["runs"]),
                           "connections": sum(len(r["connection_log"]) for r in doc["runs"])}
    assert errors >= 1 and page.counts["passed"] + page.counts["failed"] + \
        page.counts["bad input"] == page.counts["runs"]
    assert page.title == f"mtasim report: {passed} passed, {len(doc['runs']) - passed} failed"
    # The script ran: it marks the document.
    html_tag = next(attrs for tag, attrs in page.tags if tag == "html")
    assert "js" in (html_tag.get("class") or "").split()
    # Every run has a section and a row; the failing ones are open.
    sections = [attrs for tag, attrs in page.tags if tag == "details" and "run" in attrs.get("class", "")]
    assert len(sections) == len(doc["runs"])
    assert sum("open" in attrs for attrs in sections) == len(doc["runs"]) - passed
    assert sum(1 for tag, attrs in page.tags if tag == "svg" and attrs.get("class") == "ladder") \
        == sum(1 for r in doc["runs"] if r["connection_log"])


def test_remote_text_is_shown_escaped_and_never_runs(reports, tmp_path):
    dom = chromium(["--dump-dom", reports["html"].as_uri()], tmp_path)
    page = DomSummary()
    page.feed(dom.stdout)
    text = "".join(page.text)
    # Present as text: in the diff, the messages table and the ladder's tooltip and label.
    assert text.count("550 <script>document.title='pwned'</script>") >= 3
    assert "<img src=x onerror=\"document.title='pwned-img'\">" in text
    assert "<b>bold</b> & \"quoted\"" in text
    # Nothing injected: one script (ours), no img, no b, no on* handler anywhere.
    assert [tag for tag, _ in page.tags].count("script") == 1
    assert not [tag for tag, _ in page.tags if tag in ("img", "b", "iframe")]
    assert not [(tag, a) for tag, attrs in page.tags for a in attrs if a.startswith("on")]
    assert "pwned" not in page.title


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ('{"runs": [', "not valid JSON"),
    ('[1, 2]', "not an mtasim result file"),
    ('{"runs": [{"file": "x.scn", "verdict": "maybe", "exit_code": 0}]}',
     "$.runs[0].verdict: should be one of pass, fail, error, invariant, plugin"),
    ('{"runs": [{"file": "x.scn", "verdict": "pass"}]}', "$.runs[0]: missing \"exit_code\""),
])
def test_bad_input_is_exit_2_and_writes_nothing(mtasim, tmp_path, content, message):
    src = tmp_path / "results.json"
    if content is not None:
        src.write_text(content)
    out = tmp_path / "report.html"
    proc = run_report(mtasim, [str(src), "--html", str(out), "--junit", str(tmp_path / "j.xml")])
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"mtasim report: {src}") and message in first, proc.stderr
    assert not out.exists() and not (tmp_path / "j.xml").exists()


def test_report_usage_errors(mtasim, results, tmp_path):
    nothing = run_report(mtasim, [str(results[0])])
    assert nothing.returncode == 2 and "nothing to write" in nothing.stderr
    none = run_report(mtasim, ["--html", str(tmp_path / "x.html")])
    assert none.returncode == 2 and "no result file given" in none.stderr
    unwritable = run_report(mtasim, [str(results[0]), "--html", str(tmp_path / "no" / "x.html")])
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr
    helped = run_report(mtasim, ["--help"])
    assert helped.returncode == 0 and "--junit FILE" in helped.stdout
    env = dict(os.environ, MTASIM_REPORTS_DIR=str(tmp_path / "nowhere"))
    lost = run_report(mtasim, [str(results[0]), "--html", str(tmp_path / "x.html")], env=env)
    assert lost.returncode == 2
    assert "no mtasim_report.py in $MTASIM_REPORTS_DIR" in lost.stderr


def test_markdown_to_stdout(mtasim, results):
    proc = run_report(mtasim, [str(results[0]), "--markdown", "-"])
    assert proc.returncode == 0 and proc.stdout.startswith("## ❌ mtasim: 5 passed, 2 failed")


# ---------------------------------------------------------------- progress


def run_on_a_terminal(argv, env, cwd=REPO_ROOT, timeout=60):
    """Run argv with standard error on a pseudo-terminal: (exit status, what it showed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:             # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=timeout), shown.decode("utf-8", "replace")


@pytest.mark.parametrize("ci", [None, "true"])
def test_progress_on_a_terminal_only(mtasim, ci):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MTASIM_PROGRESS")}
    env["TERM"] = "xterm"
    if ci:
        env["CI"] = ci
    files = ["scenarios/connect/refused.scn", HOSTILE, "scenarios/dns/caching.scn"]
    status, shown = run_on_a_terminal([mtasim, "run", *files], env)
    assert status == 1
    if ci:
        assert shown == ""
    else:
        assert "mtasim run [0/3]  0 failed  scenarios/connect/refused.scn" in shown
        assert f"mtasim run [2/3]  1 failed  {HOSTILE}" in shown
        assert "[3/3]  1 failed" in shown
        assert shown.endswith("\r\033[K")       # the line is erased at the end


def test_no_progress_in_a_pipe(mtasim):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MTASIM_PROGRESS")}
    proc = subprocess.run([mtasim, "run", "scenarios/connect/refused.scn"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == ""


# ---------------------------------------------------------------- run-suite.sh


def test_run_suite_writes_the_reports(mtasim, tmp_path):
    """The README's first command leaves results, trace and the three reports."""
    # MTASIM_BIN: the binary under test, so the script does not rebuild
    # the build directory while other tests use it.
    env = dict(os.environ, MTASIM_BIN=mtasim, MTASIM_RESULTS=str(tmp_path),
               GITHUB_STEP_SUMMARY=str(tmp_path / "step.md"))
    proc = subprocess.run(["sh", "tests/run-suite.sh"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    total = len(doc["runs"])
    assert total == len(list((REPO_ROOT / "scenarios").rglob("[!.]*.scn")))
    assert all("trace" in r for r in doc["runs"])
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert int(junit.find("testsuite").get("tests")) == total
    assert f"{total} passed, 0 failed" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "step.md").read_text() == (tmp_path / "summary.md").read_text()
    assert "<svg class=\"ladder\"" in (tmp_path / "report.html").read_text()
    assert f"reports: {tmp_path}/report.html" in proc.stdout
