"""test_postfix_tls - Postfix's SMTP client does STARTTLS with ``mtasim serve``.

Issue 23: Postfix's client with ``smtp_tls_security_level = may`` and with
``= encrypt`` completes the TLS handshake with ``mtasim serve`` (docs/tls.md,
"Live").  One private Postfix instance (postfix.py), three serves on loopback
ports, four messages at once:

* may.tls.test -> transport ``tlsmay`` (level may) -> serve A (``tls ok``):
  delivered inside TLS;
* encrypt.tls.test -> transport ``tlsencrypt`` (level encrypt) -> serve A:
  delivered inside TLS;
* plain.tls.test -> transport ``tlsencrypt`` -> serve B (no ``tls`` line,
  so no STARTTLS in its EHLO reply): Postfix defers, "TLS is required, but
  was not offered by host", and the message stays queued;
* fallback.tls.test -> ``tlsmay`` -> serve C (``tls handshake-failure``):
  deferred 4.7.5 until the message is minimal_backoff_time old, then
  delivered in cleartext to the same server (docs/tls.md).

Evidence from both sides: Postfix's log ("... TLS connection established
to ...", smtp_tls_loglevel 1; status=sent / status=deferred) and
``postqueue -j``; serve's trace (STARTTLS before MAIL in each dialogue, the
remote's scripted handshake "remote tls ... outcome=ok", OpenSSL's "conn
tls", and the remote's "remote message" records).

Needs root, as test_postfix.py (postfix.require_root); every wait is bounded
(WAIT_TIMEOUT).  Takes about 6 s (the fallback waits for minimal_backoff_time).
"""
import json
import re
import tempfile
import time
from pathlib import Path

import pytest

from tests.drivers.test_serve import serve_dialogue
from tests.fidelity import harness, postfix

pytestmark = pytest.mark.xdist_group("postfix")

WAIT_TIMEOUT = 20
SENDER = "alice@sender.test"
# The TLS transports: Postfix's smtp client at each level, logging the
# handshake's outcome (smtp_tls_loglevel 1); tlsmgr serves the TLS session
# cache and PRNG the smtp client asks for.
MASTER_TLS = """\
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
tlsmay    unix  -       -       n       -       -       smtp
  -o smtp_tls_security_level=may
  -o smtp_tls_loglevel=1
tlsencrypt unix -       -       n       -       -       smtp
  -o smtp_tls_security_level=encrypt
  -o smtp_tls_loglevel=1
"""
# domain: (transport, serve, expected fate)
ROUTES = {
    "may.tls.test": ("tlsmay", "tls", "sent"),
    "encrypt.tls.test": ("tlsencrypt", "tls", "sent"),
    "plain.tls.test": ("tlsencrypt", "plain", "deferred"),
    "fallback.tls.test": ("tlsmay", "failing", "sent"),
}
SCENARIOS = {
    "tls": "scenario postfix-tls\nremote 198.51.100.10 name mx.tls.test\n  tls ok\n",
    "plain": "scenario postfix-no-tls\nremote 198.51.100.11 name mx.plain.test\n",
    "failing": "scenario postfix-tls-fails\nremote 198.51.100.12 name mx.failing.test\n"
               "  tls handshake-failure\n",
}


def message(domain):
    mid = "<%s@fidelity.test>" % domain
    return mid, ("From: <%s>\nTo: <user@%s>\nSubject: tls %s\nMessage-ID: %s\n\nhello\n"
                 % (SENDER, domain, domain, mid))


def wait_fates(pf, qids, final, timeout):
    """Until each queue id has a status= line from its smtp transport, and those
    of final a status=sent: {qid: [status...]}."""
    deadline = time.monotonic() + timeout
    while True:
        log = pf.log_text()
        fates = {q: [m.group(4) for m in postfix.LOG_STATUS.finditer(log) if m.group(2) == q]
                 for q in qids}
        if (all(fates.values()) and all("sent" in fates[q] for q in final)) \
                or time.monotonic() > deadline:
            return fates
        time.sleep(0.1)


