"""Print the LeaderWorkerSet controller's webhook configurations, pointed at its server on loopback.

Read from the pinned sigs.k8s.io/lws module's own manifests (config/webhook/manifests.yaml, plus the
objectSelector its kustomize patches add to the pod webhooks, so that only LeaderWorkerSet pods go through
them), with each `clientConfig.service` replaced by a URL on 127.0.0.1 and the cluster CA as `caBundle`:
the controller runs as a process beside the API server, not behind a Service.
"""

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

import yaml

MANIFESTS = Path("config/webhook/manifests.yaml")
PATCHES = {Path("config/webhook/mutating-patch.yaml"): "MutatingWebhookConfiguration",
           Path("config/webhook/validating-patch.yaml"): "ValidatingWebhookConfiguration"}  # fmt: skip
# Our names, not the kustomize defaults ("mutating-webhook-configuration"), so they say whose they are.
NAMES = {"MutatingWebhookConfiguration": "lws-mutating-webhook-configuration",
         "ValidatingWebhookConfiguration": "lws-validating-webhook-configuration"}  # fmt: skip
TIMEOUT_SECONDS = 10


def configurations(module: Path, port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all((module / MANIFESTS).read_text()) if doc}
    for patch_file, kind in PATCHES.items():
        for operation in yaml.safe_load((module / patch_file).read_text()):
            if operation["op"] != "replace" or not operation["path"].startswith("/webhooks/"):
                raise SystemExit(f"{patch_file}: unexpected patch {operation['op']} {operation['path']}")
            documents[kind]["webhooks"][int(operation["path"].rsplit("/", 1)[1])] = operation["value"]
    ca_bundle_b64 = base64.b64encode(ca_bundle).decode()
    out = []
    for kind, document in sorted(documents.items()):
        for webhook in document["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle_b64}
            webhook["timeoutSeconds"] = TIMEOUT_SECONDS
        out.append({"apiVersion": document["apiVersion"], "kind": kind, "metadata": {"name": NAMES[kind]},
                    "webhooks": document["webhooks"]})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module", type=Path, help="the sigs.k8s.io/lws module directory")
    parser.add_argument("--port", type=int, required=True, help="the controller's webhook port on 127.0.0.1")
    parser.add_argument("--ca", type=Path, required=True, help="the CA that signed the webhook's certificate")
    args = parser.parse_args()
    items = configurations(args.module, args.port, args.ca.read_bytes())
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
