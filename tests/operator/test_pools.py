"""Pool inventory from cluster state: declared pools, discovery from GPU labels, GPUs in use, reservations."""

from modelplane.operator.pools import NodeRecord, PodRecord, node_record, offers_for_deployment, pod_record, pool_states
from modelplane.planning.inventory import offer_from_pool
from tests.support import pool

H100 = {"modelplane.dev/pool": "h100", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def node(name: str, labels: dict[str, str], gpus: int = 8, ready: bool = True, schedulable: bool = True) -> NodeRecord:
    return NodeRecord(name, labels, gpus, ready, ("nvidia.com/gpu",), schedulable=schedulable)


def test_declared_pool_capacity_subtracts_foreign_pods_and_others_reservations() -> None:
    declared = pool("h100", "H100-SXM-80GB", 8, 2, nodeSelector={"modelplane.dev/pool": "h100"})
    states = pool_states(
        [(declared, offer_from_pool(declared))],
        [node("a", H100), node("b", H100), node("c", H100, ready=False)],
        [PodRecord("a", 2, None), PodRecord("b", 4, "ns/mine")],
    )
    state = states["h100"]
    assert state.allocatable == 16
    assert state.free == 10
    assert state.capacity == 14  # modelplane's own pods are accounted through reservations, not here
    offers = offers_for_deployment(states, {"ns/other": {"h100": 8}, "ns/mine": {"h100": 4}}, "ns/mine")
    assert offers[0].free_gpus == 6


def test_pods_of_a_deployment_without_a_reservation_still_hold_their_gpus() -> None:
    """After a restart, a deployment switched to PlanOnly is not seeded a reservation, yet its servers run."""
    declared = pool("h100", "H100-SXM-80GB", 8, 2, nodeSelector={"modelplane.dev/pool": "h100"})
    pods = [PodRecord("a", 4, "ns/frozen"), PodRecord("b", 8, "ns/reserved"), PodRecord("b", 2, "ns/mine")]
    states = pool_states([(declared, offer_from_pool(declared))], [node("a", H100), node("b", H100)], pods)
    offers = offers_for_deployment(states, {"ns/reserved": {"h100": 8}, "ns/mine": {"h100": 2}}, "ns/mine")
    # 16 GPUs − 8 reserved − 4 of the unreserved deployment's pods; "mine" re-plans over its own 2.
    assert offers[0].free_gpus == 4


def test_cordoned_and_not_ready_nodes_are_no_capacity() -> None:
    """A cordoned or NotReady node takes no new pod: its GPUs are neither planned on nor reported free."""
    declared = pool("h100", "H100-SXM-80GB", 8, 3, nodeSelector={"modelplane.dev/pool": "h100"})
    nodes = [node("a", H100), node("b", H100, schedulable=False), node("c", H100, ready=False)]
    states = pool_states([(declared, offer_from_pool(declared))], nodes, [PodRecord("b", 8, None)])
    state = states["h100"]
    assert (state.capacity, state.free) == (8, 8)
    assert offers_for_deployment(states, {}, "ns/new")[0].free_gpus == 8


def test_a_foreign_pod_on_a_cordoned_node_takes_nothing_from_the_others() -> None:
    declared = pool("h100", "H100-SXM-80GB", 8, 2, nodeSelector={"modelplane.dev/pool": "h100"})
    nodes = [node("a", H100), node("b", H100, schedulable=False)]
    states = pool_states([(declared, offer_from_pool(declared))], nodes, [PodRecord("b", 6, None)])
    assert states["h100"].capacity == 8


def test_a_pod_labelled_as_a_deployments_cannot_hide_its_gpus_behind_that_reservation() -> None:
    """The deployment label is anyone's to set: labelled pods beyond the deployment's reservation count."""
    declared = pool("h100", "H100-SXM-80GB", 8, 2, nodeSelector={"modelplane.dev/pool": "h100"})
    pods = [PodRecord("a", 2, "ns/serving"), PodRecord("a", 6, "ns/serving")]  # its server, and an impostor
    states = pool_states([(declared, offer_from_pool(declared))], [node("a", H100), node("b", H100)], pods)
    offers = offers_for_deployment(states, {"ns/serving": {"h100": 2}}, "ns/new")
    assert offers[0].free_gpus == 8


def test_pods_left_on_a_pool_the_deployment_moved_from_still_count() -> None:
    declared = pool("h100", "H100-SXM-80GB", 8, 2, nodeSelector={"modelplane.dev/pool": "h100"})
    states = pool_states([(declared, offer_from_pool(declared))], [node("a", H100), node("b", H100)],
                         [PodRecord("a", 4, "ns/moving")])  # fmt: skip
    offers = offers_for_deployment(states, {"ns/moving": {"elsewhere": 4}}, "ns/new")
    assert offers[0].free_gpus == 12


def test_records_of_cordoned_nodes() -> None:
    record = node_record({"metadata": {"name": "n"}, "spec": {"unschedulable": True},
                          "status": {"allocatable": {"nvidia.com/gpu": "8"},
                                     "conditions": [{"type": "Ready", "status": "True"}]}})  # fmt: skip
    assert (record.ready, record.schedulable, record.usable) == (True, False, False)


def test_nodes_without_a_pool_are_discovered_from_their_gpu_labels() -> None:
    labels = {"nvidia.com/gpu.product": "NVIDIA-L4"}
    states = pool_states([], [node("x", labels, 1), node("y", labels, 1)], [])
    [(name, state)] = states.items()
    assert name == "discovered-l4-24gb"
    assert state.offer_base.gpu.id == "L4-24GB"
    assert state.offer_base.node_selector == labels
    assert state.capacity == 2
    assert [t.key for t in state.offer_base.tolerations] == ["nvidia.com/gpu"]


def test_unknown_products_are_ignored() -> None:
    assert pool_states([], [node("x", {"nvidia.com/gpu.product": "Some-Future-GPU"})], []) == {}


def test_records_from_api_objects() -> None:
    record = node_record({
        "metadata": {"name": "n", "labels": H100},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"nvidia.com/gpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]},
    })  # fmt: skip
    assert (record.allocatable_gpus, record.ready, record.gpu_taint_keys) == (8, True, ("nvidia.com/gpu",))
    pod = {"metadata": {"namespace": "ns", "labels": {"modelplane.dev/deployment": "md"}},
           "spec": {"nodeName": "n", "containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
           "status": {"phase": "Running"}}  # fmt: skip
    assert pod_record(pod) == PodRecord("n", 2, "ns/md")
    assert pod_record({**pod, "status": {"phase": "Succeeded"}}) is None
    assert pod_record({**pod, "spec": {"containers": []}}) is None
