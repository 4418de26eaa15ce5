"""test_libesmtp - the core's SMTP_EV_* events beside the real libESMTP's.

tests/live/esmtp_send.c, built here against Debian's libesmtp-dev, sends
one message through ``mtasim serve`` and prints every event its
smtp_set_eventcb() callback sees (with the mailbox and status code of
MAILSTATUS / RCPTSTATUS, the octets of MESSAGEDATA, the transfer status of
MESSAGESENT) and the message's transfer status at the end.  mtasim's core
runs the same scenario in simulation (``mtasim run --json-trace``); its
``event`` records are compared session by session: numbers, mailboxes,
codes, and the final status.

One difference is documented and handled explicitly (LIBESMTP_DIFFERENCES):
the pieces MESSAGEDATA reports.  libESMTP raises it per header and per body
line, with that line's length before dot-stuffing; the core per write of the
wire data, each as much as the send buffer took (mtasim_env.h, "Back-pressure").  So a run of MESSAGEDATA events is compared as one,
and each side's lengths must add up to its own data phase (the core: every
byte written; libESMTP: all but the blank line and the final ".\\r\\n" it
writes itself) - per-piece lengths, not running totals, on both sides.
"""
import json
import re

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT
from tests.drivers.test_live import STEP_TIMEOUT, build_esmtp_send, run, serve
from tests.fidelity import cases, observe

LIBESMTP_DIFFERENCES = {
    "messagedata-pieces": "libESMTP raises SMTP_EV_MESSAGEDATA once per header and body line "
                          "(the line's length before dot-stuffing), the core once per "
                          "write of the wire data, as much as the send buffer took: runs are "
                          "compared as one, and "
                          "each side's lengths must add up to its own data phase",
}
# What libESMTP writes in the data phase without reporting it: the blank
# line after the headers (CRLF) and the final ".\r\n" (protocol.c, cmd_data2).
LIBESMTP_UNREPORTED = 2 + 3

# name -> (remote lines, recipients, sessions); "large" makes the core write
# its data in three pieces (libESMTP's probe sends its own small message).
LARGE_SIZE = 40000
DIALOGUES = {
    "large": ([], ["bob"], 1),
    "accept": ([], ["bob"], 1),
    "greylist": (["rcpt 451 4.7.1 greylisted, try again later   when session 1"], ["bob"], 2),
    "reject": (["rcpt 550 5.1.1 no such user"], ["bob"], 1),
    "partial": (['rcpt 550 5.1.1 no such user   when rcpt ~ "^hard@"'], ["ok", "hard"], 1),
    "mail-refused": (["mail 550 5.7.1 sender rejected"], ["bob"], 1),
    "data-refused": (["data 554 5.7.1 no thanks"], ["bob"], 1),
}


def scenario(tmp_path, name):
    remote, locals_, _ = DIALOGUES[name]
    case = cases.Case(name, name, remote, rcpts=locals_, body="Subject: libESMTP\n\nhello\n",
                      size=LARGE_SIZE if name == "large" else None)
    path = tmp_path / ("%s.scn" % name)
    path.write_text(cases.scenario_text(case))
    return case, path


def core_sessions(mtasim, path, tmp_path):
    """[(events, data_bytes)] per session of mtasim's own client."""
    out = tmp_path / "core.json"
    proc = run([mtasim, "run", "--json", out, "--json-trace", path])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sessions = []
    for t, kind, name, f in json.loads(out.read_text())["runs"][0]["trace"]:
        if kind == "event":
            n = int(f["event_no"])
            if n == 0:
                sessions.append([[], None])
            if n in (1, 2):
                item = (n, f["mailbox"], int(f["code"]))
            elif n == 3:
                item = (3, int(f["octets"]))
            elif n == 4:
                item = (4, int(f["code"]))
            else:
                item = (n,)
            sessions[-1][0].append(item)
        elif kind == "smtp" and "data_bytes" in f:
            sessions[-1][1] = int(f["data_bytes"])
    return [(ev, data) for ev, data in sessions]