def wait_qids(pf, message_ids, timeout):
    deadline = time.monotonic() + timeout
    while True:
        qids = {m.group(2): m.group(1) for m in postfix.LOG_MSGID.finditer(pf.log_text())}
        if all(mid in qids for mid in message_ids) or time.monotonic() > deadline:
            return qids
        time.sleep(0.1)


@pytest.fixture(scope="module")
def run(mtasim):
    why = postfix.not_ready()
    if why:
        pytest.fail(why, pytrace=False)
    with tempfile.TemporaryDirectory(prefix="mtasim-postfix-tls-") as work:
        work = Path(work)
        work.chmod(0o755)           # Postfix's daemons (user postfix) go through it
        serves, ports, routes = {}, {}, {}
        pf = postfix.Postfix(work / "postfix", routes, master_extra=MASTER_TLS)
        try:
            for name, text in SCENARIOS.items():
                (work / ("%s.scn" % name)).write_text(text)
                serves[name], ports[name] = harness.start_serve(
                    mtasim, work / ("%s.scn" % name), work / ("%s.trace" % name))
            for dom, (transport, which, _) in ROUTES.items():
                routes[dom] = (transport, ports[which])
            pf.start()
            mids = {}
            for dom in ROUTES:
                mids[dom], text = message(dom)
                pf.inject(SENDER, ["user@%s" % dom], text)
            qids = wait_qids(pf, list(mids.values()), WAIT_TIMEOUT)
            qid = {dom: qids.get(mids[dom]) for dom in ROUTES}
            assert all(qid.values()), "Postfix took in %s\n%s" % (qid, pf.log_text())
            fates = wait_fates(pf, list(qid.values()), [qid["fallback.tls.test"]],
                               WAIT_TIMEOUT)
            queue = [json.loads(line) for line in pf.queue()]
            log = pf.log_text()
        finally:
            pf.stop()
            for proc in serves.values():
                harness.stop_serve(proc)
        traces = {name: (work / ("%s.trace" % name)).read_text() for name in SCENARIOS}
        yield {"qid": qid, "fates": {d: fates[q] for d, q in qid.items()}, "queue": queue,
               "log": log, "traces": traces, "ports": ports}


def smtp_lines(log, qid):
    return [ln for ln in log.splitlines() if ("%s: to=" % qid) in ln]


def test_may_and_encrypt_deliver_inside_tls(run):
    """Level may and level encrypt, against serve's "tls ok": Postfix logs the
    TLS connection to serve's port, then status=sent; serve's scripted remote
    ran its handshake for each session, OpenSSL completed the real one, and
    the remote got both messages, each after STARTTLS."""
    log, port = run["log"], run["ports"]["tls"]
    for dom in ("may.tls.test", "encrypt.tls.test"):
        assert run["fates"][dom] == ["sent"], (dom, run["fates"], log)
    # Each smtp process's TLS line, then its delivery's status line (one
    # session per delivery: smtp_connection_cache_on_demand = no).
    established = dict(re.findall(r"postfix/smtp\[(\d+)\]: (?:Untrusted|Anonymous|Trusted|"
                                  r"Verified) TLS connection established to "
                                  r"127\.0\.0\.1\[127\.0\.0\.1\]:%d: (TLSv1\.[23]) " % port,
                                  log))
    for dom in ("may.tls.test", "encrypt.tls.test"):
        pid = re.search(r"postfix/smtp\[(\d+)\]: %s: to=<user@%s>.* status=sent"
                        % (run["qid"][dom], re.escape(dom)), log).group(1)
        assert pid in established, (dom, pid, established, log)
        before = log.index("postfix/smtp[%s]: %s: to=" % (pid, run["qid"][dom]))
        assert log.index("postfix/smtp[%s]: " % pid) < before, log
    trace = run["traces"]["tls"]
    assert len(re.findall(r"remote tls remote=198\.51\.100\.10 session=\d+ outcome=ok",
                          trace)) == 2, trace
    assert len(re.findall(r"conn tls fd=\d+", trace)) == 2, trace
    assert len(re.findall(r"remote message .*rcpts=1", trace)) == 2, trace
    rcpts = set()
    for dialogue in serve_dialogue(trace):
        sent = [line for direction, line in dialogue if direction == "send"]
        assert "STARTTLS" in sent, dialogue
        mail = [i for i, line in enumerate(sent) if str(line).startswith("MAIL FROM:")]
        assert mail and mail[0] > sent.index("STARTTLS"), dialogue
        # RFC 3207 4.2: EHLO again after the handshake.
        assert [str(x).split()[0] for x in sent[sent.index("STARTTLS"):mail[0]]] == [
            "STARTTLS", "EHLO"], dialogue
        rcpts.update(line for line in sent if str(line).startswith("RCPT TO:"))
    assert rcpts == {
        "RCPT TO:<user@may.tls.test>", "RCPT TO:<user@encrypt.tls.test>"}, rcpts


