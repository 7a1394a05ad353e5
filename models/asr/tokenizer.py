"""Whisper's byte-level BPE (GPT-2's), held in a few numpy arrays instead of Python dicts.

Decoding maps ids to byte strings and joins them as UTF-8. Encoding, for teacher-forcing a known
sentence (tests, tools), splits text GPT-2's way (contractions, letter runs, digit runs, other
symbols, each with its leading space) and applies the merges in rank order.

The factory turns `vocabulary.txt` and `tokenizer.json` into `tokenizer.npz`: token bytes in one
blob with offsets, and sorted 64-bit hashes of the tokens and merge pairs. Python dicts of 50,000
strings each cost ~18 MB of resident memory; these arrays cost under 2 MB, and a lookup is a
binary search. The build checks that no two entries share a hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.errors import ModelError

SOT = "<|startoftranscript|>"
EOT = "<|endoftext|>"
NO_TIMESTAMPS = "<|notimestamps|>"
NO_SPEECH = "<|nocaptions|>"
ARRAYS = ("blob", "offsets", "token_keys", "token_ids", "merge_keys", "merge_ranks")

# GPT-2's pre-tokenizer with \p{L} / \p{N} spelled for Python's re ([^\W\d_] is "a letter").
_SPLIT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|_+|\s+(?!\S)|\s+""", re.UNICODE)


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (so BPE never sees control bytes)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


BYTE_CHAR = _byte_alphabet()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _lookup(keys: np.ndarray, values: np.ndarray, text: str) -> int | None:
    k = np.uint64(key(text))
    i = int(np.searchsorted(keys, k))
    return int(values[i]) if i < len(keys) and keys[i] == k else None


