"""cases - the remote behaviours of the differential fidelity harness.

Each case is one scripted remote MTA (the lines of a scenario's ``remote``
block), one message (sender, recipients, body) and, where a behaviour needs
it, a Postfix transport with its own settings and mtasim ``config`` lines.
From a case, scenario_text() writes ONE scenario file that serves both
sides:

* ``mtasim serve`` plays its remote on a loopback port and Postfix delivers
  the message to it (tests/fidelity/postfix.py);
* ``mtasim run`` puts mtasim's own core against the very same remote, in
  simulation (its DNS, config and inject lines are the core's).

Transient failures are scripted for the first session (or the first
attempt) only, so that every case ends with every recipient delivered or
bounced on both sides.  Recipient domains are ``<case>.test``: one Postfix
instance routes each case's domain to that case's own ``mtasim serve``.
"""
from dataclasses import dataclass, field
from typing import List, Optional

SENDER = "alice@sender.test"
REMOTE_ADDR = "198.51.100.10"

# The core's settings that stand for the private Postfix instance's
# (postfix.py), each from Postfix's documentation of the parameter:
#   smtp_connection_cache_on_demand = no  no session is kept for reuse:
#                                         idle_timeout 0s
#   minimal_backoff_time = 2s             the first retry: retry_interval 2s;
#                                         "also limits the time an unreachable
#                                         destination is kept in the
#                                         destination status cache":
#                                         host_failure_retry 2s
#   queue_run_delay = 1s                  delayed_queue_scan_interval 1s
# Retry *timing* is not compared (docs/fidelity.md), only what happens.
MTASIM_CONFIG = [
    "retry_interval 2s",
    "host_failure_retry 2s",
    "idle_timeout 0s",
    "delayed_queue_scan_interval 1s",
]

BODY = "This is the fidelity harness's message.\n"
DOTS_BODY = ".\n..\n.leading dot\n...three\nlast line\n"


@dataclass
class Case:
    name: str
    title: str                       # the behaviour, as the table shows it
    remote: List[str] = field(default_factory=list)   # remote block lines
    rcpts: List[str] = field(default_factory=lambda: ["bob"])
    body: str = BODY
    # Postfix: the master.cf transport this case's domain goes through
    # (postfix.TRANSPORTS); mtasim: extra config lines.
    transport: str = "smtp"
    config: List[str] = field(default_factory=list)
    # The config key a Postfix-like mode of the core needs (see verdicts.py):
    # when mtasim does not know it yet, the core side cannot run this case.
    mode_key: Optional[str] = None
    # mtasim only: a generated body of this many bytes instead of body
    # (scenario lines are at most 4096 bytes).
    size: Optional[int] = None

    @property
    def domain(self):
        return "%s.test" % self.name

    @property
    def mx(self):
        return "mx.%s" % self.domain

    def addresses(self):
        return ["%s@%s" % (local, self.domain) for local in self.rcpts]

    def message_id(self):
        return "<%s@fidelity.test>" % self.name


FIVE = ["r1", "r2", "r3", "r4", "r5"]


def too_many(code, text):
    """A remote that takes two recipients per session and refuses the rest."""
    return ["rcpt %s %s   when nth > 2" % (code, text)]


