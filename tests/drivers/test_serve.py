"""test_serve - what ``mtasim serve`` shows and how it sends (docs/live.md).

* Its trace records the whole SMTP dialogue of every session, as ``mtasim
  run`` records its client's: ``smtp send`` for each command and one
  ``smtp send data_bytes=N`` for the message data (DATA after a 354, BDAT
  chunks), ``smtp recv`` for each reply line (live/serve_dialogue.c).
  ``mtasim live`` against ``mtasim serve`` of the same scenario: both
  traces hold the same dialogue, line for line.
* Replies that are ready together leave together: the replies to a
  pipelined group arrive in one read (one send(2), live/live_env.c), and
  replies written apart are not held back by Nagle's algorithm behind the
  client's delayed ACK (TCP_NODELAY on accepted sockets).

Clients here are plain sockets on 127.0.0.1 with timeouts; every server has
a duration limit and is killed in a finally block (tests/drivers/test_live.py).
"""
import re
import socket
import struct
import subprocess
import time

import pytest

from tests.drivers.test_live import LIVE, STEP_TIMEOUT, dialogue, live, serve, simulate

TRACE_SMTP = re.compile(r"^\S+ smtp (send|recv) conn=(\d+) (line|data_bytes)=(.*)$")


def serve_dialogue(trace_text):
    """The smtp records of a serve trace: [(direction, line or ('data', N))], per
    connection in order of their first record."""
    sessions = {}
    for line in trace_text.splitlines():
        m = TRACE_SMTP.match(line)
        if not m:
            continue
        direction, conn, key, value = m.groups()
        if key == "line":
            value = value[1:-1].replace('\\"', '"') if value.startswith('"') else value
            item = (direction, value)
        else:
            item = (direction, ("data", int(value)))
        sessions.setdefault(conn, []).append(item)
    return list(sessions.values())


def recv_reply(sock, buf=b""):
    """Read until buf holds one complete reply; (reply lines, the rest)."""
    while True:
        lines = buf.split(b"\r\n")
        for i, ln in enumerate(lines[:-1]):
            if len(ln) >= 4 and ln[3:4] == b" ":
                return [x.decode() for x in lines[:i + 1]], b"\r\n".join(lines[i + 1:])
        data = sock.recv(4096)
        assert data, "the server closed the connection"
        buf += data


# struct tcp_info (linux/tcp.h): __u32 tcpi_data_segs_in at byte 152 (Linux 4.6+),
# the data segments that arrived.
TCP_INFO_DATA_SEGS_IN = 152


