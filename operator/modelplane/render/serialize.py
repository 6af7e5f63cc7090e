"""Deterministic YAML for rendered objects: same input, same bytes, for diffs in GitOps repositories."""

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases: what people expect in a manifests repository."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_object(obj: dict[str, Any]) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def dump_stream(objects: list[dict[str, Any]]) -> str:
    return "".join(f"---\n{dump_object(obj)}" for obj in objects)


def object_filename(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}.yaml"


def kustomization(resources: list[str]) -> str:
    """A kustomization.yaml so `kubectl apply -k` and Argo CD / Flux pick the directory up as is."""
    document = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    return dump_object(document)
