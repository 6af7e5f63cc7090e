"""kopf settings: prefixes under our API group, explicit timeouts, and peering that kopf keeps mandatory."""

import kopf
import pytest

from modelplane.catalog.models import ModelEntry
from modelplane.catalog.resolve import DEFAULT_CACHE_MODELS, HubSettings, catalog_configmap
from modelplane.operator.catalog_watch import catalog_from
from modelplane.operator.settings import PEERING_NAME, ModelSources, configure, model_sources


def test_prefixes_and_timeouts_are_ours_and_explicit() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.persistence.finalizer == "modelplane.dev/finalizer"
    progress = settings.persistence.progress_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert progress.prefix == "modelplane.dev"
    assert settings.watching.server_timeout is not None
    assert settings.watching.client_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert settings.networking.connect_timeout is not None
    assert settings.networking.request_timeout is not None
    assert settings.posting.enabled is False
    assert settings.watching.chunk_size is not None, "the initial listing in pages, not one response per resource"


def test_peering_asked_for_stays_mandatory_and_replicas_draw_distinct_priorities() -> None:
    """`--peering NAME` makes kopf's peering mandatory: a missing peering object must stop the operator,
    not let every replica act."""
    priorities = set()
    for _ in range(5):
        settings = kopf.OperatorSettings()
        settings.peering.mandatory = True  # what kopf's `--peering modelplane` sets before start-up handlers
        settings.peering.name = PEERING_NAME
        configure(settings)
        assert settings.peering.mandatory is True
        priorities.add(settings.peering.priority)
    assert len(priorities) > 1


def test_model_sources_follow_the_chart_environment() -> None:
    assert model_sources({}) == ModelSources(None, None, DEFAULT_CACHE_MODELS)
    chart = model_sources({"MODELPLANE_CATALOG_NAMESPACE": "modelplane-system", "MODELPLANE_HUB": "true",
                           "MODELPLANE_HUB_CACHE_MODELS": "8"})  # fmt: skip
    assert chart == ModelSources("modelplane-system", HubSettings(), 8)
    with pytest.raises(ValueError, match="MODELPLANE_HUB_CACHE_MODELS must be a positive integer, got '0'"):
        model_sources({"MODELPLANE_HUB_CACHE_MODELS": "0"})


def test_a_malformed_catalog_configmap_is_left_out_and_the_others_kept() -> None:
    tiny = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "vocab_size": 256}  # fmt: skip
    good = catalog_configmap(ModelEntry(name="acme/tiny", config_source="test", config=tiny))
    bad = {"metadata": {"name": "broken"}, "data": {"model.yaml": "name: acme/broken\nconfig: [not, a, mapping]"}}
    assert [entry.name for entry in catalog_from([bad, good], "ns")] == ["acme/tiny"]


def test_no_handler_needs_the_diff_base_the_operator_does_not_build() -> None:
    """NoDiffBase gives kopf an empty essence; that is only right while no change handler or daemon exists."""
    import modelplane.operator.handlers  # noqa: F401 - registers the operator's handlers

    registry = kopf.get_default_registry()
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert registry._watching.get_all_handlers(), "the registry read is not the operator's"
    settings = kopf.OperatorSettings()
    configure(settings)
    body = kopf.Body({"metadata": {"name": "x", "annotations": {"a": "b"}}, "spec": {"replicas": 1}})
    assert settings.persistence.diffbase_storage.build(body=body) == {}
