"""The proxy's keeper (mlapi.keeper): what it starts and restarts after an
engine restart, and what it leaves alone. The engine is a fake that answers
as Docker's API does; test/e2e/restarts.test.ts runs the real thing."""

from mlapi import keeper

HOLDER_ID = "h" * 64


def container(name, *, running, started="2026-12-02T22:00:05.5Z", error="", policy="always", mode=f"container:{HOLDER_ID}"):
    return {
        "Id": f"id-{name}",
        "Name": f"/{name}",
        "State": {"Running": running, "StartedAt": started, "Error": error, "Restarting": False},
        "HostConfig": {"RestartPolicy": {"Name": policy}, "NetworkMode": mode},
    }


HOLDER = {**container("stack-proxy-ports", running=True, started="2026-12-02T22:00:05Z", mode="stack-edge"), "Id": HOLDER_ID}
JOIN_ERROR = f"cannot join network of a non running container: {HOLDER_ID}"


class FakeEngine:
    def __init__(self, containers):
        self.by_id = {c["Id"]: c for c in containers}
        self.calls = []

    def inspect(self, name_or_id):
        return next((c for c in self.by_id.values() if name_or_id in (c["Id"], c["Name"].lstrip("/"))), None)

    def containers(self):
        return [{"Id": c["Id"], "HostConfig": {"NetworkMode": c["HostConfig"]["NetworkMode"]}} for c in self.by_id.values()]

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
