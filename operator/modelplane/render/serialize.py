"""Deterministic YAML for rendered objects: same input, same bytes, for diffs in GitOps repositories."""

from typing import Any

import yaml

UNICODE_LINE_BREAKS = ("\x85", "\u2028", "\u2029")


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases: what people expect in a manifests repository."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Double quotes for NEL, LS and PS: PyYAML writes them raw in a single-quoted scalar, where a reader
    folds them into spaces, and escapes them only in double quotes."""
    style = '"' if any(char in value for char in UNICODE_LINE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


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