def test_encrypt_defers_when_starttls_is_not_offered(run):
    """Level encrypt against a serve without STARTTLS: Postfix never sends
    MAIL, defers ("TLS is required, but was not offered by host") and keeps
    the message queued; the remote got no message."""
    qid, log = run["qid"]["plain.tls.test"], run["log"]
    assert run["fates"]["plain.tls.test"] and set(run["fates"]["plain.tls.test"]) == {
        "deferred"}, log
    assert all("TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]" in ln
               for ln in smtp_lines(log, qid)), smtp_lines(log, qid)
    queued = [e for e in run["queue"] if e.get("queue_id") == qid]
    assert len(queued) == 1, run["queue"]
    assert [r["address"] for r in queued[0]["recipients"]] == ["user@plain.tls.test"]
    assert "TLS is required" in queued[0]["recipients"][0].get("delay_reason", ""), queued
    trace = run["traces"]["plain"]
    assert "remote message" not in trace, trace
    for dialogue in serve_dialogue(trace):
        sent = [line for direction, line in dialogue if direction == "send"]
        assert not any(str(line).startswith("MAIL") for line in sent), dialogue
    # The sent ones left the queue: only the deferred one is there.
    assert [e.get("queue_id") for e in run["queue"]] == [qid], run["queue"]


def test_may_after_a_failed_handshake(run):
    """Level may against "tls handshake-failure" (serve: the real alert 40).
    Postfix 3.x (smtp.h, PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE) goes to
    cleartext only for mail queued at least minimal_backoff_time (2 s here):
    before that each attempt is deferred, 4.7.5 "Cannot start TLS: handshake
    failure"; then the handshake fails once more and the same server gets the
    message in a cleartext session.  scenarios/tls/handshake-failure-
    opportunistic.scn scripts the core's same course (docs/tls.md)."""
    qid, log = run["qid"]["fallback.tls.test"], run["log"]
    fates = run["fates"]["fallback.tls.test"]
    assert len(fates) >= 2 and fates[-1] == "sent" and set(fates[:-1]) == {"deferred"}, (
        fates, log)
    mine = smtp_lines(log, qid)
    assert all("dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)" in ln
               for ln in mine[:-1]), mine
    assert "SSL alert number 40" in log, log
    # Serve's sessions (descriptors are reused: split at each banner).
    sessions = []
    for dialogue in serve_dialogue(run["traces"]["failing"]):
        for direction, line in dialogue:
            if direction == "recv" and str(line).startswith("220 mx.failing.test "):
                sessions.append([])
            if sessions:
                sessions[-1].append((direction, line))
    sent = [[line for d, line in sess if d == "send"] for sess in sessions]
    assert len(sent) == len(fates) + 1, sent
    for cmds in sent[:-1]:
        assert "STARTTLS" in cmds and not any(str(c).startswith("MAIL") for c in cmds), cmds
    assert "STARTTLS" not in sent[-1] and any(str(c).startswith("MAIL") for c in sent[-1]), sent
    trace = run["traces"]["failing"]
    assert trace.count("outcome=handshake-failure") == len(fates), trace
    assert len(re.findall(r"remote message .*rcpts=1", trace)) == 1, trace
