"""The CTranslate2 reader: the real file reads as Whisper tiny; damaged files fail naming the file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from device.errors import ModelError
from models.asr.ct2 import read_ct2
from models.asr.graph import Dims, whisper_dims


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str] | None = None,
              spec: str = "WhisperSpec", version: int = 6) -> bytes:
    """A small model.bin in CTranslate2's layout (so each field can be damaged on purpose)."""
    codes = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("float16"): 4}
    out = struct.pack("<I", version) + _string(spec) + struct.pack("<II", 3, len(variables))
    for name, value in variables.items():
        data = np.ascontiguousarray(value).tobytes()
        out += _string(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<BI", codes[value.dtype], len(data)) + data
    out += struct.pack("<I", len(aliases or {}))
    for alias, target in (aliases or {}).items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)
    return out


SMALL = {
    "encoder/num_heads": np.array(6, np.int16),
    "decoder/embeddings/weight": np.arange(12, dtype=np.float16).reshape(4, 3),
    "encoder/conv1/bias": np.ones(5, np.float32),
}


def test_reads_the_packaged_whisper_tiny(ct2_dir: Path) -> None:
    model = read_ct2(ct2_dir / "model.bin", expect_spec="WhisperSpec")
    assert model.spec == "WhisperSpec" and model.binary_version == 6
    assert len(model.variables) == 149  # 148 variables + the tied output projection alias
    assert model.variables["decoder/projection/weight"] is model.variables["decoder/embeddings/weight"]
    qkv_bias = model.get("encoder/layer_0/self_attention/linear_0/bias", (1152,))
    # Whisper's key projection has no bias: the middle third of the fused q/k/v bias is zero.
    assert not qkv_bias[384:768].any() and qkv_bias[:384].any() and qkv_bias[768:].any()
    assert whisper_dims(model) == Dims(d_model=384, heads=6, encoder_layers=4, decoder_layers=4, ffn=1536, vocab=51864)


def test_small_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_ct2(path, SMALL, {"decoder/projection/weight": "decoder/embeddings/weight"})
    model = read_ct2(path)
    assert model.scalar("encoder/num_heads") == 6
    np.testing.assert_array_equal(model.get("decoder/embeddings/weight", (4, 3)), np.arange(12).reshape(4, 3))
    assert model.get("decoder/projection/weight").dtype == np.float32
    with pytest.raises(ModelError, match="shape"):
        model.get("encoder/conv1/bias", (4,))
    with pytest.raises(ModelError, match="missing"):
        model.get("encoder/conv2/bias")


def test_every_truncation_is_a_clear_error(tmp_path: Path) -> None:
    full = write_ct2(tmp_path / "full.bin", SMALL, {"decoder/projection/weight": "decoder/embeddings/weight"})
    path = tmp_path / "model.bin"
    for cut in range(len(full)):
        path.write_bytes(full[:cut])
        with pytest.raises(ModelError) as err:
            read_ct2(path)
        assert err.value.code == "model-corrupt" and str(path) in err.value.message, cut


def test_truncated_real_model_names_the_file(ct2_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    with (ct2_dir / "model.bin").open("rb") as src:
        path.write_bytes(src.read(3_000_000))
    with pytest.raises(ModelError, match="model.bin.*truncated") as err:
        read_ct2(path)
    assert str(path) in err.value.message


@pytest.mark.parametrize(
    ("offset_from", "patch", "message"),
    [
        ("version", struct.pack("<I", 99), "unsupported CTranslate2 binary version 99"),
        ("dtype", bytes([9]), "unknown dtype code 9"),
        ("nbytes", struct.pack("<I", 7), "needs 2"),
        ("end", b"\0\0", "unexpected bytes"),
    ],
)
def test_corrupt_fields(tmp_path: Path, offset_from: str, patch: bytes, message: str) -> None:
    full = write_ct2(tmp_path / "full.bin", {"encoder/num_heads": np.array(6, np.int16)})
    dtype_at = 4 + 2 + len("WhisperSpec") + 1 + 8 + 2 + len("encoder/num_heads") + 1 + 1
    at = {"version": 0, "dtype": dtype_at, "nbytes": dtype_at + 1, "end": len(full)}[offset_from]
    damaged = full[:at] + patch + full[at + len(patch):]
    path = tmp_path / "model.bin"
    path.write_bytes(damaged)
    with pytest.raises(ModelError, match=message) as err:
        read_ct2(path)
    assert str(path) in err.value.message


def test_wrong_spec_nan_weights_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_ct2(path, SMALL, spec="TransformerSpec")
    with pytest.raises(ModelError, match="TransformerSpec"):
        read_ct2(path, expect_spec="WhisperSpec")
    write_ct2(path, {"w": np.array([1.0, np.nan], np.float32)})
    with pytest.raises(ModelError, match="NaN"):
        read_ct2(path)
    write_ct2(path, SMALL, {"alias": "nowhere"})
    with pytest.raises(ModelError, match="unknown variable 'nowhere'"):
        read_ct2(path)
    with pytest.raises(ModelError) as err:
        read_ct2(tmp_path / "absent.bin")
    assert err.value.code == "model-missing"


def test_not_whisper_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_ct2(path, {**SMALL, "decoder/pre_norm": np.array(0, np.int8)})
    with pytest.raises(ModelError):
        whisper_dims(read_ct2(path))


def test_a_file_split_in_parts_reads_as_the_whole(tmp_path: Path) -> None:
    data = write_ct2(tmp_path / "model.bin", SMALL, {"decoder/projection/weight": "decoder/embeddings/weight"})
    cut = len(data) // 3  # inside a variable's data, as a size limit cuts it
    (tmp_path / "model.bin.part1").write_bytes(data[:cut])
    (tmp_path / "model.bin.part2").write_bytes(data[cut:])
    whole, joined = read_ct2(tmp_path / "model.bin"), read_ct2([tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"])
    assert whole.variables.keys() == joined.variables.keys()
    np.testing.assert_array_equal(joined.get("decoder/embeddings/weight"), whole.get("decoder/embeddings/weight"))
    with pytest.raises(ModelError) as err:  # the wrong order is a corrupt file, named by both parts
        read_ct2([tmp_path / "model.bin.part2", tmp_path / "model.bin.part1"])
    assert "model.bin.part2+" in err.value.message
    with pytest.raises(ModelError, match="does not exist"):
        read_ct2([tmp_path / "model.bin.part1", tmp_path / "model.bin.part3"])
