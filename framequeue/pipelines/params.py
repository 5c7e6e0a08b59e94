"""Checks shared by the pipelines' `validate`: each raises InvalidParams naming the field and what it takes.

`field` is the dotted path a user sees (`camera.hfov_deg`), so a nested mistake names where it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from framequeue.errors import InvalidParams
from framequeue.media.encode import DEFAULT_CRF, DEFAULT_PRESET, PRESETS
from framequeue.models.repository import ModelRepository
from framequeue.models.version import ModelVersion

#: largest frames per inference batch a job may ask for
MAX_BATCH_SIZE: Final = 32
#: the encoder and batching params every video pipeline takes, with their defaults
ENCODE_DEFAULTS: Final[dict[str, Any]] = {"batch_size": 4, "encode_preset": DEFAULT_PRESET, "crf": DEFAULT_CRF}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(value: Any, field: str, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """`value` as a float within [low, high] ((low, high] with `low_open`)."""
    ok = is_number(value) and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high != math.inf else "")
        raise InvalidParams(f"{field}: must be a number {bounds}, got {value!r}")
    return float(value)


def integer(value: Any, field: str, low: int, high: int) -> int:
    if not is_int(value) or not low <= value <= high:
        raise InvalidParams(f"{field}: must be an integer from {low} to {high}, got {value!r}")
    return int(value)


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(f"{field}: must be true or false, got {value!r}")
    return value


#: params any pipeline takes for a long video (framequeue.worker.split): `split` true splits it whatever its
#: length (false: never), `segment_s` the segments' length; None: the deployment's settings decide
SPLIT_DEFAULTS: Final[dict[str, Any]] = {"split": None, "segment_s": None}
#: the block a segment job's params carry (framequeue.jobs.segment_job); never a submit's
SEGMENT_PARAM: Final = "segment"
#: the shortest segment_s a job may ask for
MIN_SEGMENT_S: Final = 2.0


def check_split(params: Mapping[str, Any]) -> None:
    """`split` and `segment_s`, when a submit names them."""
    if params.get("split") is not None:
        boolean(params["split"], "split")
    if params.get("segment_s") is not None:
        number(params["segment_s"], "segment_s", low=MIN_SEGMENT_S)


def mapping(value: Any, field: str, known: Mapping[str, Any] | set[str]) -> dict[str, Any]:
    """`value` as a dict whose keys are all in `known`."""
    if not isinstance(value, Mapping):
        raise InvalidParams(f"{field}: must be an object, got {value!r}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise InvalidParams(f"{field}.{unknown[0]}: unknown parameter; known: {', '.join(sorted(known))}")
    return dict(value)


def check_unknown(params: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    """Every name in `params` is the pipeline's (`known`) or a long video's (SPLIT_DEFAULTS, checked here)."""
    unknown = sorted(set(params) - set(known) - set(SPLIT_DEFAULTS))
    if unknown:
        raise InvalidParams(f"{unknown[0]}: unknown parameter; known: {', '.join([*known, *SPLIT_DEFAULTS])}")
    check_split(params)


def model_version(
    models: ModelRepository, name: Any, version: Any, field: str, kind: str, formats_ok: set[str] | None = None
) -> ModelVersion:
    """The stored version `name`:`version` (the latest when None), of a format in `formats_ok` when given;
    `kind` says what the field wants ("a detection model") in the message."""
    if not isinstance(name, str):
        raise InvalidParams(f"{field}: must be a model name (string), got {name!r}")
    if version is not None and (not is_int(version) or version < 1):
        raise InvalidParams(f"{field}_version: must be an integer >= 1 or null, got {version!r}")
    model = models.get(name, version)
    if formats_ok is not None and model.format not in formats_ok:
        raise InvalidParams(
            f"{field}: {model.ref} is a {model.format!r} model; {field} takes {kind} "
            f"(formats {', '.join(sorted(formats_ok))})"
        )
    return model


def check_encode(p: dict[str, Any]) -> None:
    """batch_size, encode_preset and crf in place."""
    p["batch_size"] = integer(p["batch_size"], "batch_size", 1, MAX_BATCH_SIZE)
    if p["encode_preset"] not in PRESETS:
        raise InvalidParams(f"encode_preset: must be one of {', '.join(PRESETS)}, got {p['encode_preset']!r}")
    p["crf"] = integer(p["crf"], "crf", 0, 51)
