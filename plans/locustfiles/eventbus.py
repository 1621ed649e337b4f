"""Locust workload for the bundled event bus (cmd/eventbus).

Publishers POST timestamped messages to /publish?topic=T; subscribers hold an
SSE stream open on /subscribe?topic=T and report each message's delivery
delay (receive time minus the publish timestamp) to Locust as its own request
type: request_type "DELIVERY", name "delivery", response_time in ms. loadramp
reports it as locust.delivery.* and gates can judge it. Publishers and
subscribers share the topic, so state crosses users and workers: a message
published by one worker is delivered to the subscribers on every worker.
Delays are measured across processes on one host (one clock).

Environment (set in the plan's process env):
  LOADRAMP_PUBLISH_RATE  publishes/s per publisher user (default 10)
  LOADRAMP_TOPIC         topic name (default "load")
  LOADRAMP_SUBSCRIBERS   subscriber users in the whole swarm (default 2)
"""

import json
import os
import socket
import time
from urllib.parse import urlsplit

import locust.runners
from locust import FastHttpUser, User, constant, constant_throughput, task

# Debian's python3-locust 2.12.1 ships an empty version string; its master
# then rejects every worker as "an old (pre 2.0) worker". Master and workers
# both load this file before they connect, so naming the version here lets
# them talk. A locustfile for that package needs these two lines too.
if not locust.runners.__version__:
    locust.runners.__version__ = "2.12.1"

# Workers send their statistics to the master every WORKER_REPORT_INTERVAL
# (3 s by default), so the master's counts move in 3 s jumps and a step
# window read from the master has edges that blurred. Reporting every second
# keeps a short hold's request count (and throughput.rps) within about a
# second's worth of requests.
locust.runners.WORKER_REPORT_INTERVAL = 1.0

PUBLISH_RATE = float(os.environ.get("LOADRAMP_PUBLISH_RATE", "10"))
TOPIC = os.environ.get("LOADRAMP_TOPIC", "load")
SUBSCRIBERS = int(os.environ.get("LOADRAMP_SUBSCRIBERS", "2"))


class Publisher(FastHttpUser):
    """Publishes a timestamped message PUBLISH_RATE times a second."""

    weight = 100
    wait_time = constant_throughput(PUBLISH_RATE)

    def on_start(self):
        self.seq = 0

    @task
    def publish(self):
        self.seq += 1
        body = json.dumps({"ts": time.time(), "seq": self.seq})
        self.client.post(
            "/publish?topic=" + TOPIC,
            data=body,
            headers={"Content-Type": "application/json"},
            name="publish",
        )


class Subscriber(User):
    """Holds one SSE subscription and reports every delivery's delay.

    A raw HTTP/1.0 request over a gevent socket: the stream arrives unchunked
    and each event is parsed as soon as its bytes do (a buffering HTTP client
    would add its own delay to what is measured).
    """

    fixed_count = SUBSCRIBERS
    wait_time = constant(1)

    @task
    def listen(self):
        url = urlsplit(self.host)
        start = time.perf_counter()
        sock = None
        try:
            sock = socket.create_connection((url.hostname, url.port or 80), timeout=10)
            req = "GET /subscribe?topic=%s HTTP/1.0\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n" % (
                TOPIC,
                url.netloc,
            )
            sock.sendall(req.encode())
            buf = b""
            subscribed = False
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("stream closed by the server")
                now = time.time()
                buf += chunk
                if not subscribed:
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    status = head.split(b"\r\n", 1)[0]
                    if b" 200 " not in status + b" ":
                        raise ConnectionError("subscribe answered %r" % status.decode(errors="replace"))
                    subscribed = True
                    buf = rest
                    self.environment.events.request.fire(
                        request_type="SSE",
                        name="subscribe",
                        response_time=(time.perf_counter() - start) * 1000,
                        response_length=len(head),
                        exception=None,
                        context={},
                    )
                *events, buf = buf.split(b"\n\n")
                for ev in events:
                    for line in ev.split(b"\n"):
                        if not line.startswith(b"data: "):
                            continue  # comments: subscribed, heartbeat
                        try:
                            ts = json.loads(line[6:])["ts"]
                        except (ValueError, KeyError, TypeError):
                            continue
                        self.environment.events.request.fire(
                            request_type="DELIVERY",
                            name="delivery",
                            response_time=max(now - ts, 0) * 1000,
                            response_length=len(line) - 6,
                            exception=None,
                            context={},
                        )
        except Exception as e:  # reported, then the task runs again: resubscribe
            self.environment.events.request.fire(
                request_type="SSE",
                name="subscribe",
                response_time=(time.perf_counter() - start) * 1000,
                response_length=0,
                exception=e,
                context={},
            )
        finally:
            if sock is not None:
                sock.close()
