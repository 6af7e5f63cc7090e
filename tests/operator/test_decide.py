"""The pure decision of a reconcile: pinning, re-plan requests, infeasible edits, PlanOnly."""

import time
from typing import Any

import pytest

from modelplane.api.contract import PLAN_OUTDATED, PLANNED, PROGRESSING, READY, REPLAN_ANNOTATION
from modelplane.catalog.models import ModelEntry
from modelplane.catalog.resolve import ModelResolver
from modelplane.operator.conditions import (
    Served,
    merge_conditions,
    status_conditions,
    workload_conditions,
)
from modelplane.operator.decide import decide, pinned_fingerprint
from modelplane.operator.reconcile import Decisions, Reservations, decide_and_reserve
from modelplane.planning.service import offers_for
from tests.support import pool

POOLS = [pool("cheap", "L4-24GB", 1, 8, cost="0.50"), pool("big", "H100-SXM-80GB", 8, 2, cost="3.00")]


def body(generation: int = 1, status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
         **spec: Any) -> dict[str, Any]:  # fmt: skip
    spec.setdefault("model", {"name": "meta-llama/Llama-3.1-8B-Instruct"})
    spec.setdefault("maxModelLen", 4096)
    return {"apiVersion": "modelplane.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "chat", "namespace": "ns", "generation": generation, "uid": "u",
                         "annotations": annotations or {}},
            "spec": spec, "status": status or {}}  # fmt: skip


def test_new_deployment_is_planned_and_rendered() -> None:
    decision = decide(body(), lambda: offers_for(POOLS))
    assert decision.plan is not None
    assert decision.plan.pool == "cheap"
    assert decision.conditions[PLANNED].status == "True"
    assert decision.objects is not None
    assert {obj["kind"] for obj in decision.objects} == {"NetworkPolicy", "Service", "Deployment"}
    assert decision.reservation == {"cheap": 1}


def test_pinned_plan_stays_and_a_better_one_is_reported() -> None:
    first = decide(body(), lambda: offers_for(POOLS))
    assert first.plan is not None
    pinned_status = first.status.written_fields()
    expensive_only = [POOLS[1]]
    moved = decide(body(status={**pinned_status, "plan": {**pinned_status["plan"]}}), lambda: offers_for(POOLS))
    assert moved.plan is not None
    assert moved.plan.pool == "cheap"
    # Pinned on "big" while "cheap" exists: the plan stays, PlanOutdated says why.
    on_big = decide(body(), lambda: offers_for(expensive_only))
    assert on_big.plan is not None
    stay = decide(body(status=on_big.status.written_fields()), lambda: offers_for(POOLS))
    assert stay.plan is not None
    assert stay.plan.pool == "big"
    assert stay.conditions[PLAN_OUTDATED].status == "True"
    asked = body(status=on_big.status.written_fields(), annotations={REPLAN_ANNOTATION: "now"})
    replanned = decide(asked, lambda: offers_for(POOLS))
    assert replanned.plan is not None
    assert replanned.plan.pool == "cheap"
    assert replanned.status.written_fields()["replanToken"] == "now"


@pytest.mark.parametrize("forged", [
    {"gpusPerReplica": 8, "tensorParallel": 8, "pipelineParallel": 4},
    {"tolerations": [{"operator": "Exists"}]},
    {"nodeSelector": {"kubernetes.io/hostname": "chosen-node"}},
    {"pool": "big", "gpu": "H100-SXM-80GB"},
    {"memory": "not a memory breakdown"},
])  # fmt: skip
def test_a_hand_written_plan_in_status_is_planned_afresh(forged: dict[str, Any]) -> None:
    """status.plan is trusted only when the planner, given the same choice, makes exactly that plan."""
    planned = decide(body(), lambda: offers_for(POOLS))
    assert planned.plan is not None
    tampered = {**planned.status.written_fields(), "plan": {**planned.status.written_fields()["plan"], **forged}}
    decision = decide(body(status=tampered), lambda: offers_for(POOLS))
    assert decision.plan is not None
    assert decision.plan.to_wire() == planned.plan.to_wire()
    assert decision.reservation == {"cheap": 1}


