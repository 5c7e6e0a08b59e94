"""A job's input as a local file, fetched at most once per claim.

The store's own file when the store is a local directory and the reader may read it in place (no copy);
else one copy in the claim's scratch folder (`input<suffix>`, written under a temporary name, so a file of
that name is always whole). The split phase, which scans every long-enough candidate's input, and the
attempt that runs the job whole after it share that copy: a video too short to split is fetched once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from framequeue.errors import NotFound
from framequeue.jobs import Job
from framequeue.runtime import Runtime
from framequeue.storage.base import ObjectStore
from framequeue.storage.local import LocalObjectStore

#: 256 KiB: large enough to stream fast, and clear of 1 MiB-aligned writes, which some kernels handle slowly
COPY_CHUNK_BYTES = 256 * 1024


def scratch_copy(job: Job, scratch: Path) -> Path:
    """Where the claim's copy of the input goes (its suffix kept: some demuxers go by it)."""
    name = job.input_key.rsplit("/", 1)[-1]
    suffix = Path(job.input_key).suffix[:10] if "." in name else ""
    return scratch / f"input{suffix}"


def fetch_input(rt: Runtime, job: Job, scratch: Path, *, in_place: bool) -> Path:
    """The job's input as a local file (see the module); NotFound when the object is not there."""
    if "://" in job.input_key:  # a location (an async endpoint's InputLocation)
        objects, key = rt.service.locations.resolve(job.input_key)
    else:
        objects, key = rt.objects, job.input_key
    return local_file(objects, key, scratch_copy(job, scratch), in_place=in_place)


def local_file(objects: ObjectStore, key: str, copy: Path, *, in_place: bool) -> Path:
    """The object as a local file: its own file in a local store when in_place, else `copy`, written unless a
    whole one is there already; NotFound when the object is not there."""
    if in_place and isinstance(objects, LocalObjectStore):
        own = objects.path(key)
        if not own.is_file():
            raise NotFound(f"no object {key}")
        return own
    if copy.is_file():  # fetched earlier in this claim
        return copy
    part = copy.with_name(f"{copy.name}.part")
    with objects.open_read(key) as src, open(part, "wb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)
    part.replace(copy)
    return copy