def data_segments_in(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    assert len(info) >= TCP_INFO_DATA_SEGS_IN + 4, "tcp_info too short: %d" % len(info)
    return struct.unpack_from("I", info, TCP_INFO_DATA_SEGS_IN)[0]


def write_scenario(tmp_path, body):
    scn = tmp_path / "serve.scn"
    scn.write_text("scenario serve-test\nremote 198.51.100.10 name mx.test\n" + body)
    return scn


def test_serve_trace_records_the_dialogue(mtasim, tmp_path):
    """Commands, replies and the data of a session, with a dot-stuffed body and a
    BDAT chunk, exactly as the client sent and received them."""
    scn = write_scenario(tmp_path, "  ehlo 250-mx.test\n  ehlo 250-PIPELINING\n"
                                   "  ehlo 250 CHUNKING\n")
    trace = tmp_path / "serve.trace"
    body = b"Subject: t\r\n\r\n..one dot\r\nplain\r\n"
    with serve(mtasim, scn, "--once", "--trace", trace) as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as c:
            rest = b""
            for cmd in [None, b"EHLO client.test", b"MAIL FROM:<a@sender.test>",
                        b"RCPT TO:<b@example.com>", b"DATA"]:
                if cmd is not None:
                    c.sendall(cmd + b"\r\n")
                _, rest = recv_reply(c, rest)
            c.sendall(body + b".\r\n")
            _, rest = recv_reply(c, rest)
            c.sendall(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.com>\r\n")
            _, rest = recv_reply(c, rest)
            _, rest = recv_reply(c, rest)
            c.sendall(b"BDAT 7 LAST\r\n.\r\nabc\n")     # raw octets: no end at "."
            _, rest = recv_reply(c, rest)
            c.sendall(b"QUIT\r\n")
            _, rest = recv_reply(c, rest)
        proc.communicate(timeout=STEP_TIMEOUT)
    got = serve_dialogue(trace.read_text())
    assert len(got) == 1
    assert got[0] == [
        ("recv", "220 mx.test ESMTP mtasim"),
        ("send", "EHLO client.test"),
        ("recv", "250-mx.test"), ("recv", "250-PIPELINING"), ("recv", "250 CHUNKING"),
        ("send", "MAIL FROM:<a@sender.test>"),
        ("recv", "250 2.1.0 Ok"),
        ("send", "RCPT TO:<b@example.com>"),
        ("recv", "250 2.1.5 Ok"),
        ("send", "DATA"),
        ("recv", "354 End data with <CR><LF>.<CR><LF>"),
        ("send", ("data", len(body) + 3)),
        ("recv", "250 2.0.0 Ok: queued"),
        ("send", "MAIL FROM:<a@sender.test>"),
        ("send", "RCPT TO:<b@example.com>"),
        ("recv", "250 2.1.0 Ok"),
        ("recv", "250 2.1.5 Ok"),
        ("send", "BDAT 7 LAST"),
        ("send", ("data", 7)),
        ("recv", "250 2.0.0 Ok: queued"),
        ("send", "QUIT"),
        ("recv", "221 2.0.0 Bye"),
    ]


def test_live_and_serve_traces_hold_the_same_dialogue(mtasim, tmp_path):
    """mtasim live (the core as client) against mtasim serve: the client's trace
    and the server's trace record the same commands and replies, in order."""
    scenario = LIVE / "greylist.scn"
    sim = simulate(mtasim, scenario, tmp_path)
    trace = tmp_path / "serve.trace"
    with serve(mtasim, scenario, "--sessions", "2", "--trace", trace) as (proc, port):
        got = live(mtasim, scenario, port, tmp_path)
        proc.communicate(timeout=STEP_TIMEOUT)
    client = dialogue(got)
    assert client == dialogue(sim)
    served = [(d, v if isinstance(v, str) else None)
              for session in serve_dialogue(trace.read_text()) for d, v in session]
    # "smtp sent" (the data has left the client's host) is the client's own knowledge.
    assert served == [(d, line) for d, line in client if d != "sent"]
    assert [d for d, _ in served].count("send") > 6


def test_pipelined_replies_arrive_together(mtasim, tmp_path):
    """The replies to a pipelined MAIL, RCPT, RCPT, DATA leave in one write: they
    arrive as one TCP segment, soon (written one by one they are several)."""
    scn = write_scenario(tmp_path, "")
    with serve(mtasim, scn, "--once") as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _, rest = recv_reply(c)
            c.sendall(b"EHLO client.test\r\n")
            lines, rest = recv_reply(c, rest)
            assert "250-PIPELINING" in lines
            assert rest == b""
            took = []
            for _ in range(3):      # several groups: each must come whole
                segs = data_segments_in(c)
                t0 = time.monotonic()
                c.sendall(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.com>\r\n"
                          b"RCPT TO:<c@example.com>\r\nDATA\r\n")
                first = c.recv(4096)
                took.append(time.monotonic() - t0)
                time.sleep(0.05)        # anything sent apart would be in by now
                assert data_segments_in(c) - segs == 1
                assert first.count(b"\r\n") == 4, first
                assert first.endswith(b"\r\n") and b"\r\n354 " in first, first
                c.sendall(b"Subject: x\r\n\r\nhi\r\n.\r\nRSET\r\n")
                first = c.recv(4096)
                if first.count(b"\r\n") < 2:
                    first += c.recv(4096)
                assert first.startswith(b"250 2.0.0") and first.count(b"\r\n") == 2, first
            # The best of the groups: a loaded machine may slow one down.
            assert min(took) < 0.030, took
            c.sendall(b"QUIT\r\n")
            recv_reply(c)
        proc.communicate(timeout=STEP_TIMEOUT)


def test_replies_written_apart_are_not_held_back(mtasim, tmp_path):
    """Replies the script spaces by 5 ms leave when they are due (a group takes
    about 15 ms): with Nagle's algorithm a reply written while the one before
    is unacknowledged waits for the client's delayed ACK (40 ms on Linux), so
    every group would take more than 40 ms.  The best of five groups counts, so
    that a loaded machine slowing one group down does not decide."""
    scn = write_scenario(tmp_path, "  rcpt 250 2.1.5 ok   delay 5ms\n"
                                   "  data 354 go ahead   delay 5ms\n")
    with serve(mtasim, scn, "--once") as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as c:
            _, rest = recv_reply(c)
            c.sendall(b"EHLO client.test\r\n")
            _, rest = recv_reply(c, rest)
            took = []
            for _ in range(5):
                t0 = time.monotonic()
                c.sendall(b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@example.com>\r\n"
                          b"RCPT TO:<c@example.com>\r\nDATA\r\n")
                for _ in range(4):
                    _, rest = recv_reply(c, rest)
                took.append(time.monotonic() - t0)
                c.sendall(b"Subject: x\r\n\r\nhi\r\n.\r\n")
                _, rest = recv_reply(c, rest)
            assert min(took) < 0.038, took
            c.sendall(b"QUIT\r\n")
            recv_reply(c, rest)
        proc.communicate(timeout=STEP_TIMEOUT)


# ---- STARTTLS (docs/tls.md) ---------------------------------------------------

def test_swaks_tls_completes_a_session(mtasim, tmp_path):
    """swaks --tls: STARTTLS, a real TLS handshake with the certificate serve
    made at start, EHLO again and a whole transaction inside TLS; the remote's
    scripted handshake ran too (remote tls outcome=ok) and it got the message."""
    scn = write_scenario(tmp_path, "  tls ok\n")
    trace = tmp_path / "serve.trace"
    with serve(mtasim, scn, "--once", "--trace", trace) as (proc, port):
        out = subprocess.run(["swaks", "--tls", "--server", f"127.0.0.1:{port}",
                              "--helo", "client.test", "--from", "a@sender.test",
                              "--to", "b@mx.test"], capture_output=True, text=True,
                             timeout=STEP_TIMEOUT)
        proc.communicate(timeout=STEP_TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in out.stdout, out.stdout
    assert "=== TLS started with cipher" in out.stdout, out.stdout
    assert "<~  250 2.0.0 Ok: queued" in out.stdout, out.stdout        # ~: inside TLS
    text = trace.read_text()
    assert re.search(r"remote tls remote=198\.51\.100\.10 session=1 outcome=ok", text), text
    assert re.search(r"conn tls fd=\d+", text), text
    assert re.search(r"remote message .*from=a@sender\.test rcpts=1", text), text
    # The dialogue inside TLS is traced like the rest.
    assert ("send", "MAIL FROM:<a@sender.test>") in serve_dialogue(text)[0]


def test_openssl_s_client_starttls(mtasim, tmp_path):
    """openssl s_client -starttls smtp: the handshake completes (TLS 1.3 with the
    self-signed certificate for the remote's name), EHLO and QUIT are answered
    inside TLS, and serve ends the session with close_notify, not a bare EOF."""
    scn = write_scenario(tmp_path, "  tls ok\n")
    with serve(mtasim, scn, "--once") as (proc, port):
        out = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                              f"127.0.0.1:{port}", "-servername", "mx.test", "-ign_eof"],
                             input="EHLO client.test\r\nQUIT\r\n", capture_output=True,
                             text=True, timeout=STEP_TIMEOUT)
        proc.communicate(timeout=STEP_TIMEOUT)
    both = out.stdout + out.stderr
    assert "CN = mx.test" in both, both
    assert re.search(r"Protocol\s*:\s*TLSv1\.3|New, TLSv1\.3", both), both
    assert "250 ENHANCEDSTATUSCODES" in out.stdout, both
    assert "221 2.0.0 Bye" in out.stdout, both
    assert "unexpected eof" not in both, both


def test_scripted_handshake_failure_fails_the_real_one(mtasim, tmp_path):
    """tls handshake-failure: the remote answers 220 and then refuses the
    handshake; serve cuts the real client's handshake too, so swaks --tls
    cannot start TLS and sends no mail."""
    scn = write_scenario(tmp_path, "  tls handshake-failure\n")
    trace = tmp_path / "serve.trace"
    with serve(mtasim, scn, "--once", "--trace", trace) as (proc, port):
        out = subprocess.run(["swaks", "--tls", "--server", f"127.0.0.1:{port}",
                              "--from", "a@sender.test", "--to", "b@mx.test"],
                             capture_output=True, text=True, timeout=STEP_TIMEOUT)
        proc.communicate(timeout=STEP_TIMEOUT)
    assert out.returncode != 0, out.stdout
    assert "<-  220 2.0.0 Ready to start TLS" in out.stdout, out.stdout
    assert "Ok: queued" not in out.stdout, out.stdout
    text = trace.read_text()
    assert "outcome=handshake-failure" in text, text
    assert "remote message" not in text, text


# What openssl s_client sees of each scripted handshake failure (docs/tls.md,
# "Live"): the remote's fatal alert is the real one's, its reset a reset, its
# close an end of file; no cipher is ever agreed.
SCRIPTED_FAILURES = {
    "protocol-version": r"alert protocol version:.*SSL alert number 70",
    "handshake-failure": r"alert handshake failure:.*SSL alert number 40",
    # ECONNRESET, or EPIPE when the RST came before the ClientHello was written
    "reset": r"errno=(104|32)\b",
    "close": r"unexpected eof while reading",
}


@pytest.mark.parametrize("outcome", sorted(SCRIPTED_FAILURES))
def test_scripted_failure_is_the_real_failure(mtasim, tmp_path, outcome):
    """openssl s_client -starttls smtp against "tls OUTCOME": the real
    handshake waits at the ClientHello for the scripted one and fails the
    same way - alert 70 or 40 from OpenSSL, a RST, a FIN - and serve counts
    the session as served."""
    scn = write_scenario(tmp_path, "  tls %s\n" % outcome)
    trace = tmp_path / "serve.trace"
    with serve(mtasim, scn, "--once", "--trace", trace) as (proc, port):
        out = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                              f"127.0.0.1:{port}", "-servername", "mx.test"],
                             input="QUIT\r\n", capture_output=True, text=True,
                             timeout=STEP_TIMEOUT)
        served, _ = proc.communicate(timeout=STEP_TIMEOUT)
    both = out.stdout + out.stderr
    assert re.search(SCRIPTED_FAILURES[outcome], both), both
    for other, pattern in SCRIPTED_FAILURES.items():
        assert other == outcome or not re.search(pattern, both), (other, both)
    assert "Cipher is (NONE)" in both, both
    assert "outcome=%s" % outcome in trace.read_text()
    assert "1 session served" in served, served


