"""One member of the consumer group in test_consumer_chaos.py (run as a subprocess).

    python3 chaos_member.py SOCKET CONSUMER PATTERN OUTFILE

Consumes with tradewire.Consumer; for each delivery it appends ``SEQ ATTEMPT`` to
OUTFILE, flushes and fsyncs, and only then acknowledges: a line in the file means
the event was processed.  A daemon that is down (or restarting) at start is waited
for.  SIGTERM stops it cleanly; the test also SIGKILLs it at random moments.
"""
from __future__ import annotations

import os
import signal
import sys
import time

from tradewire import Consumer, NotConnected, RPCError, Timeout


def main() -> int:
    socket_path, name, pattern, out = sys.argv[1:5]
    consumer = Consumer(
        name, pattern, socket_path, ack_wait_ms=1500, max_deliver=1000, max_in_flight=64, timeout=10,
        reconnect_delay=0.05, max_reconnect_delay=0.5,
    )
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    while True:  # the daemon may be down (killed, restarting) when this member starts
        try:
            consumer.open()
            break
        except (NotConnected, Timeout, OSError):
            time.sleep(0.05)
        except RPCError as e:
            if e.type != "shutting_down":
                raise
            time.sleep(0.05)
    print("subscribed", flush=True)
    with open(out, "a", encoding="utf-8") as f:
        for d in consumer:
            f.write(f"{d.seq} {d.attempt}\n")
            f.flush()
            os.fsync(f.fileno())
            d.ack()
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
