"""The peering gate pauses the work queue exactly when kopf's peering rule pauses the replica."""

import asyncio
from datetime import UTC, datetime, timedelta

from modelplane.operator.peering import PeeringGate, PeeringScope, blocking_peers
from modelplane.operator.settings import ensure_identity, watched_namespaces

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def peer(priority: int, seen_seconds_ago: float, lifetime: int = 60) -> dict[str, object]:
    """A peer record as kopf writes it into the peering object's status (kopf/_core/engines/peering.py)."""
    lastseen = (NOW - timedelta(seconds=seen_seconds_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": lastseen}


def test_a_live_peer_of_higher_or_equal_priority_pauses_and_a_lower_or_dead_one_does_not() -> None:
    peers = {"me": peer(50, 0), "low": peer(10, 5), "high": peer(90, 5), "same": peer(50, 30),
             "dead-high": peer(99, 61)}  # fmt: skip
    assert blocking_peers(peers, "me", 50, NOW) == ["high", "same"]
    assert blocking_peers({"me": peer(50, 0), "low": peer(10, 0)}, "me", 50, NOW) == []
    assert blocking_peers({"me": peer(50, 0), "dead-high": peer(99, 61)}, "me", 50, NOW) == []
    # kopf writes naive UTC timestamps as well as offset ones
    naive = {"other": {"priority": 60, "lifetime": 60, "lastseen": (NOW - timedelta(seconds=10)).replace(
        tzinfo=None).isoformat()}}  # fmt: skip
    assert blocking_peers(naive, "me", 50, NOW) == ["other"]


def test_the_namespaces_of_kopf_run_are_read_as_kopf_reads_them() -> None:
    argv = ["modelplane-operator", "--namespace=team-a", "-n", "team-b", "--namespace", "team-c", "--standalone"]
    assert watched_namespaces(argv) == ["team-a", "team-b", "team-c"]
    assert watched_namespaces(["modelplane-operator", "--all-namespaces"]) == []


def test_the_identity_kopf_will_use_is_set_once_and_kept() -> None:
    environ: dict[str, str] = {}
    made = ensure_identity(environ)
    assert environ["POD_ID"] == made
    assert "@" in made
    assert ensure_identity({"POD_ID": "modelplane-7d9f-abc"}) == "modelplane-7d9f-abc"


def test_paths_of_the_peering_objects() -> None:
    cluster = PeeringScope("modelplane", 5, "me", clusterwide=True, mandatory=True)
    assert cluster.paths() == ["/apis/kopf.dev/v1/clusterkopfpeerings/modelplane"]
    spaced = PeeringScope("modelplane", 5, "me", clusterwide=False, mandatory=True, namespaces=("a", "b"))
    assert spaced.paths() == ["/apis/kopf.dev/v1/namespaces/a/kopfpeerings/modelplane",
                              "/apis/kopf.dev/v1/namespaces/b/kopfpeerings/modelplane"]  # fmt: skip


def test_workers_wait_while_paused_and_an_unreadable_state_keeps_the_last_one() -> None:
    async def scenario() -> list[str]:
        gate = PeeringGate(PeeringScope("modelplane", 5, "me", clusterwide=True, mandatory=True))
        assert not gate.is_open, "a peered replica starts paused, as kopf does, until its peers are read"
        seen: list[str] = []

        async def worker() -> None:
            await gate.opened()
            seen.append("worked")

        task = asyncio.create_task(worker())
        gate.update(["higher"])
        await asyncio.sleep(0.01)
        seen.append("paused" if not task.done() else "ran while paused")
        gate.update(None)
        await asyncio.sleep(0.01)
        seen.append("still paused" if not task.done() else "opened on an unreadable state")
        gate.update([])
        await task
        return seen

    assert asyncio.run(scenario()) == ["paused", "still paused", "worked"]
    assert PeeringGate(None).is_open, "standalone: nothing pauses it"