def test_a_stored_plan_for_a_pool_since_re_specified_is_planned_afresh() -> None:
    planned = decide(body(), lambda: offers_for(POOLS))
    assert planned.plan is not None
    assert planned.plan.pool == "cheap"
    relabelled = [pool("cheap", "L4-24GB", 1, 8, cost="0.50", nodeSelector={"tier": "new"}), POOLS[1]]
    decision = decide(body(status=planned.status.written_fields()), lambda: offers_for(relabelled))
    assert decision.plan is not None
    assert decision.plan.node_selector == {"tier": "new"}


def test_a_new_price_keeps_the_pinned_plan() -> None:
    planned = decide(body(), lambda: offers_for(POOLS))
    assert planned.plan is not None
    repriced = [pool("cheap", "L4-24GB", 1, 8, cost="0.90"), POOLS[1]]
    decision = decide(body(status=planned.status.written_fields()), lambda: offers_for(repriced))
    assert decision.plan is not None
    assert decision.plan.to_wire() == planned.plan.to_wire(), "pinned: the stored estimates stay"


def test_infeasible_edit_leaves_children_alone() -> None:
    planned = decide(body(), lambda: offers_for(POOLS))
    edited = decide(body(generation=2, status=planned.status.written_fields(), maxModelLen=131072, maxConcurrency=512),
                    lambda: offers_for(POOLS))  # fmt: skip
    assert edited.objects is None
    assert edited.plan is None
    assert edited.conditions[PLANNED].status == "False"
    assert "plan" not in edited.status.written_fields()
    assert edited.reservation is None


def test_a_decision_that_leaves_the_servers_alone_leaves_their_reservation_alone() -> None:
    reservations = Reservations()
    planned = decide_and_reserve(body(), lambda: offers_for(POOLS), reservations, "ns/chat")
    assert reservations.snapshot() == {"ns/chat": {"cheap": 1}}
    infeasible = body(generation=2, status=planned.status.written_fields(), maxModelLen=131072, maxConcurrency=512)
    decide_and_reserve(infeasible, lambda: offers_for(POOLS), reservations, "ns/chat")
    assert reservations.snapshot() == {"ns/chat": {"cheap": 1}}, "the old servers still run"
    plan_only = body(generation=3, status=planned.status.written_fields(), mode="PlanOnly")
    decide_and_reserve(plan_only, lambda: offers_for(POOLS), reservations, "ns/chat")
    assert reservations.snapshot() == {"ns/chat": {"cheap": 1}}
    decide_and_reserve(body(mode="PlanOnly"), lambda: offers_for(POOLS), reservations, "ns/review")
    assert "ns/review" not in reservations.snapshot(), "a plan that is never applied holds no GPUs"


def test_plan_only_creates_nothing_and_is_ready() -> None:
    decision = decide(body(mode="PlanOnly"), lambda: offers_for(POOLS))
    assert decision.objects is None, "PlanOnly neither creates nor touches children"
    assert decision.plan is not None
    assert decision.reservation is None, "a plan that is not applied holds no GPUs"
    assert decision.conditions[PLANNED].message.endswith("mode PlanOnly: not applied")
    ready = status_conditions(decision.conditions, [], decision.plan_only)[READY]
    assert (ready.status, ready.reason) == ("True", "PlanOnly")


def test_switching_a_serving_deployment_to_plan_only_keeps_reporting_its_servers() -> None:
    applied = decide(body(), lambda: offers_for(POOLS))
    stored = applied.status.written_fields()
    frozen = decide(body(generation=2, status=stored, mode="PlanOnly"), lambda: offers_for(POOLS))
    assert frozen.objects is None
    serving = {"kind": "Deployment", "metadata": {"generation": 1},
               "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1,
                          "conditions": [{"type": "Available", "status": "True"}]}}  # fmt: skip
    ready = status_conditions(frozen.conditions, [Served(serving, 1)], frozen.plan_only)[READY]
    assert (ready.status, ready.reason) == ("True", "Available")


def test_a_replan_that_moves_the_servers_is_an_event_and_one_that_does_not_is_not() -> None:
    on_big = decide(body(), lambda: offers_for([POOLS[1]]))
    edited: dict[str, Any] = {"maxModelLen": 8192}
    moved = decide(body(generation=2, status=on_big.status.written_fields(), **edited), lambda: offers_for(POOLS))
    assert moved.plan is not None
    assert moved.plan.pool == "cheap"
    [(kind, reason, message)] = moved.events
    assert (kind, reason) == ("Normal", "Replanned")
    assert "from pool big" in message
    assert "to pool cheap" in message
    same = decide(body(generation=2, status=on_big.status.written_fields(), **edited),
                  lambda: offers_for([POOLS[1]]))  # fmt: skip
    assert same.events == []


