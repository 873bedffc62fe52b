"""The proxy's keeper (mlapi.keeper): what it starts and restarts after an
engine restart, and what it leaves alone. The engine is a fake that answers
as Docker's API does; test/e2e/restarts.test.ts runs the real thing."""

from mlapi import keeper

HOLDER_ID = "h" * 64


def container(name, *, running, started="2026-12-02T22:00:05.5Z", error="", policy="always", mode=f"container:{HOLDER_ID}", role=None, networks=None):
    return {
        "Id": f"id-{name}",
        "Name": f"/{name}",
        "State": {"Running": running, "StartedAt": started, "Error": error, "Restarting": False},
        "HostConfig": {"RestartPolicy": {"Name": policy}, "NetworkMode": mode},
        "Config": {"Labels": {"mlapi.role": role} if role else {}},
        "NetworkSettings": {"Networks": networks or {}},
    }


HOLDER = {
    **container("stack-proxy-ports", running=True, started="2026-12-02T22:00:05Z", mode="stack-edge", networks={"stack-edge": {"IPAddress": "172.18.0.2"}, "stack-app": {"IPAddress": "10.213.77.2"}}),
    "Id": HOLDER_ID,
}
JOIN_ERROR = f"cannot join network of a non running container: {HOLDER_ID}"


class FakeEngine:
    def __init__(self, containers):
        self.by_id = {c["Id"]: c for c in containers}
        self.calls = []

    def inspect(self, name_or_id):
        return next((c for c in self.by_id.values() if name_or_id in (c["Id"], c["Name"].lstrip("/"))), None)

    def containers(self):
        """As GET /containers/json?all=1 lists them."""
        return [
            {
                "Id": c["Id"],
                "Names": [c["Name"]],
                "State": "running" if c["State"]["Running"] else "exited",
                "Labels": c["Config"]["Labels"],
                "HostConfig": {"NetworkMode": c["HostConfig"]["NetworkMode"]},
                "NetworkSettings": c["NetworkSettings"],
            }
            for c in self.by_id.values()
        ]

    def call(self, method, path):
        self.calls.append((method, path))
        return 204, None


def test_start_times_compare_with_the_fraction_the_engine_trims():
    assert keeper.started_at({"StartedAt": "2026-12-02T22:00:05.5Z"}) > keeper.started_at({"StartedAt": "2026-12-02T22:00:05.123456789Z"})
    assert keeper.started_at({"StartedAt": "2026-12-02T22:00:05Z"}) < keeper.started_at({"StartedAt": "2026-12-02T22:00:05.000000001Z"})


def test_a_dependant_that_failed_to_join_the_holder_is_started():
    nginx = container("stack-proxy-1", running=False, error=JOIN_ERROR)
    assert keeper.repairs(HOLDER, [nginx]) == [("start", nginx)]


def test_a_dependant_older_than_the_holders_last_start_is_restarted():
    exporter = container("stack-proxy-exporter", running=True, started="2026-12-02T21:59:59.9Z")
    assert keeper.repairs(HOLDER, [exporter]) == [("restart", exporter)]


def test_what_was_stopped_by_hand_or_by_pulumi_or_has_no_restart_policy_is_left_alone():
    stopped_cleanly = container("stack-proxy-old", running=False)
    one_shot = container("stack-proxy-reload", running=False, error=JOIN_ERROR, policy="no")
    healthy = container("stack-proxy-1", running=True, started="2026-12-02T22:00:06Z")
    assert keeper.repairs(HOLDER, [stopped_cleanly, one_shot, healthy]) == []


def test_a_tick_acts_only_on_its_holders_namespace_by_id_or_name():
    by_id = container("stack-proxy-1", running=False, error=JOIN_ERROR)
    by_name = container("stack-proxy-exporter", running=False, error=JOIN_ERROR, mode="container:stack-proxy-ports")
    elsewhere = container("other-proxy-1", running=False, error=JOIN_ERROR, mode=f"container:{'o' * 64}")
    engine = FakeEngine([HOLDER, by_id, by_name, elsewhere])
    lines = []
    done = keeper.tick(engine, "stack-proxy-ports", lines.append)
    assert sorted(done) == [("start", "stack-proxy-1", 204), ("start", "stack-proxy-exporter", 204)]
    assert sorted(engine.calls) == [("POST", "/containers/id-stack-proxy-1/start"), ("POST", "/containers/id-stack-proxy-exporter/start")]
    assert all("cannot join network" in line for line in lines)


def test_nothing_happens_while_the_holder_is_not_running():
    down = {**HOLDER, "State": {**HOLDER["State"], "Running": False}}
    engine = FakeEngine([down, container("stack-proxy-1", running=False, error=JOIN_ERROR)])
    assert keeper.tick(engine, "stack-proxy-ports", print) == []
    assert engine.calls == []


