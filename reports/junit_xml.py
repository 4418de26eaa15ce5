"""junit_xml - mtasim runs as JUnit XML that common CI systems accept.

Contract
--------
``junit_document(runs)`` returns the XML text (UTF-8 declaration, ends in a
newline) for a list of ``results_model.Run``:

* one ``<testsuites>`` holding exactly one ``<testsuite name="mtasim">``
  whose ``tests``, ``failures``, ``errors`` and ``skipped`` count its cases
  and whose ``time`` is the sum of the runs' wall time in seconds;
* one ``<testcase>`` per run (per scenario and seed): ``name`` is the
  scenario's name (with ``[seed N]`` when one file ran with several seeds),
  ``classname`` the file's folder with dots (``scenarios.dns``), ``file``
  the path, ``time`` its wall time;
* a run whose expectation failed has one ``<failure type="expectation">``:
  ``message`` says which expectation (``line 17: expect hooks in order``),
  the text is mtasim's diff;
* a run that could not be judged has one ``<error>``: ``type`` is
  ``bad-input`` (exit code 2), ``invariant`` (3) or ``plugin`` (4), the
  text says what happened;
* ``<system-out>`` of every case holds the replay command.

Remote-controlled text can hold any byte.  Characters XML 1.0 cannot carry
(control characters other than tab, newline and carriage return, lone
surrogates, U+FFFE/U+FFFF) are written as the visible text ``\\xHH`` /
``\\uHHHH``; ElementTree escapes ``& < > "`` itself.  No timestamp or host
name is written, so the same runs give the same file apart from ``time``.
"""

import re
import xml.etree.ElementTree as ET

from results_model import junit_names

# Characters XML 1.0 forbids (https://www.w3.org/TR/xml/#charsets).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

ERROR_TYPES = {"error": "bad-input", "invariant": "invariant", "plugin": "plugin"}


def xml_safe(text):
    """text with every character XML 1.0 cannot hold spelled out visibly."""
    def spell(match):
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return _XML_FORBIDDEN.sub(spell, text or "")


def _seconds(ms):
    return f"{ms / 1000:.3f}"


def _element(parent, tag, text=None, **attrs):
    """A child element with XML-safe attributes and text."""
    child = ET.SubElement(parent, tag, {k: xml_safe(str(v)) for k, v in attrs.items()})
    if text is not None:
        child.text = xml_safe(text)
    return child


def junit_document(runs):
    """The JUnit XML text for runs."""
    # JUnit's "failures" are failed assertions (our expectations); runs that
    # could not be judged at all are its "errors".
    failures = sum(1 for r in runs if r.verdict == "fail")
    errored = sum(1 for r in runs if r.verdict in ERROR_TYPES)
    total_time = _seconds(sum(r.wall_ms for r in runs))
    root = ET.Element("testsuites", {"name": "mtasim", "tests": str(len(runs)),
                                     "failures": str(failures), "errors": str(errored),
                                     "time": total_time})
    suite = _element(root, "testsuite", name="mtasim", tests=len(runs), failures=failures,
                     errors=errored, skipped=0, time=total_time)
    for run, name in zip(runs, junit_names(runs)):
        case = _element(suite, "testcase", name=name, classname=run.classname, file=run.file,
                        time=_seconds(run.wall_ms))
        if run.verdict == "fail":
            _element(case, "failure", run.failure_text, message=run.headline, type="expectation")
        elif run.verdict in ERROR_TYPES:
            _element(case, "error", run.failure_text or run.headline, message=run.headline,
                     type=ERROR_TYPES[run.verdict])
        seed = "" if run.seed is None else f"seed {run.seed}  "
        digest = f"digest {run.digest}\n" if run.digest else ""
        _element(case, "system-out", f"{run.file}  {seed}verdict {run.verdict}\n{digest}"
                 f"replay: {run.replay}\n")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