def test_a_replica_count_edit_keeps_the_plan_and_places_the_new_count() -> None:
    """kubectl scale bumps the generation; it must not re-plan (and move) the running servers."""
    on_big = decide(body(), lambda: offers_for([POOLS[1]]))
    scaled = decide(body(generation=2, status=on_big.status.written_fields(), replicas=3), lambda: offers_for(POOLS))
    assert scaled.plan is not None
    assert scaled.plan.pool == "big", "a cheaper pool appearing does not move a deployment that only scaled"
    assert scaled.plan.replicas == 3
    assert scaled.conditions[PLAN_OUTDATED].status == "True"
    assert scaled.events == []
    edited = decide(body(generation=2, status=on_big.status.written_fields(), replicas=3, maxModelLen=8192),
                    lambda: offers_for(POOLS))  # fmt: skip
    assert edited.plan is not None
    assert edited.plan.pool == "cheap", "any other spec edit is planned afresh"


def test_leaderworkerset_readiness_without_observed_generation() -> None:
    """LeaderWorkerSet status has no observedGeneration; its conditions say whether groups are up to date."""

    def lws(*conditions: dict[str, str]) -> dict[str, Any]:
        status = {"readyReplicas": 2, "updatedReplicas": 2, "replicas": 2, "conditions": list(conditions)}
        return {"kind": "LeaderWorkerSet", "metadata": {"generation": 3}, "status": status}

    available = {"type": "Available", "status": "True", "reason": "AllGroupsReady"}
    updating = {"type": "UpdateInProgress", "status": "True", "reason": "GroupsUpdating"}
    ready = workload_conditions(lws(available), 2)
    assert (ready[READY].status, ready[PROGRESSING].reason) == ("True", "Complete")
    rolling = workload_conditions(lws({**available, "status": "False"}, updating), 2)
    assert (rolling[READY].status, rolling[PROGRESSING].status) == ("False", "True")
    # The response of the write that changed its spec still carries the controller's report on the old one.
    just_written = workload_conditions(lws(available), 2, spec_written=True)
    assert (just_written[PROGRESSING].status, just_written[PROGRESSING].reason) == ("True", "RollingOut")


def test_invalid_spec_is_reported_not_raised() -> None:
    decision = decide(body(maxModelLen=-1), lambda: offers_for(POOLS))
    assert decision.conditions[PLANNED].reason == "InvalidSpec"
    assert "spec.maxModelLen" in decision.conditions[PLANNED].message
    assert decision.objects is None


def test_transition_time_moves_only_with_status() -> None:
    first = merge_conditions([], workload_conditions(None, 1), 1, "t1")
    again = merge_conditions(first, workload_conditions(None, 1), 1, "t2")
    assert [c["lastTransitionTime"] for c in again] == [c["lastTransitionTime"] for c in first]
    ready = {"kind": "Deployment", "metadata": {"generation": 1},
             "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1,
                        "conditions": [{"type": "Available", "status": "True"}]}}  # fmt: skip
    after = {c["type"]: c for c in merge_conditions(again, workload_conditions(ready, 1), 1, "t3")}
    assert after["Ready"]["status"] == "True"
    assert after["Ready"]["lastTransitionTime"] == "t3"


def test_pinned_fingerprint_changes_with_what_the_decision_depends_on() -> None:
    planned = decide(body(), lambda: offers_for(POOLS))
    pinned = body(status={**planned.status.written_fields(), "conditions": [{"type": "Ready", "status": "False"}]})
    fingerprint = pinned_fingerprint(pinned)
    assert fingerprint is not None
    # Conditions and other status fields are outputs, not inputs.
    later = body(status={**planned.status.written_fields(), "conditions": [{"type": "Ready", "status": "True"}]})
    assert pinned_fingerprint(later) == fingerprint
    assert pinned_fingerprint(body()) is None  # nothing pinned yet
    stored = planned.status.written_fields()
    assert pinned_fingerprint(body(generation=2, status=stored, maxModelLen=8192)) is None  # new spec
    assert pinned_fingerprint(body(status=stored, annotations={REPLAN_ANNOTATION: "now"})) is None
    relabelled = body(status=planned.status.written_fields())
    relabelled["metadata"]["labels"] = {"team": "search"}
    assert pinned_fingerprint(relabelled) not in (None, fingerprint)


