"""The CLI contract: commands, JSON fields, exit codes, one-line errors without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from modelplane.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DEPLOYMENT = EXAMPLES / "deployments" / "llama-8b-l4.yaml"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_CONFIG = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
                "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256}  # fmt: skip
NOT_UTF8 = b"\xff\xfe\x00not text"
runner = CliRunner()
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [" + ", ".join([f"*{chr(97 + n)}"] * 9) + "]\n" for n in range(9)
)

MD = """apiVersion: modelplane.dev/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}, namespace: ns}}
spec:
  model: {{name: {model}}}
  maxModelLen: {length}
"""
POOL = """apiVersion: modelplane.dev/v1alpha1
kind: GPUNodePool
metadata: {{name: p}}
spec: {{gpu: {gpu}, gpusPerNode: 8, nodes: {nodes}, location: cloud}}
"""


def write(tmp_path: Path, text: str, name: str = "md.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_line(result: Result) -> str:
    """Bad input: exit 1, no traceback, exactly one printable `modelplane: error:` line on stderr."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("modelplane: error: "), lines[0]
    assert lines[0].isprintable(), lines[0]
    return lines[0]


def test_plan_json_contract(tmp_path: Path) -> None:
    path = write(tmp_path, MD.format(name="a", model="meta-llama/Llama-3.1-8B-Instruct", length=8192))
    result = runner.invoke(app, ["plan", str(path), "-o", "json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert {"name", "namespace", "feasible", "plan", "candidates"} <= set(entry)
    plan = entry["plan"]
    assert {"pool", "gpu", "tensorParallel", "pipelineParallel", "gpusPerReplica", "nodesPerReplica", "replicas",
            "quantization", "runtime", "maxModelLen", "memory", "estimates"} <= set(plan)  # fmt: skip
    assert {"weightBytesPerGpu", "kvCacheBytesPerToken", "overheadBytesPerGpu", "kvCacheTokens",
            "budgetBytesPerGpu"} <= set(plan["memory"])  # fmt: skip
    assert {"decodeTokensPerSecond", "costPerHour", "costPerMillionTokens"} <= set(plan["estimates"])
    for candidate in entry["candidates"]:
        assert isinstance(candidate["feasible"], bool)
        for reason in candidate["reasons"]:
            assert set(reason) == {"code", "message"}


def test_plan_exit_2_when_infeasible(tmp_path: Path) -> None:
    path = write(tmp_path, MD.format(name="a", model="meta-llama/Llama-3.1-8B-Instruct", length=8192)
                 + "  quantization: int8\n")  # fmt: skip
    result = runner.invoke(app, ["plan", str(path), "-o", "json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)[0]["plan"] is None


def test_plan_table_for_people() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLES / "deployments" / "llama-8b-l4.yaml")])
    assert result.exit_code == 0, result.output
    assert "weights" in result.stdout
    assert "KV cache" in result.stdout


def test_estimate_contract() -> None:
    result = runner.invoke(app, ["estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct", "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["parameters"] == 8_030_261_248
    assert data["weightBytes"] == 2 * 8_030_261_248
    assert data["kvCacheBytesPerToken"] == 131_072


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["estimate", "--model", LLAMA, "-o", "markdown"], "Invalid value for '--output'"),
        (["estimate", "--model", LLAMA, "-o", "svg"], "Invalid value for '--output'"),
        (["plan", "md.yaml", "-o", "foo"], "Invalid value for '--output'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["catalog", "frobnicate"], "No such command 'frobnicate'"),
        (["plan"], "Missing argument 'files'"),
        (["--bogus"], "No such option: --bogus"),
    ],
    ids=["estimate-markdown", "estimate-svg", "plan-format", "command", "subcommand", "argument", "option"],
)
def test_usage_errors_are_bad_input(args: list[str], message: str) -> None:
    """Exit 2 means "infeasible" to a pipeline; click's default 2 for a typo would read as a planning verdict."""
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Usage: ")
    assert message in result.stderr
    assert len(result.stderr.splitlines()) <= 7, result.stderr


@pytest.mark.parametrize(
    ("args", "code"), [(["--help"], 0), (["plan", "--help"], 0), (["catalog", "--help"], 0), ([], 1), (["catalog"], 1)]
)
def test_help_exits_0_and_a_missing_command_1(args: list[str], code: int) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code
    assert "Usage: " in result.output


def test_estimate_from_config_json(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(LLAMA_CONFIG), "config.json")
    result = runner.invoke(app, ["estimate", "--model-config", str(path), "--kv-cache-dtype", "fp8", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kvCacheBytesPerToken"] == 65_536


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [", ": invalid YAML: line 1, column 8: expected the node content"),
        ("just text\n", ": expected a Kubernetes object (a mapping), got str"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", ": ConfigMap x: kind: unknown kind 'ConfigMap'"),
        (MD.format(name="a", model="acme/unknown-model", length=8192),
         ": ModelDeployment ns/a: spec.model.name: model 'acme/unknown-model' is not in modelplane's catalog; either"
         " set spec.model.architecture"),
        (MD.format(name="a", model=LLAMA, length=-5),
         ": ModelDeployment ns/a: spec.maxModelLen: Input should be greater than or equal to 1"),
        (MD.format(name="a", model=LLAMA, length=10**30),
         ": ModelDeployment ns/a: spec.maxModelLen: Input should be a valid integer"),
        (MD.format(name="a", model="[x]", length=8192),
         ": ModelDeployment ns/a: spec.model.name: Input should be a valid string"),
        (MD.format(name="a", model=LLAMA, length=8192) + "  maxModelLenn: 1\n",
         ": ModelDeployment ns/a: spec.maxModelLenn: unknown field"),
        (POOL.format(gpu="H900", nodes=1), ": GPUNodePool p: spec.gpu: unknown GPU 'H900'"),
        (MD.format(name="a", model=LLAMA, length=8192) + "---\n" + POOL.format(gpu="L4-24GB", nodes=-1),
         " (document 2): GPUNodePool p: spec.nodes: Input should be greater than or equal to 1"),
        (POOL.format(gpu="L4-24GB", nodes=1).replace("cloud}", "cloud, tolerations: [{key: a, effect: Bad}]}"),
         ": GPUNodePool p: spec.tolerations[0].effect: Input should be 'NoSchedule'"),
        (MD.format(name="a", model=LLAMA, length='"4096"'),
         ": ModelDeployment ns/a: spec.maxModelLen: Input should be a valid integer"),
        (MD.format(name="a", model=LLAMA, length="true"),
         ": ModelDeployment ns/a: spec.maxModelLen: Input should be a valid integer"),
        (MD.format(name="a", model=LLAMA, length=8192).replace("maxModelLen", "max_model_len"),
         ": ModelDeployment ns/a: spec.max_model_len: unknown field"),
        (LAUGHS, ": invalid YAML: line 3: more than 10 YAML aliases; write the objects out instead of aliasing them"),
        (MD.format(name="a", model=LLAMA, length="!!int 1" + "0" * 5000),
         ": invalid YAML: line 6, column 16: an integer of 5,001 characters; Kubernetes integers have at most 19"
         " digits"),
        (MD.format(name="a", model=LLAMA, length="1" + "0" * 5000),
         ": ModelDeployment ns/a: spec.maxModelLen: Input should be a valid integer"),
        (MD.format(name="a", model=LLAMA, length="!!timestamp 2024-13-01"),
         ": invalid YAML: line 6, column 16: not a valid timestamp: month must be in 1..12"),
        (MD.format(name="a", model=LLAMA, length=8192).replace("ns}", "ns, labels: {a: !!binary aGk=}}"),
         ": ModelDeployment ns/a: a YAML bytes value is not JSON: write it as a string"),
        (MD.format(name="a", model="acme/moe, architecture: " + json.dumps(
            {**LLAMA_CONFIG, "num_local_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 10**400}),
            length=8192),
         ": ModelDeployment ns/a: spec.model.architecture: config field 'moe_intermediate_size' must be a positive"
         " integer, got '1000000000000000000...(403 characters)"),
        (POOL.format(gpu="L4-24GB", nodes=1).replace("cloud}", "cloud, nodeSelector: {'gpu type': l4}}"),
         ": GPUNodePool p: spec.nodeSelector: nodeSelector keys must each be a label key: an optional DNS subdomain"),
    ],
    ids=["yaml", "scalar", "kind", "model", "negative", "huge", "type", "unknown-field", "gpu", "document", "index",
         "string-for-integer", "boolean-for-integer", "snake-case", "billion-laughs", "tagged-int-of-5000-digits",
         "integer-of-5000-digits",
         "impossible-timestamp", "binary", "moe-expert-size", "node-selector-key"],
)  # fmt: skip
def test_bad_input_names_file_object_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    line = error_line(runner.invoke(app, ["plan", str(path)]))
    assert line.startswith(f"modelplane: error: {path}{expected}"), line


@pytest.mark.parametrize("options", [[], ["-o", "foo"]], ids=["not-utf8", "usage"])
def test_the_installed_entry_point_exits_1_without_a_traceback(tmp_path: Path, options: list[str]) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(NOT_UTF8)
    args = [sys.executable, "-m", "modelplane", "plan", str(path), *options]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    if not options:
        assert result.stderr == f"modelplane: error: {path}: not UTF-8 text (byte 0xff at offset 0)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", "expected a JSON object with a model's architecture (a config.json)"),
        ("[1]", "expected a JSON object with a model's architecture (a config.json)"),
        ('{"hidden_size": 4096', "invalid JSON at line 1, column 21: Expecting ',' delimiter"),
        (json.dumps({"hidden_size": 4096}), "config field 'num_hidden_layers' must be a positive integer, got None"),
        (json.dumps({**LLAMA_CONFIG, "sliding_window": "4k"}),
         "config field 'sliding_window' must be a positive integer, got '4k'"),
        (json.dumps({**LLAMA_CONFIG, "num_local_experts": 8, "num_experts_per_tok": 2, "mlp_only_layers": [[1]]}),
         "config field 'mlp_only_layers' must be a list of layer indices"),
        (json.dumps({**LLAMA_CONFIG, "num_hidden_layers": 5_000_000}),
         "config field 'num_hidden_layers' is 5000000, above the largest modelplane sizes (1,024;"
         " catalog/data/architecture_bounds.yaml): use the model's real config.json"),
        (json.dumps({**LLAMA_CONFIG, "vocab_size": 10**400}),
         "config field 'vocab_size' is 10000000000000000000...(401 characters), above the largest modelplane"
         " sizes (16,777,216; catalog/data/architecture_bounds.yaml): use the model's real config.json"),
        (json.dumps({**LLAMA_CONFIG, "layer_types": ["full_attention"] * 10**6, "sliding_window": 4096}),
         "config field 'layer_types' has 1,000,000 entries, more than 1,024"),
        (json.dumps({**LLAMA_CONFIG, "quantization_config": {"quant_method": "gptq", "bits": 10**30}}),
         "config field quantization_config.bits must be an integer from 1 to 1048576, got " + str(10**30)),
        ('{"vocab_size": 1' + "0" * 5000 + "}", "invalid JSON: an integer of more than 4300 digits"),
        (json.dumps({**LLAMA_CONFIG, "num_local_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 10**7}),
         "config field 'moe_intermediate_size' is 10000000, above the largest modelplane sizes (1,048,576;"
         " catalog/data/architecture_bounds.yaml): use the model's real config.json"),
    ],
    ids=["empty", "list", "json", "missing", "text", "nested-list", "layers", "vocab", "layer-list", "quant-bits",
         "integer-of-5000-digits", "moe-expert-size"],
)  # fmt: skip
def test_bad_config_json_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text, "config.json")
    line = error_line(runner.invoke(app, ["estimate", "--model-config", str(path)]))
    assert line == f"modelplane: error: {path}: {expected}"


@pytest.mark.parametrize(
    ("args", "content", "expected"),
    [
        (["plan", "{path}"], NOT_UTF8, "{path}: not UTF-8 text (byte 0xff at offset 0)"),
        (["plan", str(DEPLOYMENT), "--pools", "{path}"], NOT_UTF8, "{path}: not UTF-8 text (byte 0xff at offset 0)"),
        (["estimate", "--model-config", "{path}"], NOT_UTF8, "{path}: not UTF-8 text (byte 0xff at offset 0)"),
        (["plan", "-"], NOT_UTF8, "<stdin>: not UTF-8 text (byte 0xff at offset 0)"),
        (["plan", "{path}"], b"kind: \xc3", "{path}: not UTF-8 text (byte 0xc3 at offset 6)"),
        (["estimate", "--model-config", "{path}"], None, "{path}: Is a directory"),
        (["plan", "{path}"], b"[" * 5000 + b"]" * 5000, "{path}: invalid YAML: nested too deeply"),
        (["estimate", "--model-config", "{path}"], b"[" * 100_000 + b"]" * 100_000,
         "{path}: invalid JSON: nested too deeply"),
    ],
    ids=["plan", "pools", "config", "stdin", "truncated", "directory", "deep-yaml", "deep-json"],
)  # fmt: skip
def test_unreadable_input_is_one_line(tmp_path: Path, args: list[str], content: bytes | None, expected: str) -> None:
    path = tmp_path / "input"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    result = runner.invoke(app, [arg.format(path=path) for arg in args], input=content)
    assert error_line(result) == f"modelplane: error: {expected.format(path=path)}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, MD.format(name="a", model=LLAMA, length=8192))
    path.chmod(0)
    assert error_line(runner.invoke(app, ["plan", str(path)])) == f"modelplane: error: {path}: Permission denied"


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """Some Windows editors start UTF-8 files with a BOM; it is not content."""
    manifest = tmp_path / "md.yaml"
    manifest.write_bytes(b"\xef\xbb\xbf" + MD.format(name="a", model=LLAMA, length=8192).encode())
    config = tmp_path / "config.json"
    config.write_bytes(b"\xef\xbb\xbf" + json.dumps(LLAMA_CONFIG).encode())
    assert runner.invoke(app, ["plan", str(manifest)]).exit_code == 0
    assert runner.invoke(app, ["estimate", "--model-config", str(config)]).exit_code == 0


@pytest.mark.parametrize(
    "files",
    [{}, {"empty.yaml": ""}, {"comments.yaml": "# nothing yet\n---\n"},
     {"pools.yaml": POOL.format(gpu="L4-24GB", nodes=1)}, {"notes.txt": MD.format(name="a", model=LLAMA, length=8192)}],
    ids=["empty-directory", "empty-file", "only-comments", "only-pools", "no-yaml-files"],
)  # fmt: skip
@pytest.mark.parametrize("command", ["plan", "render"])
def test_nothing_to_plan_is_bad_input(tmp_path: Path, files: dict[str, str], command: str) -> None:
    """An empty directory in a GitOps pipeline is a wrong path, not an empty plan that passes CI."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name, text in files.items():
        write(manifests, text, name)
    out = tmp_path / "out"
    result = runner.invoke(app, [command, str(manifests), *(["-o", str(out)] if command == "render" else [])])
    assert error_line(result) == f"modelplane: error: {manifests}: no ModelDeployment found"
    assert not out.exists()


def test_empty_documents_and_files_beside_objects_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "---\n# header\n---\n" + MD.format(name="a", model=LLAMA, length=8192) + "---\n---\n")
    write(tmp_path, "", "empty.yaml")
    (tmp_path / "directory.yaml").mkdir()
    result = runner.invoke(app, ["plan", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert [entry["name"] for entry in json.loads(result.stdout)] == ["a"]


def test_pools_file_without_pools_is_bad_input(tmp_path: Path) -> None:
    """Otherwise the plan would silently use the what-if inventory instead of the pools the user named."""
    pools = write(tmp_path, "# pools go here\n", "pools.yaml")
    line = error_line(runner.invoke(app, ["plan", str(DEPLOYMENT), "--pools", str(pools)]))
    assert line == f"modelplane: error: {pools}: no GPUNodePool found (--pools names the inventory to plan against)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MD.format(name="a", model=LLAMA, length=8192) + '  "max\\x1b[2JLen\\u202e\\nx": 1\n',
         ": ModelDeployment ns/a: spec.max\\x1b[2JLen\\u202e\\nx: unknown field"),
        (MD.format(name='"a\\nb\\x1b]0;title\\x07"', model=LLAMA, length=8192),
         ": ModelDeployment ns/a\\nb\\x1b]0;title\\x07: metadata.name: String should match pattern"),
    ],
    ids=["field", "name"],
)  # fmt: skip
def test_error_line_escapes_control_characters(tmp_path: Path, text: str, expected: str) -> None:
    """A user's string must not break the one-line contract or drive the terminal (clear screen, set title)."""
    path = write(tmp_path, text)
    line = error_line(runner.invoke(app, ["plan", str(path)]))
    assert line.startswith(f"modelplane: error: {path}{expected}"), line


def test_render_directory_and_stream(tmp_path: Path) -> None:
    path = write(tmp_path, MD.format(name="chat", model="meta-llama/Llama-3.1-8B-Instruct", length=4096))
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert files == ["kustomization.yaml", "ns/chat/deployment.yaml", "ns/chat/kustomization.yaml",
                     "ns/chat/networkpolicy.yaml", "ns/chat/service.yaml"]  # fmt: skip
    stream = runner.invoke(app, ["render", str(path), "-o", "-"])
    assert stream.exit_code == 0
    assert stream.stdout.count("\n---\n") + stream.stdout.startswith("---\n") == 3
    assert (out / "ns/chat/deployment.yaml").read_text() in stream.stdout


def test_the_readmes_gitops_command_renders_the_shipped_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`modelplane render examples/deployments --pools examples/pools -o manifests/`, verbatim from the README."""
    readme = (REPO / "README.md").read_text()
    command = "modelplane render examples/deployments --pools examples/pools -o manifests/"
    assert f"`{command}`" in readme
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(EXAMPLES)
    result = runner.invoke(app, command.split()[1:])
    assert result.exit_code == 0, result.output
    written = {p.relative_to(tmp_path / "manifests").as_posix() for p in (tmp_path / "manifests").rglob("*.yaml")}
    assert "chat/llama-8b/deployment.yaml" in written
    assert not any(path.startswith("research/llama-405b-onprem/") for path in written), "PlanOnly renders nothing"


def test_render_infeasible_writes_nothing(tmp_path: Path) -> None:
    good = MD.format(name="ok", model="meta-llama/Llama-3.1-8B-Instruct", length=4096)
    bad = MD.format(name="bad", model="meta-llama/Llama-3.1-8B-Instruct", length=4096) + "  quantization: int8\n"
    path = write(tmp_path, good + "---\n" + bad)
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "-o", str(out)])
    assert result.exit_code == 2
    assert "ns/bad" in result.stderr
    assert not out.exists() or not list(out.rglob("*.yaml"))


def test_catalog_lists() -> None:
    gpus = runner.invoke(app, ["catalog", "gpus", "-o", "json"])
    assert gpus.exit_code == 0
    ids = {gpu["id"] for gpu in json.loads(gpus.stdout)}
    assert {"H100-SXM-80GB", "MI300X-192GB", "L4-24GB"} <= ids
    models = runner.invoke(app, ["catalog", "models", "-o", "json"])
    assert len(json.loads(models.stdout)) >= 20


def test_markdown_report_for_pull_requests(tmp_path: Path) -> None:
    good = MD.format(name="ok", model="meta-llama/Llama-3.1-8B-Instruct", length=4096)
    bad = MD.format(name="bad", model="meta-llama/Llama-3.1-8B-Instruct", length=4096) + "  quantization: int8\n"
    path = write(tmp_path, good + "---\n" + bad)
    result = runner.invoke(app, ["plan", str(path), "-o", "markdown"])
    assert result.exit_code == 2
    table = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert len(table) == 2
    assert "**infeasible**" in next(line for line in table if "ns/bad" in line)
    assert "UnsupportedQuantization" in result.stdout
    assert "- → quantization" in result.stdout
    onprem = runner.invoke(app, ["plan", str(EXAMPLES / "deployments" / "infeasible.yaml"), "--pools",
                                 str(EXAMPLES / "pools"), "-o", "markdown"])  # fmt: skip
    assert "<details><summary>Rejected pools</summary>" in onprem.stdout
    assert "- `l4-cloud`: LocalityPolicy" in onprem.stdout


@pytest.mark.parametrize("command", [["plan", "/dev/zero"], ["estimate", "--model-config", "/dev/zero"]])
def test_an_endless_input_is_one_error_line(command: list[str]) -> None:
    """/dev/zero hung the CLI: inputs are read up to a bound, and beyond it refused."""
    result = runner.invoke(app, command)
    assert result.exit_code == 1
    assert error_line(result) == "modelplane: error: /dev/zero: larger than 64 MiB; not a manifest or config.json"
