"""postfix - a private, loopback-only Postfix instance as the reference SMTP client.

The instance lives in one temporary folder: its own config_directory
(main.cf, master.cf), queue_directory, data_directory (owned by postfix, as
its daemons write there) and mail log (maillog_file, under
maillog_file_prefixes).  It listens nowhere (master.cf has no inet
service), resolves nothing (smtp_dns_support_level = disabled, next hops are
[127.0.0.1]:PORT) and relays every case's domain to that case's own
``mtasim serve`` port (transport_maps).  Settings, and why:

  smtp_connection_cache_on_demand = no   one session per delivery attempt,
                                         as the core with idle_timeout 0s
  queue_run_delay 1s, minimal_backoff_time 2s, maximal_backoff_time 4s
                                         retries within seconds
  chroot off in master.cf                the daemons need no copy of /etc
  transport_maps sender.test=discard:    the bounces Postfix writes to the
                                         sender go nowhere (else each is one
                                         more session at the scripted remote)
  limit2 transport                       smtp_destination_recipient_limit 2
                                         (Postfix's per-transaction limit)
                                         with the connection cache on and
                                         one delivery at a time, so its
                                         chunks may share one session

Postfix's master runs as root and drops to mail_owner; sendmail -C DIR
(postdrop, setgid postdrop) accepts a private config directory only from
root unless the system main.cf lists it in alternate_config_directories.
So the harness needs root (CI runs as root): require_root() says what to
run otherwise.

Starting: master -w (what "postfix start" runs after its slow permission
checks, about 5 s here).  Stopping: postfix -c DIR stop.
"""
import grp
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

DAEMON_DIR = Path("/usr/lib/postfix/sbin")
SENDMAIL = "/usr/sbin/sendmail"
STEP_TIMEOUT = 30