# What a verifying openssl s_client sees of each certificate clause: serve
# shows the certificate the scripted remote shows - its name, its dates -
# self-signed (docs/tls.md, "Live").  OpenSSL's verify codes: 10 expired,
# 18 self-signed, 62 hostname mismatch.
CERT_CLAUSES = {
    "": ("mx.test", {18}),
    " cert mail.other.test": ("mail.other.test", {18, 62}),
    " expired": ("mx.test", {10, 18}),
}


@pytest.mark.parametrize("clause", sorted(CERT_CLAUSES))
def test_scripted_certificate_is_the_real_certificate(mtasim, tmp_path, clause):
    """tls ok [cert NAME | expired]: the handshake completes, and the
    certificate a verifying client gets names what the script names and is
    in or out of date as the script says."""
    scn = write_scenario(tmp_path, "  tls ok%s\n" % clause)
    with serve(mtasim, scn, "--once") as (proc, port):
        out = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                              f"127.0.0.1:{port}", "-servername", "mx.test",
                              "-verify_hostname", "mx.test", "-verify", "1"],
                             input="QUIT\r\n", capture_output=True, text=True,
                             timeout=STEP_TIMEOUT)
        proc.communicate(timeout=STEP_TIMEOUT)
    both = out.stdout + out.stderr
    name, codes = CERT_CLAUSES[clause]
    assert re.search(r"subject=CN ?= ?%s\b" % re.escape(name), both), both
    assert "Cipher is (NONE)" not in both and re.search(r"Cipher is \S+", both), both
    seen = {int(n) for n in re.findall(r"verify error:num=(\d+)", both)}
    assert seen == codes, (seen, both)


