"""observe - what a client did, in a form both sides share.

The observable of one case, for Postfix (from the ``mtasim serve`` trace
and Postfix's mail log) and for mtasim's core (from ``mtasim run
--json-trace``) alike:

  sessions       the SMTP sessions the remote accepted
  transactions   the MAIL commands, over all sessions
  commands       per session, the commands in order (NORMALISATIONS applied)
  fates          per recipient, what each delivery attempt decided for it, in
                 order: deferred, delivered, bounced (or expired); the last
                 is its fate ("deferred" last: still queued at the end)
  last_replies   per session, the code of the last reply the client got
                 (not compared: what documented differences look at)

Both traces carry the dialogue as the same records (``smtp send`` /
``smtp recv``, live/serve_dialogue.c), so one function reads both.

NORMALISATIONS is the complete list of what is changed before comparing;
each entry says why, and docs/fidelity.md shows the list.  Nothing else is
mapped: a difference anywhere else shows as a difference.
"""
import re

# (name, what is changed, why) - applied to both sides, in this order.
NORMALISATIONS = [
    ("client-name", "the argument of EHLO and HELO is dropped",
     "the client's own host name is configuration (Postfix's myhostname, the "
     "core's binding ehlo name)"),
    ("esmtp-parameters", "the ESMTP parameters of MAIL FROM and RCPT TO are dropped",
     "SIZE= counts the message as each client sends it, and Postfix adds "
     "Received:/Date: headers; the parameters the core sends are checked by the "
     "scenarios under scenarios/smtp/"),
    ("data-size", "the message data is one item, whatever its size",
     "the same reason: Postfix adds headers"),
    ("rset-before-quit", "an RSET right before the QUIT that ends a session is dropped",
     "Postfix sends RSET before QUIT after a failed transaction (it resets the "
     "session it may cache); RSET with nothing to reset and QUIT change nothing "
     "for the server (RFC 5321 4.1.1.5)"),
]

TEXT_RECORD = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) (\w+) (\w+)(.*)$")
TEXT_FIELD = re.compile(r' (\w+)=("(?:[^"\\]|\\.)*"|\S+)')
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def unquote(value):
    if not value.startswith('"'):
        return value
    return re.sub(r"\\(x[0-9a-f]{2}|.)",
                  lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1).startswith("x")
                  else ESCAPES.get(m.group(1), m.group(1)), value[1:-1])


def text_records(text):
    """A text trace (mtasim serve --trace) as [(kind, name, {field: value})]."""
    out = []
    for line in text.splitlines():
        m = TEXT_RECORD.match(line)
        if m:
            fields = {k: unquote(v) for k, v in TEXT_FIELD.findall(m.group(4))}
            out.append((m.group(2), m.group(3), fields))
    return out


def json_records(run):
    """A run of mtasim run --json-trace as [(kind, name, {field: value})]."""
    return [(r[1], r[2], {k: str(v) for k, v in r[3].items()}) for r in run["trace"]]


def command_of(fields):
    """One client command (or the data) as compared, after the normalisations."""
    if "data_bytes" in fields:
        return "<message data>"                                   # data-size
    line = fields.get("line", "")
    verb = line.split(" ", 1)[0].upper()
    if verb in ("EHLO", "HELO"):
        return verb                                               # client-name
    m = re.match(r"(?i)(MAIL FROM:|RCPT TO:)\s*(<[^>]*>)", line)
    if m:
        return m.group(1).upper() + m.group(2)                    # esmtp-parameters
    return line


def sessions_of(records, start):
    """([commands of each session], [last reply code of each session]), in the
    order sessions began.  start is the conn record that begins a session on
    the client's descriptor: "accept" in a serve trace, "established" in a
    simulated run."""
    sessions, last, current = [], [], {}
    for kind, name, fields in records:
        if kind == "conn" and name == start:
            current[fields["fd"]] = len(sessions)
            sessions.append([])
            last.append(None)
        elif kind == "smtp" and fields.get("conn") in current:
            at = current[fields["conn"]]
            if name == "send":
                sessions[at].append(command_of(fields))
            elif re.match(r"\d{3}[ ]|\d{3}$", fields.get("line", "")):
                last[at] = int(fields["line"][:3])
    for cmds in sessions:                                         # rset-before-quit
        if len(cmds) >= 2 and cmds[-1] == "QUIT" and cmds[-2] == "RSET":
            del cmds[-2]
    return sessions, last


def observable(sessions_last, fates):
    sessions, last = sessions_last
    return {
        "sessions": len(sessions),
        "transactions": sum(1 for s in sessions for c in s if c.startswith("MAIL FROM:")),
        "commands": sessions,
        "fates": dict(sorted(fates.items())),
        "last_replies": last,
    }


# Postfix's status= words, and the daemons whose lines are delivery attempts
# (the queue manager's "deferred (delivery temporarily suspended ...)" is no
# attempt: no session was made).
POSTFIX_FATES = {"sent": "delivered", "bounced": "bounced", "expired": "expired",
                 "deferred": "deferred"}
POSTFIX_AGENTS = ("smtp", "limit2")


def postfix_observable(serve_trace_text, statuses):
    """statuses: {recipient: [(daemon, Postfix status), ...]} from its mail log."""
    fates = {}
    for rcpt, seen in statuses.items():
        fates[rcpt] = [POSTFIX_FATES.get(st, st) for daemon, st in seen
                       if daemon in POSTFIX_AGENTS or st != "deferred"]
    return observable(sessions_of(text_records(serve_trace_text), "accept"), fates)


MTASIM_FATES = {"delivered": "delivered", "bounced": "bounced", "expired": "expired",
                "transient": "deferred"}


# The delivery status notification the core sends the sender about a bounce
# is a message of its own (id 1000000000 + k, docs/queue.md "Bounces"), as
# Postfix's bounce(8) message is; neither is this message's delivery, and
# Postfix's is not in its observable either.
DSN_ID_BASE = 1000000000


def mtasim_observable(run):
    records = json_records(run)
    fates = {}
    for kind, name, fields in records:
        if kind == "queue" and int(fields.get("msg", "0") or 0) > DSN_ID_BASE:
            continue
        if kind == "queue" and "rcpt" in fields and name in MTASIM_FATES:
            fates.setdefault(fields["rcpt"], []).append(MTASIM_FATES[name])
    return observable(sessions_of(records, "established"), fates)


def summary(obs):
    """One table cell: sessions, transactions and the fates, counted."""
    if obs is None:
        return "-"
    counts = {}
    for history in obs["fates"].values():
        fate = history[-1] if history else "no attempt"
        counts[fate] = counts.get(fate, 0) + 1
    fates = ", ".join("%d %s" % (n, f) for f, n in sorted(counts.items()))
    return "%d session%s, %d transaction%s; %s" % (
        obs["sessions"], "" if obs["sessions"] == 1 else "s",
        obs["transactions"], "" if obs["transactions"] == 1 else "s", fates or "no recipient")


def differences(a, b):
    """The aspects in which two observables differ, in a fixed order."""
    return [k for k in ("sessions", "transactions", "commands", "fates") if a[k] != b[k]]
