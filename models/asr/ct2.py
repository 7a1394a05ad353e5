"""A reader for CTranslate2's `model.bin`, so the factory needs no CTranslate2.

The layout (little-endian): u32 binary version, spec name, u32 spec revision, u32 variable count,
then per variable: name, u8 rank, rank x u32 dims, u8 dtype code, u32 byte count, raw row-major
data; then u32 alias count and (alias, target) name pairs. Strings are a u16 length that counts a
trailing NUL, then the bytes. Every field is checked as it is read: a truncated or corrupt file
raises a ModelError that names the file and the offset, never a numpy or struct traceback.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import ModelError

SUPPORTED_BINARY_VERSIONS = range(1, 7)
MAX_RANK = 4
MAX_VARIABLES = 100_000
MAX_NAME = 1024

DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    # bfloat16 has no numpy dtype; kept as raw u16 and widened by `as_float32`.
    5: np.dtype("<u2"),
}
BFLOAT16 = 5


@dataclass(frozen=True, slots=True)
class Ct2Model:
    path: Path
    spec: str
    revision: int
    binary_version: int
    variables: dict[str, np.ndarray]
    """Name → array; aliases are resolved (they point at the same array)."""
    bfloat16: frozenset[str]

    def get(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The variable as float32 (or its integer scalar), shape-checked against the spec."""
        if name not in self.variables:
            raise ModelError("model-corrupt", f"{self.path}: variable {name!r} is missing")
        value = self.variables[name]
        if shape is not None and value.shape != shape:
            raise ModelError("model-corrupt", f"{self.path}: {name} has shape {value.shape}, expected {shape}")
        if name in self.bfloat16:
            return (value.astype(np.uint32) << 16).view(np.float32)
        if value.dtype.kind == "f":
            return value.astype(np.float32)
        return value

    def scalar(self, name: str) -> int:
        value = self.get(name, ())
        if value.dtype.kind not in "iu":
            raise ModelError("model-corrupt", f"{self.path}: {name} should be an integer flag, not {value.dtype}")
        return int(value)


class _Cursor:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> ModelError:
        return ModelError("model-corrupt", f"{self.path}: {what} at byte {self.pos} (corrupt or truncated model file)")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"file ends inside {what} (needs {n} bytes, {len(self.data) - self.pos} left)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return int(self.take(1, what)[0])

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])

    def string(self, what: str) -> str:
        length = self.u16(f"{what} length")
        if not 1 <= length <= MAX_NAME:
            raise self.fail(f"{what} has implausible length {length}")
        raw = self.take(length, what)
        if raw[-1] != 0 or 0 in raw[:-1]:
            raise self.fail(f"{what} is not a NUL-terminated string")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None


def read_ct2(path: str | Path | Sequence[str | Path], *, expect_spec: str | None = None) -> Ct2Model:
    """Read and check a whole model.bin (weights are copied out of the file buffer).

    `path` may be the parts of one file, joined in order (a package index's size limit splits
    Whisper base in two); errors then name the parts joined by '+'.
    """
    parts = [Path(p) for p in path] if isinstance(path, Sequence) and not isinstance(path, str) else [Path(path)]
    if not parts:
        raise ModelError("model-missing", "no model.bin given")
    chunks = []
    for part in parts:
        try:
            chunks.append(part.read_bytes())
        except FileNotFoundError:
            raise ModelError("model-missing", f"{part} does not exist") from None
        except OSError as err:
            raise ModelError("model-missing", f"can't read {part}: {err.strerror}") from None
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    del chunks
    path = parts[0] if len(parts) == 1 else Path("+".join(str(p) for p in parts))
    cur = _Cursor(data, path)
    version = cur.u32("binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise cur.fail(f"unsupported CTranslate2 binary version {version}")
    spec = cur.string("spec name")
    if expect_spec is not None and spec != expect_spec:
        raise ModelError("model-corrupt", f"{path}: spec is {spec!r}, expected {expect_spec!r}")
    revision = cur.u32("spec revision")
    count = cur.u32("variable count")
    if count > MAX_VARIABLES:
        raise cur.fail(f"implausible variable count {count}")
    variables: dict[str, np.ndarray] = {}
    bf16: set[str] = set()
    for index in range(count):
        name = cur.string(f"name of variable {index}")
        if name in variables:
            raise cur.fail(f"variable {name!r} appears twice")
        rank = cur.u8(f"rank of {name}")
        if rank > MAX_RANK:
            raise cur.fail(f"{name} has rank {rank} (at most {MAX_RANK})")
        dims = tuple(cur.u32(f"dimension {d} of {name}") for d in range(rank))
        code = cur.u8(f"dtype of {name}")
        if code not in DTYPES:
            raise cur.fail(f"{name} has unknown dtype code {code}")
        dtype = DTYPES[code]
        nbytes = cur.u32(f"byte count of {name}")
        expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
        if nbytes != expected:
            raise cur.fail(f"{name} has {nbytes} bytes, but shape {list(dims)} of {dtype} needs {expected}")
        raw = cur.take(nbytes, f"data of {name}")
        variables[name] = np.frombuffer(raw, dtype=dtype).reshape(dims).copy()
        if code == BFLOAT16:
            bf16.add(name)
        if dtype.kind == "f" and not np.isfinite(variables[name]).all():
            raise ModelError("model-corrupt", f"{path}: {name} contains NaN or infinite values")
    if version >= 2:
        aliases = cur.u32("alias count")
        if aliases > count:
            raise cur.fail(f"implausible alias count {aliases}")
        for index in range(aliases):
            alias = cur.string(f"alias {index}")
            target = cur.string(f"target of alias {alias}")
            if target not in variables:
                raise cur.fail(f"alias {alias!r} points at unknown variable {target!r}")
            variables[alias] = variables[target]
            if target in bf16:
                bf16.add(alias)
    if cur.pos != len(data):
        raise cur.fail(f"{len(data) - cur.pos} unexpected bytes after the last field")
    return Ct2Model(path, spec, revision, version, variables, frozenset(bf16))