def test_live_client_negotiates_real_tls_with_serve(mtasim, tmp_path):
    """mtasim live with tls_policy required against mtasim serve (tls ok): the
    core's client does STARTTLS and a real OpenSSL handshake (live/live_tls.c),
    sees serve's self-signed certificate as untrusted but, at level required
    (Postfix encrypt), delivers inside TLS; the simulated run of the same
    scenario takes the same path with a trusted simulated certificate."""
    scn = tmp_path / "tls.scn"
    scn.write_text(
        "scenario live-tls\n"
        "dns example.com MX 10 mx1.example.com\n"
        "dns mx1.example.com A 198.51.100.10\n"
        "config tls_policy required\n"
        # No idle connection kept after the delivery (5 s of real time by
        # default): the short timers docs/live.md asks of live scenarios.
        "config idle_timeout 0s\n"
        "remote 198.51.100.10 name mx1.example.com\n"
        "  tls ok\n"
        "inject 1 from <alice@sender.test> to <bob@example.com>\n"
        "expect trace in order\n"
        "  tls policy level=required outcome~\"^(secure|unverified)$\"\n"
        "  queue delivered msg=1\n"
        "expect message 1 delivered within 10s\n")
    sim = simulate(mtasim, scn, tmp_path)
    with serve(mtasim, scn, "--once") as (proc, port):
        got = live(mtasim, scn, port, tmp_path)
        proc.communicate(timeout=STEP_TIMEOUT)
    policy = [rec[3] for rec in got["trace"] if rec[1] == "tls" and rec[2] == "policy"]
    assert len(policy) == 1, got["trace"]
    assert policy[0]["outcome"] == "unverified", policy
    assert "certificate not trusted (self-signed)" in policy[0]["note"], policy
    assert policy[0]["note"].startswith("TLSv1.3 "), policy
    ok = [rec[3] for rec in got["trace"] if rec[1] == "event" and rec[2] == "SMTP_EV_STARTTLS_OK"]
    assert len(ok) == 1 and int(ok[0]["bits"]) >= 128, ok
    assert [line for d, line in dialogue(got) if d == "send"].count("EHLO mtasim.test") == 2
    assert dialogue(got) == dialogue(sim)