# The daemons the instance runs (Debian's master.cf, chroot off, no inet
# service).  "limit2" is the smtp client with its own recipient limit.
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
limit2    unix  -       -       n       -       -       smtp
  -o smtp_connection_cache_destinations=static:all
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.fidelity.test
mydomain = fidelity.test
myorigin = fidelity.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
smtp_dns_support_level = disabled
smtp_tls_security_level = none
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
queue_run_delay = 1s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
smtp_connection_cache_on_demand = no
limit2_destination_recipient_limit = 2
limit2_destination_concurrency_limit = 1
biff = no
transport_maps = inline:{{{transports}}}
"""

# The queue's subfolders as /etc/postfix/postfix-files makes them (what
# "postfix check" would do, in 5 s): (name, group postdrop?, mode).
QUEUE_DIRS = [(d, False, 0o700) for d in ("active", "bounce", "corrupt", "defer", "deferred",
                                          "flush", "hold", "incoming", "private", "saved",
                                          "trace")]
QUEUE_DIRS += [("maildrop", True, 0o730), ("public", True, 0o710), ("pid", False, 0o755)]

LOG_STATUS = re.compile(r"postfix/(\w+)\[\d+\]: ([0-9A-F]+): to=<([^>]*)>,.* status=(\w+)")
LOG_MSGID = re.compile(r"postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=(<[^>]*>)")
LOG_REMOVED = re.compile(r"postfix/qmgr\[\d+\]: ([0-9A-F]+): removed")


def require_root():
    """None as root, else what to run instead (the harness cannot pass as another user)."""
    if os.geteuid() == 0:
        return None
    return ("the Postfix fidelity harness needs root: Postfix's master runs as root, and "
            "sendmail -C accepts a private configuration only from root. Run: "
            "sudo pytest-3 -p no:cacheprovider tests/fidelity --mtasim-bin build/sim/mtasim")


def missing_software():
    """What of Postfix is not installed (tests/deps.sh installs it)."""
    missing = [str(p) for p in (DAEMON_DIR / "master", Path(SENDMAIL)) if not p.exists()]
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        missing.append("user postfix")
    return missing


def not_ready():
    """None when the tests can run Postfix here, else why not and what to do."""
    why = require_root()
    if why:
        return why
    missing = missing_software()
    if missing:
        return ("Postfix is not installed (%s): sh tests/deps.sh installs it as root"
                % ", ".join(missing))
    return None


class Postfix:
    """One private instance under folder; routes maps domain -> (transport, port);
    master_extra: more master.cf services (test_postfix_tls's TLS transports)."""

    def __init__(self, folder, routes, master_extra=""):
        self.dir = Path(folder)
        self.conf = self.dir / "conf"
        self.log = self.dir / "maillog"
        self.routes = routes
        self.master_extra = master_extra
        self.started = False

    def configure(self):
        # The daemons run as postfix: the folder must be searchable by it.
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        for parent in self.dir.resolve().parents:
            if not os.stat(parent).st_mode & 0o001:
                raise RuntimeError("%s is not searchable by others: Postfix's daemons (user "
                                   "postfix) cannot reach %s" % (parent, self.dir))
        for sub in ("conf", "queue", "data"):
            (self.dir / sub).mkdir(exist_ok=True)
        pw, postdrop = pwd.getpwnam("postfix"), grp.getgrnam("postdrop")
        os.chown(self.dir / "data", pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir / "data", 0o700)
        for sub, group, mode in QUEUE_DIRS:
            path = self.dir / "queue" / sub
            path.mkdir(exist_ok=True)
            os.chown(path, pw.pw_uid if sub != "pid" else 0,
                     postdrop.gr_gid if group else 0)
            os.chmod(path, mode)
        # Bounces to the sender are discarded; each case's domain goes to its port.
        transports = ["sender.test=discard:"]
        transports += ["%s=%s:[127.0.0.1]:%d" % (dom, tr, port)
                       for dom, (tr, port) in sorted(self.routes.items())]
        (self.conf / "main.cf").write_text(
            MAIN_CF.format(dir=self.dir, transports=",".join(transports)))
        (self.conf / "master.cf").write_text(MASTER_CF + self.master_extra)

    def start(self):
        self.configure()
        proc = subprocess.run([str(DAEMON_DIR / "master"), "-c", str(self.conf), "-w"],
                              capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
        if proc.returncode != 0:
            raise RuntimeError("postfix master did not start: %s%s\n%s"
                               % (proc.stdout, proc.stderr, self.log_text()))
        self.started = True

    def stop(self):
        if self.started:
            subprocess.run(["/usr/sbin/postfix", "-c", str(self.conf), "stop"],
                           capture_output=True, timeout=STEP_TIMEOUT, check=False)
            self.started = False

    def inject(self, sender, rcpts, text):
        """sendmail -C: -i, so that a line "." does not end the message."""
        proc = subprocess.run([SENDMAIL, "-C", str(self.conf), "-i", "-f", sender, "--", *rcpts],
                              input=text, capture_output=True, text=True,
                              timeout=STEP_TIMEOUT, check=False)
        if proc.returncode != 0:
            raise RuntimeError("sendmail failed: %s%s" % (proc.stdout, proc.stderr))

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_removed(self, message_ids, timeout):
        """Wait until every message left the queue; {message-id: queue id}."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log_text()
            qids = {m.group(2): m.group(1) for m in LOG_MSGID.finditer(log)}
            removed = set(LOG_REMOVED.findall(log))
            if all(qids.get(mid) in removed for mid in message_ids):
                return qids
            if time.monotonic() > deadline:
                return qids
            time.sleep(0.2)

    def fates(self, qid):
        """{recipient: [(daemon, status), ...]} from the mail log, in order."""
        out = {}
        for m in LOG_STATUS.finditer(self.log_text()):
            if m.group(2) == qid:
                out.setdefault(m.group(3), []).append((m.group(1), m.group(4)))
        return out

    def queue(self):
        """postqueue -j: the messages still queued, as JSON lines."""
        proc = subprocess.run(["/usr/sbin/postqueue", "-c", str(self.conf), "-j"],
                              capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
        return [line for line in proc.stdout.splitlines() if line.strip()]


def cleanup(folder):
    shutil.rmtree(folder, ignore_errors=True)
