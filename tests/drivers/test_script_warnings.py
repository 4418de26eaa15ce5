"""Scripted remote lines that can never take effect are reported.

A remote answers each command with the first scripted line whose conditions
hold (docs/scenario-language.md, "Choosing a reply"), so a line can be
written that never answers anything.  ``mtasim check`` and ``mtasim run``
print a ``WARNING FILE:LINE:COL: ...`` line on stderr for each such line -
shadowed by an earlier line, unreachable, or overridden by a remote that
never accepts a connection - and the exit status stays what it would be.
Lines that may take effect are never reported.
"""

import subprocess

import pytest

WORLD = """\
dns example.com MX 10 mx.example.com
dns mx.example.com A 198.51.100.10
inject 1 from <a@sender.test> to <b@example.com>
remote 198.51.100.10
"""


def check(mtasim, tmp_path, script, command="check"):
    path = tmp_path / "t.scn"
    path.write_text(WORLD + script)
    proc = subprocess.run([mtasim, command, str(path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    warnings = [l.replace(str(path), "t.scn") for l in proc.stderr.splitlines()
                if l.startswith("WARNING ")]
    return proc, warnings


@pytest.mark.parametrize("script, where, what", [
    ("  rcpt 250 2.1.5 ok\n  rcpt 550 5.1.1 no when session 2\n", "t.scn:6:3",
     "line 5 answers every rcpt"),
    ("  rcpt 451 4.7.1 later when session <= 3\n  rcpt 550 5.1.1 no when session 2 and nth 1\n",
     "t.scn:6:3", "line 5 answers every rcpt"),
    ("  rcpt 451 4.7.1 later when rcpt ~ \"^b@\"\n  rcpt 550 5.1.1 no when rcpt ~ \"^b@\" and session 1\n",
     "t.scn:6:3", "line 5 answers every rcpt"),
    ("  rcpt 550 5.1.1 no when session 0\n", "t.scn:5:3", "its conditions hold for no command"),
    ("  rcpt 550 5.1.1 no when nth > 2 and nth < 3\n", "t.scn:5:3", "hold for no command"),
    ("  rcpt 550 5.1.1 no probability 0\n", "t.scn:5:3", "its probability is 0"),
    ("  connect refuse\n  rcpt 550 5.1.1 no\n", "t.scn:6:3",
     "the remote at line 4 never accepts a connection (connect refuse)"),
    ("  greet 554 5.7.1 go away\n  quit 221 bye\n  rcpt 550 5.1.1 no\n", "t.scn:7:3",
     "the greet line at line 5 refuses every session"),
    ("  greet 220 hi when session 9 probability 0\n  greet reset\n  mail 250 ok\n", "t.scn:7:3",
     "the greet line at line 6 refuses every session"),
    ("  data 451 4.3.0 later when session 1\n  data 554 5.7.1 no\n  dot 250 ok\n", "t.scn:7:3",
     "the data line at line 6 refuses every DATA"),
    ("  connect no-route\n  rcpt 550 5.1.1 no\n", "t.scn:6:3",
     "the remote at line 4 never accepts a connection (connect no-route)"),
    ("remote 192.0.2.99\n  rcpt 550 5.1.1 no\n", "t.scn:6:3",
     "no 'dns NAME A' line gives the address 192.0.2.99 of the remote at line 5"),
], ids=["shadowed", "shadowed-by-range", "shadowed-same-regex", "unreachable-session-0",
        "unreachable-empty-range", "unreachable-probability-0", "overridden-by-connect",
        "overridden-by-banner", "overridden-by-banner-reset", "overridden-by-data",
        "overridden-by-no-route", "overridden-no-address"])
def test_line_that_never_takes_effect_is_reported(mtasim, tmp_path, script, where, what):
    proc, warnings = check(mtasim, tmp_path, script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "reset" in script:   # the greet line of probability 0 is reported too
        assert warnings[0].startswith("WARNING t.scn:5:3: ") and len(warnings) == 2, warnings
        warnings = warnings[1:]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"WARNING {where}: this "), warnings
    assert what in warnings[0], warnings


@pytest.mark.parametrize("script", [
    "  rcpt 451 4.7.1 later when session 1\n  rcpt 250 2.1.5 ok\n",
    "  rcpt 451 4.7.1 later probability 0.5\n  rcpt 250 2.1.5 ok\n",
    "  rcpt 451 4.7.1 later when session 2\n  rcpt 550 5.1.1 no when session <= 3\n",
    "  rcpt 451 4.7.1 later when rcpt ~ \"^b@\"\n  rcpt 550 5.1.1 no when rcpt ~ \"^c@\"\n",
    "  rcpt 550 5.1.1 no when session != 1\n  rcpt 250 2.1.5 ok when session 1\n",
    "  connect refuse probability 0.5\n  rcpt 550 5.1.1 no\n",
    "  rcpt 452 4.5.3 too many when rcpt > 2\n  rcpt 250 2.1.5 ok\n",
    "  greet 554 5.7.1 busy when session 1\n  rcpt 550 5.1.1 no\n",
    "  greet 554 5.7.1 busy probability 0.5\n  rcpt 550 5.1.1 no\n",
    "  greet raw \"220 odd\\r\\n\"\n  rcpt 550 5.1.1 no\n",
    "  data 354 go ahead when session 2\n  data 554 5.7.1 no\n  dot 250 ok\n",
    "  data 554 5.7.1 no\n  dot 250 ok\ninject 2 from <a@sender.test> to <c@example.com> chunking\n",
], ids=["specific-first", "probability-first", "narrower-first", "other-regex", "complement",
        "random-connect", "per-transaction", "banner-refuses-once", "banner-refuses-sometimes",
        "raw-banner-2xx", "data-accepted-once", "data-refused-but-bdat"])
def test_line_that_may_take_effect_is_not_reported(mtasim, tmp_path, script):
    proc, warnings = check(mtasim, tmp_path, script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warnings == []


def test_run_warns_too_and_keeps_its_exit_status(mtasim, tmp_path):
    proc, warnings = check(mtasim, tmp_path, "  rcpt 250 2.1.5 ok\n  rcpt 550 5.1.1 no\n"
                           "expect message 1 delivered\n", command="run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warnings == ["WARNING t.scn:6:3: this rcpt line never takes effect: line 5 answers "
                        "every rcpt it would (the first line whose conditions hold wins)"]
