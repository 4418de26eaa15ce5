"""mtasim_report - ``mtasim report``: result JSON -> JUnit XML, HTML, Markdown.

Usage (``mtasim report`` runs this with /usr/bin/python3)::

    mtasim report RESULTS.json... [--junit FILE] [--html FILE] [--html-dir DIR]
                  [--markdown FILE] [--github FILE] [--gitlab FILE]
                  [--title TEXT]

Contract
--------
* Reads every RESULTS file (written by ``mtasim run --json``; with
  ``--json-trace`` the HTML report has sequence diagrams, a hook timeline
  and the queue depth) and writes each requested output.  ``-`` as an
  output writes it to standard output.
* Exit status 0 when everything was written - whatever the runs' verdicts:
  a report of failures is a successful report.  Exit status 2 for bad input
  or usage: a missing, unreadable or corrupt results file, no output asked
  for, an output that cannot be written.  The first line on standard error
  says what and where (``mtasim report: FILE: ...``); nothing is written
  when an input is bad.
* Outputs depend only on the inputs: the same JSON gives byte-identical
  files, except where the runs' own wall_ms values appear.

Only the Python standard library is used (Debian's python3).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from github_annotations import annotations_document  # noqa: E402
from gitlab_codequality import codequality_document  # noqa: E402
from html_report import asset_files, html_document  # noqa: E402
from junit_xml import junit_document             # noqa: E402
from markdown_summary import markdown_document   # noqa: E402
from report_output import OutputError, write_outputs  # noqa: E402
from results_model import ResultsError, load_results, summary_counts  # noqa: E402

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class UsageError(Exception):
    """A command-line mistake; str() is the message."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with mtasim's error convention: one line, exit status 2."""

    def error(self, message):
        raise UsageError(message)


def parse_args(argv):
    parser = ArgumentParser(
        prog="mtasim report",
        description="Turn mtasim result JSON (mtasim run --json FILE [--json-trace]) into "
                    "JUnit XML, a self-contained HTML report and a Markdown summary.",
        epilog="Exit status: 0 written, 2 bad input or usage. See docs/cli.md.")
    parser.add_argument("results", nargs="*", metavar="RESULTS.json",
                        help="result files written by mtasim run --json")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    parser.add_argument("--html", metavar="FILE", help="write the HTML report")
    parser.add_argument("--html-dir", metavar="DIR",
                        help="write DIR/report.html with report.css and report.js beside it "
                             "(no inline code: for CSP-restricted hosts such as Jenkins)")
    parser.add_argument("--github", metavar="FILE",
                        help="write GitHub Actions annotations (::error file=...,line=...::), "
                             "- for standard output")
    parser.add_argument("--gitlab", metavar="FILE",
                        help="write a GitLab Code Quality report (JSON, one issue per failing "
                             "run; artifacts:reports:codequality)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="write the Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    parser.add_argument("--title", default="mtasim report", help="the HTML report's title")
    args = parser.parse_args(argv)
    if not args.results:
        raise UsageError("no result file given")
    if not (args.junit or args.html or args.html_dir or args.markdown or args.github
            or args.gitlab):
        raise UsageError("nothing to write: give --junit FILE, --html FILE, --html-dir DIR, "
                         "--markdown FILE, --github FILE and/or --gitlab FILE")
    return args


def main(argv):
    try:
        args = parse_args(argv)
        runs = load_results(args.results)
    except (UsageError, ResultsError) as exc:
        print(f"mtasim report: {exc}", file=sys.stderr)
        if isinstance(exc, UsageError):
            print("usage: mtasim report RESULTS.json... [--junit FILE] [--html FILE] "
                  "[--html-dir DIR] [--markdown FILE] [--github FILE] [--gitlab FILE]  "
                  "(mtasim report --help)",
                  file=sys.stderr)
        return EXIT_BAD_INPUT
    # Render everything before writing anything.
    outputs = []
    if args.junit:
        outputs.append((args.junit, junit_document(runs)))
    if args.html:
        outputs.append((args.html, html_document(runs, args.title)))
    if args.html_dir:
        outputs.append((os.path.join(args.html_dir, "report.html"),
                        html_document(runs, args.title, assets="files")))
        outputs += [(os.path.join(args.html_dir, name), text) for name, text in asset_files()]
    if args.markdown:
        outputs.append((args.markdown, markdown_document(runs)))
    if args.github:
        outputs.append((args.github, annotations_document(runs)))
    if args.gitlab:
        outputs.append((args.gitlab, codequality_document(runs)))
    try:
        if args.html_dir:
            try:
                os.makedirs(args.html_dir, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot write {args.html_dir}: {exc.strerror or exc}") from None
        write_outputs(outputs)
    except OutputError as exc:
        print(f"mtasim report: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    passed, failed, _ = summary_counts(runs)
    if not any(path == "-" for path, _ in outputs):
        written = ", ".join(path for path, _ in outputs)
        print(f"report: {passed} passed, {failed} failed -> {written}", file=sys.stderr)
    return EXIT_OK


def guarded_main(argv):
    """main(), with any unexpected exception as one line and exit status 3."""
    try:
        return main(argv)
    except Exception as exc:     # noqa: BLE001 - the last resort: never a traceback
        print(f"mtasim report: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(guarded_main(sys.argv[1:]))
