"""Serving runtimes as data: pinned version and image, and the CLI flags that version accepts."""

from functools import cache, cached_property
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from modelplane.catalog.errors import CatalogError


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)


OPTION = r"^--?[a-z0-9][a-z0-9_-]*$"


class RuntimeFlag(_Model):
    """One option string the runtime's parser accepts; an alias names the option it sets instead."""

    name: str = Field(pattern=OPTION)
    alias_of: str | None = Field(default=None, pattern=OPTION)
    source: str | None = None


class FlagSpelling(_Model):
    """How the runtime's argument parser rewrites an option string before matching it against its flags."""

    underscores_as_dashes: bool
    dotted_keys: bool = Field(description="--flag.key value sets one key of the JSON option --flag.")
    source: str


class ApiKeySupport(_Model):
    """How the runtime takes a serving API key: an environment variable (never the flag), or not at all."""

    env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    flag: str | None = Field(default=None, pattern=OPTION)
    unsupported: str | None = None
    source: str

    @model_validator(mode="after")
    def _env_or_why_not(self) -> "ApiKeySupport":
        if (self.env is None) == (self.unsupported is None):
            raise ValueError("apiKey needs exactly one of env and unsupported")
        return self


class MetricSeries(_Model):
    series: str = Field(min_length=1)
    default_target: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?$")
    """The per-replica target when neither spec.autoscaling.target nor the plan's operating point gives one."""
    source: str


class AutoscalingMetrics(_Model):
    """The Prometheus series an autoscaler reads per spec.autoscaling.metric, or why this version has none."""

    requests_waiting: MetricSeries | None = Field(default=None, alias="requests-waiting")
    running_requests: MetricSeries | None = Field(default=None, alias="running-requests")
    kv_cache_usage: MetricSeries | None = Field(default=None, alias="kv-cache-usage")
    unsupported: str | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _series_or_why_not(self) -> "AutoscalingMetrics":
        listed = [self.requests_waiting, self.running_requests, self.kv_cache_usage]
        if (self.unsupported is None) != all(series is not None for series in listed):
            raise ValueError("autoscalingMetrics needs all three series, or none and unsupported")
        return self

    def of(self, metric: str) -> MetricSeries | None:
        """The series of `metric` (an AutoscalingMetric value); None when this version exports none."""
        found: MetricSeries | None = getattr(self, metric.replace("-", "_"))
        return found

    def series(self, metric: str) -> str | None:
        found = self.of(metric)
        return found.series if found is not None else None


class RuntimeSpec(_Model):
    version: str
    image: str
    image_amd: str | None = None
    port: int = Field(gt=0, lt=65536)
    health_path: str
    metrics_path: str = Field(pattern=r"^/")
    flags: list[RuntimeFlag]
    flag_spelling: FlagSpelling
    plan_voiding_flags: dict[str, str] = Field(
        default_factory=dict,
        description="Options that change memory, parallelism or identity, so the plan no longer holds: why.",
    )
    api_key: ApiKeySupport
    autoscaling_metrics: AutoscalingMetrics

    @model_validator(mode="after")
    def _aliases_name_primary_flags(self) -> "RuntimeSpec":
        """canonical_flag follows one alias: each must name a listed flag that is not an alias itself."""
        primary = {flag.name for flag in self.flags if flag.alias_of is None}
        broken = [flag.name for flag in self.flags if flag.alias_of is not None and flag.alias_of not in primary]
        if broken:
            raise ValueError(f"aliasOf of {', '.join(broken)} must name a flag listed without aliasOf")
        secret = [] if self.api_key.flag is None else [self.api_key.flag]
        unknown = sorted({*self.plan_voiding_flags, *secret} - primary)
        if unknown:
            raise ValueError(f"planVoidingFlags and apiKey.flag ({', '.join(unknown)}) must name primary flags")
        return self

    @cached_property
    def _option_of(self) -> dict[str, str]:
        """Each option string the parser accepts, mapped to the primary name of the option it sets."""
        return {flag.name: flag.alias_of or flag.name for flag in self.flags}

    @property
    def flag_names(self) -> frozenset[str]:
        return frozenset(self._option_of)

    def canonical_flag(self, token: str) -> str | None:
        """The option a command-line token sets, by its primary name, as this runtime's parser reads it.

        `--x=value`, the parser's own respellings and aliases all name one option; None when the pinned
        version has no such flag.
        """
        name = token.split("=", 1)[0]
        if name.startswith("--") and self.flag_spelling.dotted_keys:
            name = name.split(".", 1)[0]
        if name.startswith("--") and self.flag_spelling.underscores_as_dashes:
            name = name.replace("_", "-")
        return self._option_of.get(name)

    def image_for(self, vendor: str) -> str:
        """The runtime's image for a GPU vendor; AMD pools need the ROCm build."""
        if vendor == "amd":
            if self.image_amd is None:
                raise CatalogError(f"runtime {self.version} has no AMD image")
            return self.image_amd
        return self.image


class _RuntimesFile(_Model):
    schema_version: int
    runtimes: dict[str, RuntimeSpec]


@cache
def runtime_catalog() -> dict[str, RuntimeSpec]:
    text = resources.files("modelplane.catalog").joinpath("data/runtimes.yaml").read_text()
    return _RuntimesFile.model_validate(yaml.safe_load(text)).runtimes


def runtime_spec(runtime: str) -> RuntimeSpec:
    try:
        return runtime_catalog()[runtime]
    except KeyError:
        raise CatalogError(f"runtimes.yaml has no runtime {runtime!r}") from None