def libesmtp_session(exe, port, case):
    """(events, final status) of one libESMTP session."""
    sent = run([exe, "127.0.0.1:%d" % port, cases.SENDER, *case.addresses()])
    assert sent.returncode == 0, sent.stderr
    events, status = [], None
    for line in sent.stdout.splitlines():
        m = re.match(r"event (\d+)(?: mailbox=(\S+) code=(\d+)| octets=(\d+)| code=(\d+))?$",
                     line)
        if m:
            n = int(m.group(1))
            if m.group(2):
                events.append((n, m.group(2), int(m.group(3))))
            elif m.group(4):
                events.append((n, int(m.group(4))))
            elif m.group(5):
                events.append((n, int(m.group(5))))
            else:
                events.append((n,))
        m = re.match(r"status (\d+)$", line)
        if m:
            status = int(m.group(1))
    return events, status


def collapse_data(events):
    """A run of MESSAGEDATA events as one (3, total octets) (messagedata-pieces)."""
    out = []
    for e in events:
        if e[0] == 3 and out and out[-1][0] == 3:
            out[-1] = (3, out[-1][1] + e[1])
        else:
            out.append(e)
    return out


def status_of(events):
    """The message's transfer status when the session ends: the last MESSAGESENT's."""
    sent = [e[1] for e in events if e[0] == 4]
    return sent[-1] if sent else 0


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    return build_esmtp_send(tmp_path_factory.mktemp("esmtp"))


@pytest.mark.parametrize("name", sorted(DIALOGUES))
def test_libesmtp_events_equal_the_cores(mtasim, probe, tmp_path, name):
    case, path = scenario(tmp_path, name)
    nsessions = DIALOGUES[name][2]
    trace = tmp_path / "serve.trace"
    real = []
    with serve(mtasim, path, "--sessions", str(nsessions), "--trace", trace) as (proc, port):
        for _ in range(nsessions):
            real.append(libesmtp_session(probe, port, case))
        proc.communicate(timeout=STEP_TIMEOUT)
    served = observe.text_records(trace.read_text())
    real_data = [int(f["data_bytes"]) for k, n, f in served if k == "smtp" and "data_bytes" in f]
    core = core_sessions(mtasim, path, tmp_path)
    assert len(core) == nsessions
    data_at = 0
    for (got, status), (want, core_data) in zip(real, core):
        # messagedata-pieces: each side's pieces add up to its own data phase.
        got_c, want_c = collapse_data(got), collapse_data(want)
        if any(e[0] == 3 for e in want):
            assert core_data == next(e[1] for e in want_c if e[0] == 3)
            if name == "large":
                # Back-pressure: the first write fills the empty 16 KiB send buffer
                # (net.ipv4.tcp_wmem[1]); later ones take what was acknowledged.
                pieces = [e[1] for e in want if e[0] == 3]
                assert pieces[0] == 16384 and len(pieces) > 2
                assert all(p <= 16384 for p in pieces) and sum(pieces) == core_data
            assert all(e[1] > 0 for e in want if e[0] == 3)
            assert next(e[1] for e in got_c if e[0] == 3) + LIBESMTP_UNREPORTED \
                == real_data[data_at]
            data_at += 1
        strip = [(e if e[0] != 3 else (3,)) for e in got_c]
        assert strip == [(e if e[0] != 3 else (3,)) for e in want_c]
        assert status == status_of(want)


def test_messagesent_follows_the_real_library_when_data_is_refused(mtasim, tmp_path):
    """The rule the comparison found (docs/events.md): MESSAGESENT ends a message
    whose DATA was refused - every recipient refused included - but not one whose
    MAIL was refused."""
    events = {}
    for name in ("reject", "mail-refused", "data-refused"):
        _, path = scenario(tmp_path, name)
        events[name] = core_sessions(mtasim, path, tmp_path)[0][0]
    assert (4, 554) in events["reject"]
    assert (4, 554) in events["data-refused"]
    assert not [e for e in events["mail-refused"] if e[0] == 4]


def test_docs_list_every_dialogue_and_difference():
    doc = (REPO_ROOT / "docs" / "fidelity.md").read_text()
    for name in list(DIALOGUES) + list(LIBESMTP_DIFFERENCES):
        assert "`%s`" % name in doc, name
