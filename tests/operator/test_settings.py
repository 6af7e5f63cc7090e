"""kopf settings: prefixes under our API group, explicit timeouts, and peering that kopf keeps mandatory."""

import kopf

from modelplane.operator.settings import PEERING_NAME, configure


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
