"""A paced load from Python's own HTTP clients, as test/support/pacedLoad.ts
runs its Node clients: a few kept-alive HTTPS connections, each sending the
tutorial's classifier request at a fixed interval, with no retry of any kind.

    python test/clients/paced_load.py URL CA_FILE CLIENT CONNECTIONS RATE MAX_SECONDS

CLIENT is "http.client" (the standard library's HTTPSConnection, which sends
on a kept-alive connection without checking it first) or "requests" (a
Session with its defaults: urllib3 drops a connection it sees closed before
reusing it, and retries nothing). A failed request is counted by the
exception's class (or "HTTP <status>"); the next one goes on a new
connection, as a program would have to. Runs until SIGTERM or MAX_SECONDS,
then prints one JSON line: requests, failed, failures by kind, the longest
time without a successful answer and when it began (epoch ms), seconds.
"""

import http.client
import json
import signal
import ssl
import sys
import threading
import time
import urllib.parse

import requests

BODY = json.dumps({"monthly_fee": 60, "customer_age": 30, "support_calls": 1}).encode()
HEADERS = {"Content-Type": "application/json"}
PATH = "api/v1/models/decision-tree-classifier/predictions"


def http_client_sender(url, ca_file):
    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    state = {}

    def send():
        if "conn" not in state:
            state["conn"] = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=context, timeout=5)
        try:
            state["conn"].request("POST", f"{parts.path.rstrip('/')}/{PATH}", BODY, HEADERS)
            response = state["conn"].getresponse()
            response.read()
            return response.status
        except BaseException:
            state.pop("conn").close()
            raise

    return send


def requests_sender(url, ca_file):
    session = requests.Session()
    target = f"{url.rstrip('/')}/{PATH}"

    def send():
        return session.post(target, data=BODY, headers=HEADERS, verify=ca_file, timeout=5).status_code

    return send


SENDERS = {"http.client": http_client_sender, "requests": requests_sender}


def main(url, ca_file, client, connections, rate, max_seconds):
    interval = connections / rate
    started = time.time()
    deadline = started + max_seconds
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    counts = {"requests": 0, "failures": {}}
    successes = []

    def worker(index):
        send = SENDERS[client](url, ca_file)
        stop.wait(index * interval / connections)
        while not stop.is_set() and time.time() < deadline:
            sent_at = time.time()
            try:
                status = send()
                kind = None if status == 200 else f"HTTP {status}"
            except Exception as error:  # every failure is counted by its kind
                kind = type(error).__name__
            with lock:
                counts["requests"] += 1
                if kind is None:
                    successes.append(time.time())
                else:
                    counts["failures"][kind] = counts["failures"].get(kind, 0) + 1
            stop.wait(max(0.0, sent_at + interval - time.time()))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        stop.wait(0.2)
        if time.time() >= deadline:
            stop.set()
    ended = time.time()
    moments = sorted([*successes, ended])
    longest, since = max(((b - a, a) for a, b in zip(moments, moments[1:])), default=(0.0, started))
    print(json.dumps({
        "requests": counts["requests"],
        "failed": sum(counts["failures"].values()),
        "failures": counts["failures"],
        "longestGapSeconds": round(longest, 3),
        "longestGapFrom": int(since * 1000),
        "seconds": round(ended - started, 3),
    }))


if __name__ == "__main__":
    if len(sys.argv) != 7 or sys.argv[3] not in SENDERS:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
