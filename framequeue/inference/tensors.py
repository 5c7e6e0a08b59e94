"""OIP v2 tensor datatypes and contents <-> numpy arrays (JSON `data`, raw little-endian bytes)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from framequeue.errors import InvalidRequest

__all__ = ["DTYPES", "datatype_of", "from_json_data", "from_raw", "to_json_data", "to_raw"]

#: OIP datatype name -> numpy dtype (little-endian, as the binary extension and raw contents carry them)
DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_BY_DTYPE: Final = {dtype: name for name, dtype in DTYPES.items()}
#: ONNX type strings (as onnxruntime and the metadata reader name them) -> OIP datatype
ONNX_TYPES: Final = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
}


def dtype_of(datatype: str, name: str) -> np.dtype[Any]:
    try:
        return DTYPES[datatype]
    except KeyError:
        raise InvalidRequest(
            f"input {name!r}: datatype {datatype!r} is not supported; use one of {', '.join(DTYPES)}"
        ) from None


def datatype_of(array: npt.NDArray[Any]) -> str:
    try:
        return _BY_DTYPE[array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype]
    except KeyError:
        raise InvalidRequest(f"dtype {array.dtype} has no OIP datatype") from None


def _check_shape(shape: Any, name: str) -> tuple[int, ...]:
    if not isinstance(shape, list | tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidRequest(f"input {name!r}: shape {shape!r} must be a list of non-negative integers")
    return tuple(int(d) for d in shape)


def from_raw(raw: bytes | memoryview, datatype: str, shape: Any, name: str) -> npt.NDArray[Any]:
    """An array over raw little-endian bytes (copied, so the request buffer can be freed)."""
    dtype, dims = dtype_of(datatype, name), _check_shape(shape, name)
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidRequest(
            f"input {name!r}: {len(raw)} bytes of data for shape {list(dims)} {datatype} ({expected} expected)"
        )
    return np.frombuffer(raw, dtype).reshape(dims).copy()


def from_json_data(data: Any, datatype: str, shape: Any, name: str) -> npt.NDArray[Any]:
    """An array from a JSON `data` list (flat or nested, row-major)."""
    dtype, dims = dtype_of(datatype, name), _check_shape(shape, name)
    try:
        array = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"input {name!r}: data is not a list of {datatype} values ({exc})") from None
    if array.size != int(np.prod(dims, dtype=np.int64)):
        raise InvalidRequest(f"input {name!r}: {array.size} values for shape {list(dims)}")
    return array.reshape(dims)


def to_raw(array: npt.NDArray[Any]) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def to_json_data(array: npt.NDArray[Any]) -> list[Any]:
    flat: list[Any] = array.reshape(-1).tolist()
    return flat
