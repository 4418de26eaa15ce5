#!/usr/bin/python3
"""aiosmtpd_server - a real SMTP server for mtasim's live tests (Debian's python3-aiosmtpd).

usage: /usr/bin/python3 tests/live/aiosmtpd_server.py --mode accept|greylist|reject
                        [--hostname NAME] [--duration SECONDS] [--log FILE]

Listens on 127.0.0.1 on a free port and prints "READY PORT" on standard output
once it accepts connections.  Stops by itself after --duration seconds
(default 30, at most 300), or on SIGTERM/SIGINT.  The SMTP dialogue is
aiosmtpd's own; the handler only decides the replies to RCPT and DATA:

  accept    every RCPT 250, every message 250
  greylist  RCPT 451 4.7.1 the first time a (MAIL FROM, RCPT TO) pair is seen,
            250 from then on (what greylisting MTAs do)
  reject    every RCPT 550 5.1.1

With --log FILE it writes, when it stops, a JSON object: "rcpt" (each RCPT
with the reply given) and "messages" (sender, recipients, size of each
message accepted).
"""
import argparse
import asyncio
import json
import signal
import sys

from aiosmtpd.smtp import SMTP

MAX_DURATION = 300.0


class Handler:
    """The replies to RCPT and DATA for one --mode; what was seen, for --log."""

    def __init__(self, mode):
        self.mode = mode
        self.seen = set()       # (MAIL FROM, RCPT TO) pairs greylisted once already
        self.rcpts = []
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        """Accept, greylist or reject one recipient."""
        if self.mode == "reject":
            reply = "550 5.1.1 <%s>: recipient rejected" % address
        elif self.mode == "greylist" and (envelope.mail_from, address) not in self.seen:
            self.seen.add((envelope.mail_from, address))
            reply = "451 4.7.1 <%s>: greylisted, try again later" % address
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 OK"
        self.rcpts.append({"from": envelope.mail_from, "rcpt": address, "reply": reply})
        return reply

    async def handle_DATA(self, server, session, envelope):
        """Take the message."""
        self.messages.append({"from": envelope.mail_from, "rcpts": list(envelope.rcpt_tos),
                              "size": len(envelope.content or b"")})
        return "250 Message accepted for delivery"


async def serve(args):
    """Listen, say READY, stop at the deadline or a signal."""
    handler = Handler(args.mode)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname=args.hostname),
                                      host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY %d" % port, flush=True)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.duration)
    except asyncio.TimeoutError:
        pass
    server.close()
    await server.wait_closed()
    if args.log:
        with open(args.log, "w", encoding="utf-8") as f:
            json.dump({"rcpt": handler.rcpts, "messages": handler.messages}, f, indent=1)


def main():
    """Parse the options and serve."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["accept", "greylist", "reject"], required=True)
    p.add_argument("--hostname", default="mx1.example.com")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--log")
    args = p.parse_args()
    if not 0 < args.duration <= MAX_DURATION:
        p.error("--duration wants seconds in (0, %g]" % MAX_DURATION)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