@dataclass(frozen=True)
class Tokenizer:
    blob: np.ndarray
    """uint8: every token's bytes, concatenated in id order."""
    offsets: np.ndarray
    """int64 [V + 1]: token i is blob[offsets[i]:offsets[i + 1]]."""
    token_keys: np.ndarray
    """uint64, sorted: hashes of the text tokens as BPE spells them (byte alphabet)."""
    token_ids: np.ndarray
    merge_keys: np.ndarray
    """uint64, sorted: hashes of 'left right' merge pairs."""
    merge_ranks: np.ndarray
    special: dict[str, int]
    cache: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, vocabulary: Path, tokenizer_json: Path) -> Tokenizer:
        """From CTranslate2's vocabulary.txt (one token per line, in id order) and the merges of
        the Hugging Face tokenizer.json (build time)."""
        try:
            tokens = vocabulary.read_text(encoding="utf-8").split("\n")
            merges = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["merges"]
            pairs = [m if isinstance(m, str) else " ".join(m) for m in merges]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError("model-corrupt", f"can't read the tokenizer from {vocabulary} / {tokenizer_json}: {err}") from None
        if tokens and tokens[-1] == "":
            tokens.pop()
        raw = [t.encode() if _is_special(t) else bytes(CHAR_BYTE[c] for c in t) for t in tokens]
        text_ids = [i for i, t in enumerate(tokens) if not _is_special(t)]
        arrays: dict[str, np.ndarray] = {
            "blob": np.frombuffer(b"".join(raw), dtype=np.uint8),
            "offsets": np.cumsum([0, *map(len, raw)]).astype(np.int64),
        }
        for name, texts, values in (("token", [tokens[i] for i in text_ids], text_ids), ("merge", pairs, range(len(pairs)))):
            keys = np.array([key(t) for t in texts], dtype=np.uint64)
            order = np.argsort(keys)
            if len(np.unique(keys)) != len(keys):
                raise ModelError("model-build", f"two tokenizer {name}s share a 64-bit hash; change the key function")
            arrays[f"{name}_keys"] = keys[order]
            arrays["token_ids" if name == "token" else "merge_ranks"] = np.asarray(list(values), dtype=np.int32)[order]
        return cls.from_arrays(arrays, str(vocabulary))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str) -> Tokenizer:
        blob, offsets = arrays["blob"], arrays["offsets"]
        if offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != len(blob) or (np.diff(offsets) < 0).any():
            raise ModelError("model-corrupt", f"{source}: token offsets don't fit the token bytes")
        starts, lengths = offsets[:-1], np.diff(offsets)
        long_enough = np.flatnonzero(lengths > 4)
        marked = long_enough[(blob[starts[long_enough]] == ord("<")) & (blob[starts[long_enough] + 1] == ord("|"))]
        special = {}
        for i in marked.tolist():
            name = blob[offsets[i] : offsets[i + 1]].tobytes().decode("utf-8", errors="replace")
            if name.endswith("|>"):
                special[name] = i
        for name in (SOT, EOT, NO_TIMESTAMPS):
            if name not in special:
                raise ModelError("model-corrupt", f"{source} lacks the special token {name}")
        for a, b in (("token_keys", "token_ids"), ("merge_keys", "merge_ranks")):
            if arrays[a].shape != arrays[b].shape or arrays[a].dtype != np.uint64:
                raise ModelError("model-corrupt", f"{source}: {a} and {b} don't match")
        return cls(blob, offsets, arrays["token_keys"], arrays["token_ids"], arrays["merge_keys"], arrays["merge_ranks"], special)

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in ARRAYS}
        except FileNotFoundError:
            raise ModelError("model-missing-file", f"tokenizer {path} is missing") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ModelError("model-corrupt", f"tokenizer {path} is unreadable: {err}") from None
        return cls.from_arrays(arrays, str(path))

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(fh, **{name: getattr(self, name) for name in ARRAYS})

    @property
    def vocab_size(self) -> int:
        return len(self.offsets) - 1

    @property
    def sot(self) -> int:
        return self.special[SOT]

    @property
    def eot(self) -> int:
        return self.special[EOT]

    @property
    def no_timestamps(self) -> int:
        return self.special[NO_TIMESTAMPS]

    @property
    def no_speech(self) -> int | None:
        return self.special.get(NO_SPEECH)

    @property
    def first_special(self) -> int:
        """Ids from here up are control tokens, never text."""
        return min(self.special.values())

    def token_id(self, text: str) -> int | None:
        """The id of a text token written in plain characters (".", " the"), if it is one token."""
        spelled = "".join(BYTE_CHAR[b] for b in text.encode("utf-8"))
        return _lookup(self.token_keys, self.token_ids, spelled)

    def decode(self, ids: Iterable[int]) -> str:
        first_special = self.first_special
        parts = [
            self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes()
            for i in ids
            if 0 <= i < first_special
        ]
        return b"".join(parts).decode("utf-8", errors="replace")

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in _SPLIT.findall(text):
            cached = self.cache.get(piece)
            if cached is None:
                cached = self.cache[piece] = self._encode_piece(piece, text)
            ids.extend(cached)
        return ids

    def _encode_piece(self, piece: str, text: str) -> tuple[int, ...]:
        ids = []
        for part in self._merge("".join(BYTE_CHAR[b] for b in piece.encode("utf-8"))):
            index = _lookup(self.token_keys, self.token_ids, part)
            if index is None:
                raise ModelError("asr-tokenize", f"no token for {part!r} in {text!r}")
            ids.append(index)
        return tuple(ids)

    def _merge(self, word: str) -> list[str]:
        """Apply the lowest-ranked merge present, again and again, until none applies."""
        parts = list(word)
        none = 1 << 30
        while len(parts) > 1:
            ranks = [_lookup(self.merge_keys, self.merge_ranks, f"{a} {b}") for a, b in zip(parts, parts[1:], strict=False)]
            rank, best = min((none if r is None else r, i) for i, r in enumerate(ranks))
            if rank == none:
                break
            left, right = parts[best], parts[best + 1]
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == left and parts[i + 1] == right:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts


def _is_special(token: str) -> bool:
    return token.startswith("<|") and token.endswith("|>")
