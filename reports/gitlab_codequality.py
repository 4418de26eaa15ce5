"""gitlab_codequality - failing runs as a GitLab Code Quality report.

Contract
--------
``codequality_document(runs)`` returns a JSON array (text, ending in a
newline) with one issue per run that did not pass, in run order, in the
subset of the Code Climate issue format GitLab reads from a job's
``artifacts:reports:codequality`` file (GitLab docs, "Code Quality", the
code quality report format):

* ``description``: the run's headline (first failed expectation, invariant,
  plugin failure or bad-input error) and its replay command;
* ``check_name``: ``mtasim-VERDICT`` (``mtasim-fail``, ``mtasim-error``,
  ``mtasim-invariant``, ``mtasim-plugin``, ...);
* ``fingerprint``: the first 32 hex digits of SHA-256 over the file, the
  scenario name, the seed and the verdict, separated by NUL: stable across
  runs (GitLab compares issues between pipelines by it), different for
  two runs of one file with different seeds;
* ``severity``: ``major`` for a failed expectation, ``critical`` for an
  invariant violation or a misbehaving plugin, ``blocker`` for a scenario
  that could not be read (bad input) and anything else;
* ``location``: ``path`` the scenario file, ``lines.begin`` the line of the
  first failed expectation or of the bad input, else 1.

Passing runs give no issue; all runs passing give ``[]``.
"""

import hashlib
import json

from github_annotations import failure_line

SEVERITY = {"fail": "major", "invariant": "critical", "plugin": "critical"}


def _fingerprint(run):
    key = "\0".join([run.file, run.name, str(run.seed), run.verdict])
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def codequality_document(runs):
    """The Code Quality JSON for runs (a string)."""
    issues = []
    for run in runs:
        if run.passed:
            continue
        issues.append({
            "description": f"{run.headline} (replay: {run.replay})",
            "check_name": f"mtasim-{run.verdict}",
            "fingerprint": _fingerprint(run),
            "severity": SEVERITY.get(run.verdict, "blocker"),
            "location": {"path": run.file, "lines": {"begin": failure_line(run)}},
        })
    return json.dumps(issues, indent=2, ensure_ascii=True) + "\n"