def test_kept_decisions_are_reused_only_for_the_same_fingerprint() -> None:
    decisions = Decisions()
    decision = decide(body(), lambda: offers_for(POOLS))
    decisions.put("ns/chat", "a", decision)
    assert decisions.get("ns/chat", "a") is decision
    assert decisions.get("ns/chat", "b") is None
    assert decisions.get("ns/chat", None) is None
    decisions.put("ns/chat", None, decision)  # no longer pinned: forgotten
    assert decisions.get("ns/chat", "a") is None
    decisions.put("ns/chat", "a", decision)
    decisions.drop("ns/chat")
    assert decisions.get("ns/chat", "a") is None


def test_an_absurd_architecture_is_refused_before_planning_grows_with_it() -> None:
    """5,000,000 layers crash-looped the operator out of memory; now it is one InvalidSpec, whatever the size."""
    architecture = {"hidden_size": 4096, "num_hidden_layers": 5_000_000, "num_attention_heads": 32,
                    "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}  # fmt: skip
    started = time.perf_counter()
    decision = decide(body(model={"name": "acme/huge", "architecture": architecture}), lambda: offers_for(POOLS))
    assert time.perf_counter() - started < 1.0
    assert decision.objects is None
    assert decision.conditions[PLANNED].reason == "InvalidSpec"
    assert "'num_hidden_layers' is 5000000, above the largest modelplane sizes" in decision.conditions[PLANNED].message


def test_an_unknown_model_is_model_unknown_naming_the_three_ways_to_fix_it() -> None:
    decision = decide(body(model={"name": "acme/never-heard-of"}), lambda: offers_for(POOLS))
    planned = decision.conditions[PLANNED]
    assert (decision.objects, planned.status, planned.reason) == (None, "False", "ModelUnknown")
    assert "set spec.model.architecture" in planned.message
    assert "modelplane catalog add acme/never-heard-of" in planned.message
    assert "enable Hub resolution (chart value hub.enabled" in planned.message


def test_a_model_from_a_catalog_entry_is_planned_and_an_unmodelled_one_refused_by_model_type() -> None:
    tiny = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256}  # fmt: skip
    resolver = ModelResolver([ModelEntry(name="acme/tiny", config_source="test", config=tiny)])
    decision = decide(body(model={"name": "acme/tiny"}), lambda: offers_for(POOLS), resolver)
    assert decision.conditions[PLANNED].reason == "Planned"
    hybrid = {**tiny, "model_type": "jamba"}
    refused = decide(body(model={"name": "acme/h", "architecture": hybrid}), lambda: offers_for(POOLS), resolver)
    assert refused.conditions[PLANNED].reason == "ArchitectureUnsupported"
    assert "model_type 'jamba' cannot be sized exactly" in refused.conditions[PLANNED].message


@pytest.mark.parametrize(
    ("field", "value"),
    [("mamba_num_heads", 10**30), ("moe_latent_size", 10**400), ("moe_shared_expert_intermediate_size", 10**30),
     ("ssm_state_size", -3), ("hybrid_override_pattern", ["M"])],
)  # fmt: skip
def test_an_absurd_hybrid_field_is_one_invalid_spec_naming_it(field: str, value: object) -> None:
    """moe_latent_size 10**400 once overflowed a float in the memory reason: every field the hybrids size is bounded."""
    architecture = {"model_type": "nemotron_h", "hidden_size": 4096, "num_hidden_layers": 4, "num_attention_heads": 32,
                    "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 1000, "mamba_num_heads": 64,
                    "mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4,
                    "hybrid_override_pattern": "M*-E", "n_routed_experts": 8, "num_experts_per_tok": 2,
                    "moe_intermediate_size": 1024, "n_shared_experts": 1, field: value}  # fmt: skip
    decision = decide(body(model={"name": "acme/h", "architecture": architecture}), lambda: offers_for(POOLS))
    assert decision.objects is None
    assert decision.conditions[PLANNED].reason == "InvalidSpec"
    assert f"'{field}'" in decision.conditions[PLANNED].message