def test_a_restart_gives_nginx_time_to_drain():
    engine = FakeEngine([HOLDER, container("stack-proxy-1", running=True, started="2026-12-02T21:00:00Z")])
    keeper.tick(engine, "stack-proxy-ports", print)
    assert engine.calls == [("POST", "/containers/id-stack-proxy-1/restart?t=10")]


def replica(number, address, *, running=True, started="2026-12-02T22:00:04Z", network="stack-app"):
    return container(f"stack-app-{number}", running=running, started=started, mode=network, role="app", networks={network: {"IPAddress": address}})


def nginx(started="2026-12-02T22:00:06Z"):
    return container("stack-proxy-1", running=True, started=started, role="proxy")


def reloads(engine):
    return [path for _, path in engine.calls if path.endswith("/kill?signal=HUP")]


def test_a_replica_back_at_a_new_address_makes_nginx_reload_once_every_replica_runs():
    engine = FakeEngine([HOLDER, nginx(), replica(1, "10.213.77.3"), replica(2, "10.213.77.4")])
    addresses = keeper.ReplicaAddresses()
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    assert reloads(engine) == []
    # The engine restarts replica 1 (a crash, say): first it is down, then up at another address.
    engine.by_id["id-stack-app-1"] = replica(1, "10.213.77.3", running=False)
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    engine.by_id["id-stack-app-1"] = replica(1, "10.213.77.5")
    engine.by_id["id-stack-app-2"] = replica(2, "10.213.77.4", running=False)
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    assert reloads(engine) == []
    # Replica 2 too, at a new address: now every replica runs, and one reload loads both.
    engine.by_id["id-stack-app-2"] = replica(2, "10.213.77.3")
    done = keeper.tick(engine, "stack-proxy-ports", print, addresses)
    assert done == [("reload", "stack-proxy-1", 204)]
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    assert reloads(engine) == ["/containers/id-stack-proxy-1/kill?signal=HUP"]


def test_nothing_reloads_for_a_replica_at_its_old_address_a_new_replica_or_another_network():
    engine = FakeEngine([HOLDER, nginx(), replica(1, "10.213.77.3")])
    addresses = keeper.ReplicaAddresses()
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    engine.by_id["id-stack-app-1"] = replica(1, "10.213.77.3", started="2026-12-02T22:10:00Z")
    # A new replica (pulumi up names it in a new config, which reloads Nginx itself).
    engine.by_id["id-stack-app-2"] = replica(2, "10.213.77.9")
    # Another stack's replica, on its own network.
    engine.by_id["id-other-app-1"] = {**replica(1, "10.213.78.3", network="other-app"), "Id": "id-other-app-1"}
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    engine.by_id["id-other-app-1"] = {**replica(1, "10.213.78.4", network="other-app"), "Id": "id-other-app-1"}
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    assert reloads(engine) == []


def test_a_replica_stopped_for_good_holds_the_reload_back_only_so_long():
    engine = FakeEngine([HOLDER, nginx(), replica(1, "10.213.77.3"), replica(2, "10.213.77.4")])
    addresses = keeper.ReplicaAddresses()
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    engine.by_id["id-stack-app-1"] = replica(1, "10.213.77.5")
    engine.by_id["id-stack-app-2"] = replica(2, "10.213.77.4", running=False)
    for _ in range(keeper.RELOAD_WAIT_TICKS):
        keeper.tick(engine, "stack-proxy-ports", print, addresses)
    assert reloads(engine) == []
    keeper.tick(engine, "stack-proxy-ports", print, addresses)
    assert reloads(engine) == ["/containers/id-stack-proxy-1/kill?signal=HUP"]


def test_a_keeper_that_starts_after_the_replicas_restarted_behind_nginx_reloads_it():
    # Nginx started at 22:00:06; replica 2 restarted at 22:05 (at an address Nginx never resolved).
    restarted = FakeEngine([HOLDER, nginx(), replica(1, "10.213.77.3"), replica(2, "10.213.77.6", started="2026-12-02T22:05:00Z")])
    keeper.tick(restarted, "stack-proxy-ports", print, keeper.ReplicaAddresses())
    assert reloads(restarted) == ["/containers/id-stack-proxy-1/kill?signal=HUP"]
    # After an engine restart Nginx starts only once every replica runs (it resolves their names at its start): nothing to do.
    fresh = FakeEngine([HOLDER, nginx(started="2026-12-02T22:00:09Z"), replica(1, "10.213.77.4"), replica(2, "10.213.77.3")])
    keeper.tick(fresh, "stack-proxy-ports", print, keeper.ReplicaAddresses())
    assert reloads(fresh) == []