CASES = [
    Case("clean", "clean delivery"),
    Case("mail-4xx", "451 to MAIL, then accepted",
         ["mail 451 4.3.0 try again later   when session 1"]),
    Case("mail-5xx", "550 to MAIL",
         ["mail 550 5.7.1 sender rejected"]),
    Case("rcpt-4xx", "450 to RCPT, then accepted",
         ["rcpt 450 4.2.0 mailbox busy   when session 1"]),
    Case("rcpt-5xx", "550 to RCPT",
         ["rcpt 550 5.1.1 no such user"]),
    Case("data-4xx", "451 to DATA, then accepted",
         ["data 451 4.3.0 try again later   when session 1"]),
    Case("data-5xx", "554 to DATA",
         ["data 554 5.7.1 no thanks"]),
    Case("dot-4xx", "451 at the end of data, then accepted",
         ["dot 451 4.3.0 queue trouble   when session 1"]),
    Case("dot-5xx", "554 at the end of data",
         ["dot 554 5.7.1 content rejected"]),
    Case("421-banner", "421 banner, then accepted",
         ["greet 421 4.3.2 too busy   when session 1"]),
    Case("421-ehlo", "421 to EHLO, then accepted",
         ["ehlo 421 4.3.2 shutting down   when session 1"]),
    Case("421-mail", "421 to MAIL, then accepted",
         ["mail 421 4.3.2 shutting down   when session 1"]),
    Case("421-rcpt", "421 to RCPT, then accepted",
         ["rcpt 421 4.3.2 shutting down   when session 1"]),
    Case("421-dot", "421 at the end of data, then accepted",
         ["dot 421 4.3.2 shutting down   when session 1"]),
    Case("greylist", "greylisting (451 to RCPT on the first attempt), then accepted",
         ["rcpt 451 4.7.1 greylisted, try again later   when attempt 1"]),
    Case("452-too-many", "452 too many recipients (2 per session), 5 recipients",
         too_many(452, "4.5.3 too many recipients"),
         rcpts=FIVE),
    Case("452-postfix-mode", "the same, the core in its Postfix-like mode (defer the rest)",
         too_many(452, "4.5.3 too many recipients"),
         rcpts=FIVE,
         config=["recipient_limit_leftovers defer"], mode_key="recipient_limit_leftovers"),
    Case("552-too-many", "552 too many recipients (2 per session), 5 recipients",
         too_many(552, "5.5.3 too many recipients"),
         rcpts=FIVE),
    Case("552-postfix-mode", "the same, the core in its Postfix-like mode (552 permanent)",
         too_many(552, "5.5.3 too many recipients"),
         rcpts=FIVE,
         config=["rcpt_552 permanent"], mode_key="rcpt_552"),
    Case("rcpt-limit", "the client's own limit of 2 recipients per transaction, 5 recipients",
         rcpts=FIVE, transport="limit2",
         config=["max_recipients_per_transaction 2"],
         mode_key="max_recipients_per_transaction"),
    Case("reset-after-data", "connection reset in answer to DATA, then accepted",
         ["after data reset   when session 1"]),
    Case("slow-banner", "banner after 2 s",
         ["greet 220 mx.slow-banner.test ESMTP slow   delay 2s"]),
    Case("no-pipelining", "no PIPELINING offered, 2 recipients",
         ["ehlo 250-mx.no-pipelining.test", "ehlo 250-8BITMIME",
          "ehlo 250 ENHANCEDSTATUSCODES"],
         rcpts=["bob", "carol"]),
    Case("ehlo-rejected", "EHLO rejected (502), HELO accepted",
         ["ehlo 502 5.5.2 command not recognized", "helo 250 mx.ehlo-rejected.test"]),
    Case("dot-stuffing", "a body with lines that start with dots",
         body=DOTS_BODY),
    Case("mixed-rcpts", "3 recipients: accepted, 450 once, 550",
         ['rcpt 450 4.2.1 try later   when rcpt ~ "^soft@" and session 1',
          'rcpt 550 5.1.1 no such user   when rcpt ~ "^hard@"'],
         rcpts=["ok", "soft", "hard"]),
]

CASES_BY_NAME = {c.name: c for c in CASES}


def quote(text):
    """A scenario string: quotes, with backslash escapes."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def message_text(case):
    """The message as Postfix's sendmail gets it (LF line ends)."""
    return ("From: <%s>\nTo: %s\nSubject: fidelity %s\nMessage-ID: %s\n\n%s"
            % (SENDER, ", ".join("<%s>" % a for a in case.addresses()), case.name,
               case.message_id(), case.body))


def scenario_text(case, config_lines=None):
    """One scenario for both sides: the remote for mtasim serve, the whole of it
    (DNS, config, the injection) for mtasim run."""
    config = MTASIM_CONFIG + list(case.config if config_lines is None else config_lines)
    lines = ["# Generated by tests/fidelity/cases.py: %s" % case.title,
             "scenario fidelity-%s" % case.name,
             "epoch 2020-03-26T00:00:00Z"]
    lines += ["config %s" % c for c in config]
    lines += ["dns %s MX 10 %s" % (case.domain, case.mx),
              "dns %s A %s" % (case.mx, REMOTE_ADDR),
              "remote %s name %s" % (REMOTE_ADDR, case.mx)]
    lines += ["  %s" % r for r in case.remote]
    content = "size %d" % case.size if case.size else "body %s" % quote(message_text(case))
    lines.append("inject 1 from <%s> to %s %s"
                 % (SENDER, ",".join("<%s>" % a for a in case.addresses()), content))
    return "\n".join(lines) + "\n"
