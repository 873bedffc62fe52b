"""The proxy's keeper: brings Nginx back into the port holder's network
namespace after an engine restart, a crash or a host reboot.

Nginx and its exporter run in the port holder's network namespace
(``--network container:<holder>``), so that a new Nginx can bind the same
ports beside the old one. The engine restarts containers with a restart
policy in no order and never retries one that failed to start, so a
dependant started before the holder stays down ("cannot join network of a
non running container"), and one that outlives a restart of the holder keeps
a namespace with no ports. Once a second this loop asks the engine (over its
socket, the keeper's only connection: it has no network) and mends both:

- a dependant that is not running, has a restart policy, and records a start
  error is started again, once the holder runs;
- a dependant running since before the holder's last start is restarted.

It changes nothing else: a container stopped by hand or by ``pulumi up``
(a clean exit, no start error) is left alone, and so is every container of
another holder.

    python3 -m mlapi.keeper <holder container name> [socket path]
"""

import http.client
import json
import socket
import sys
import time
import urllib.parse

DEFAULT_SOCKET = "/run/docker.sock"
INTERVAL_SECONDS = 1.0
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}


class EngineConnection(http.client.HTTPConnection):
    """HTTP to the engine's API over its Unix socket."""

    def __init__(self, socket_path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class Engine:
    def __init__(self, socket_path):
        self.socket_path = socket_path

    def call(self, method, path):
        connection = EngineConnection(self.socket_path)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        return response.status, (json.loads(body) if body and body[:1] in b"[{" else None)

    def inspect(self, name_or_id):
        status, body = self.call("GET", f"/containers/{urllib.parse.quote(name_or_id, safe='')}/json")
        return body if status == 200 else None

    def containers(self):
        status, body = self.call("GET", "/containers/json?all=1")
        return body if status == 200 else []


def started_at(state):
    """StartedAt as a comparable (seconds, nanoseconds) pair; the engine trims trailing zeros of the fraction."""
    stamp = state.get("StartedAt") or ""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole, int((fraction + "000000000")[:9] or 0)


def repairs(holder, dependants):
    """What to do, as (action, container) pairs, for a running holder and the inspected containers in its namespace."""
    holder_started = started_at(holder["State"])
    actions = []
    for container in dependants:
        state = container["State"]
        policy = (container.get("HostConfig", {}).get("RestartPolicy") or {}).get("Name", "")
        if state.get("Running"):
            if started_at(state) < holder_started:
                actions.append(("restart", container))
        elif state.get("Error") and policy in RESTART_POLICIES and not state.get("Restarting"):
            actions.append(("start", container))
    return actions


def network_modes(holder):
    """The NetworkMode values that mean 'in this holder's namespace': by ID or by name."""
    return {f"container:{holder['Id']}", f"container:{holder['Name'].lstrip('/')}"}


def tick(engine, holder_name, log):
    holder = engine.inspect(holder_name)
    if not holder or not holder["State"].get("Running"):
        return []
    modes = network_modes(holder)
    listed = [c for c in engine.containers() if (c.get("HostConfig") or {}).get("NetworkMode") in modes]
    dependants = [inspected for inspected in (engine.inspect(c["Id"]) for c in listed) if inspected]
    done = []
    for action, container in repairs(holder, dependants):
        name = container["Name"].lstrip("/")
        reason = container["State"].get("Error") or "it joined the holder's namespace before the holder's last start"
        path = f"/containers/{container['Id']}/{action}" + ("?t=10" if action == "restart" else "")
        status, body = engine.call("POST", path)
        outcome = "ok" if status in (204, 304) else f"failed: {status} {(body or {}).get('message', '')}".strip()
        log(f"keeper: {action} {name} ({reason}): {outcome}")
        done.append((action, name, status))
    return done


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not 1 <= len(argv) <= 2:
        print("usage: python3 -m mlapi.keeper <holder container name> [engine socket]", file=sys.stderr)
        return 2
    holder_name = argv[0]
    engine = Engine(argv[1] if len(argv) == 2 else DEFAULT_SOCKET)

    def log(line):
        print(line, file=sys.stderr, flush=True)

    log(f"keeper: watching the containers in {holder_name}'s network namespace")
    while True:
        try:
            tick(engine, holder_name, log)
        except (OSError, http.client.HTTPException, ValueError) as error:
            # The engine restarting, or not answering yet: ask again next time.
            log(f"keeper: engine not answering ({error!r})")
            time.sleep(5 * INTERVAL_SECONDS)
        time.sleep(INTERVAL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
