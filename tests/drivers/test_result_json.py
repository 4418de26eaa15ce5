"""The result JSON keeps text that is not UTF-8 (a remote's reply may be anything)."""
import json

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim


def test_non_utf8_reply_text_survives(mtasim, tmp_path):
    scn = tmp_path / "latin1.scn"
    # A reply with a Latin-1 byte (0xE9): invalid UTF-8, as old servers send it.
    scn.write_bytes(b"scenario latin1\n"
                    b"dns example.com MX 10 mx1.example.com\n"
                    b"dns mx1.example.com A 198.51.100.10\n"
                    b"remote 198.51.100.10\n"
                    b"  rcpt 550 5.1.1 utilisateur inconnu \xe9\n"
                    b"inject 1 from <a@sender.test> to <b@example.com>\n"
                    b"expect message 1 bounced\n")
    out = tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--json", str(out), str(scn)], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads(out.read_text())["runs"][0]
    note = run["messages"][0]["last_error"]
    assert note is not None, "last_error vanished from the JSON"
    assert note.startswith("550 5.1.1 utilisateur inconnu") and "\\xe9" in note, note


def test_recipient_statuses_and_dsn(mtasim, tmp_path):
    """Every recipient outcome carries its RFC 3463 status; a DSN carries
    the message it reports on and its text (docs/results.md)."""
    out = tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--json", str(out), "scenarios/bounces/dsn-delivered.scn"],
                      cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    messages = {m["id"]: m for m in json.loads(out.read_text())["runs"][0]["messages"]}
    rcpts = {r["address"]: r for r in messages[1]["rcpts"]}
    assert rcpts["nobody@example.com"]["state"] == "bounced"
    assert rcpts["nobody@example.com"]["status"] == "5.1.1"
    assert rcpts["nobody@example.com"]["remote_mta"] == "mx1.example.com"
    assert rcpts["bob@example.com"]["state"] == "delivered"
    assert rcpts["bob@example.com"]["status"] == "2.0.0"
    assert "dsn_of" not in messages[1]
    dsn = messages[1000000001]
    assert dsn["dsn_of"] == 1 and dsn["fate"] == "delivered"
    assert "Final-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n" \
        in dsn["dsn_text"]
    assert dsn["rcpts"][0]["address"] == "alice@sender.test"
