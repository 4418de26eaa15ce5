"""github_annotations - failing runs as GitHub Actions workflow commands.

Contract
--------
``annotations_document(runs)`` returns one line per run that did not pass::

    ::error file=FILE,line=N,title=mtasim FAIL NAME::HEADLINE%0A...

GitHub Actions turns such lines, printed by a step, into annotations on
the file and line ("Workflow commands for GitHub Actions": the ``error``
command with ``file``, ``line`` and ``title``).  The line is the first
failed expectation's, else the ``file:line:col`` of a bad-input error,
else 1.  The message is the run's failure account (diffs, violations,
error) and replay command; it is escaped as the runner expects: ``%`` ->
``%25``, CR -> ``%0D``, LF -> ``%0A`` in the message, and also ``:`` ->
``%3A``, ``,`` -> ``%2C`` in property values.  Nothing is printed for
passing runs; a closing ``::notice`` line gives the counts.
"""

import re

from results_model import summary_counts


def _escape_data(text):
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text):
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def failure_line(run):
    """The line a failing run points at: its first failed expectation's, else
    the line of its bad-input error, else 1 (the GitLab report uses it too)."""
    failed = run.failed_expectations
    if failed and failed[0].line:
        return failed[0].line
    m = re.match(r".*?:(\d+):(\d+): ", run.error or "")
    return int(m.group(1)) if m else 1


def annotations_document(runs):
    """The workflow commands for runs (a string, possibly empty)."""
    out = []
    for run in runs:
        if run.passed:
            continue
        title = f"mtasim {run.verdict.upper()} {run.name}"
        message = f"{run.headline}\n{run.failure_text}\nreplay: {run.replay}"
        out.append(f"::error file={_escape_property(run.file)},line={failure_line(run)},"
                   f"title={_escape_property(title)}::{_escape_data(message)}\n")
    passed, failed, _ = summary_counts(runs)
    out.append(f"::notice title=mtasim::{passed} passed, {failed} failed\n")
    return "".join(out)
