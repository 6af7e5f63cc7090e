"""How weights reach a server, as sourced data (catalog/data/weights.yaml)."""

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WeightsConstants(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    schema_version: int
    network_bytes_per_second: int = Field(gt=0)
    cache_bytes_per_second: int = Field(gt=0)
    startup_base_seconds: int = Field(ge=0)
    download_deadline_factor: int = Field(ge=1)
    download_base_seconds: int = Field(ge=0)
    cache_margin_percent: int = Field(ge=0, le=1000)
    s3_image: str = Field(pattern=r"^[!-~]+$")
    sources: dict[str, str]


@cache
def weights_constants() -> WeightsConstants:
    text = resources.files("modelplane.catalog").joinpath("data/weights.yaml").read_text()
    return WeightsConstants.model_validate(yaml.safe_load(text))
