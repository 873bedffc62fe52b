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
- a dependant running since before the holder's last start is restarted;
- the proxy reloads (SIGHUP: its supervisor starts the site in a new slot,
  and no client's connection closes under it) once a replica runs at an
  address other than the one it had: the engine hands out new addresses
  when it restarts a container, and Nginx resolves the replicas' names only
  when it loads its config. It waits until every replica runs, so that every name resolves
  (at most RELOAD_WAIT_TICKS: a replica stopped for good must not hold the
  others back).

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
# The labels the stack gives Nginx and the replicas (components/docker).
ROLE_LABEL = "mlapi.role"
PROXY_ROLE = "proxy"
REPLICA_ROLE = "app"
RELOAD_WAIT_TICKS = 30


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


class ReplicaAddresses:
    """The replicas' addresses as Nginx last resolved them, so the keeper knows when a reload is due."""

    def __init__(self):
        self.known = None
        self.pending = False
        self.waited = 0

    def observe(self, proxies, replicas, started=None):
        """Takes the running proxies and every replica (a /containers/json entry each); True when Nginx should reload now.

        The first time, ``started`` gives each running container's StartedAt
        (see started_at), by ID: a replica that started after Nginx may run
        at an address Nginx never resolved.
        """
        addresses = {r["Id"]: address_of(r) for r in replicas if r.get("State") == "running"}
        if self.known is None:
            started = started or {}
            proxy_starts = [started[p["Id"]] for p in proxies if p["Id"] in started]
            self.pending = bool(proxy_starts) and any(started.get(i, ("",)) > min(proxy_starts) for i in addresses)
            self.known = {}
        for replica_id, address in addresses.items():
            if replica_id in self.known and self.known[replica_id] != address:
                self.pending = True
            self.known[replica_id] = address
        listed = {r["Id"] for r in replicas}
        self.known = {i: a for i, a in self.known.items() if i in listed}
        if not self.pending or not proxies:
            return False
        if all(r.get("State") == "running" for r in replicas) or self.waited >= RELOAD_WAIT_TICKS:
            self.pending, self.waited = False, 0
            return True
        self.waited += 1
        return False


def networks_of(container):
    """A container's networks by name, listed or inspected alike."""
    return (container.get("NetworkSettings") or {}).get("Networks") or {}


def address_of(listed):
    """A listed container's addresses on its networks, as one comparable value."""
    return tuple(sorted((name, (n or {}).get("IPAddress", "")) for name, n in networks_of(listed).items()))


def network_modes(holder):
    """The NetworkMode values that mean 'in this holder's namespace': by ID or by name."""
    return {f"container:{holder['Id']}", f"container:{holder['Name'].lstrip('/')}"}


def tick(engine, holder_name, log, addresses=None):
    holder = engine.inspect(holder_name)
    if not holder or not holder["State"].get("Running"):
        return []
    modes = network_modes(holder)
    everything = engine.containers()
    listed = [c for c in everything if (c.get("HostConfig") or {}).get("NetworkMode") in modes]
    dependants = [inspected for inspected in (engine.inspect(c["Id"]) for c in listed) if inspected]
    done = []
    for action, container in repairs(holder, dependants):
        name = container["Name"].lstrip("/")
        reason = container["State"].get("Error") or "it joined the holder's namespace before the holder's last start"
        path = f"/containers/{container['Id']}/{action}" + ("?t=10" if action == "restart" else "")
        done.append(act(engine, log, action, name, path, reason))
    if addresses is not None:
        networks = set(networks_of(holder))
        proxies = [c for c in listed if role(c) == PROXY_ROLE and c.get("State") == "running"]
        replicas = [c for c in everything if role(c) == REPLICA_ROLE and networks & set(networks_of(c))]
        started = None
        if addresses.known is None:
            # After the repairs above, which may have started Nginx again.
            inspected = (engine.inspect(c["Id"]) for c in proxies + replicas if c.get("State") == "running")
            started = {c["Id"]: started_at(c["State"]) for c in inspected if c}
        if addresses.observe(proxies, replicas, started):
            for proxy in proxies:
                name = (proxy.get("Names") or [proxy["Id"]])[0].lstrip("/")
                done.append(act(engine, log, "reload", name, f"/containers/{proxy['Id']}/kill?signal=HUP", "a replica runs at a new address"))
    return done


def role(listed):
    return (listed.get("Labels") or {}).get(ROLE_LABEL)


def act(engine, log, action, name, path, reason):
    status, body = engine.call("POST", path)
    outcome = "ok" if status in (204, 304) else f"failed: {status} {(body or {}).get('message', '')}".strip()
    log(f"keeper: {action} {name} ({reason}): {outcome}")
    return action, name, status


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
    addresses = ReplicaAddresses()
    while True:
        try:
            tick(engine, holder_name, log, addresses)
        except (OSError, http.client.HTTPException, ValueError) as error:
            # The engine restarting, or not answering yet: ask again next time.
            log(f"keeper: engine not answering ({error!r})")
            time.sleep(5 * INTERVAL_SECONDS)
        time.sleep(INTERVAL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
