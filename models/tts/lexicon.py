"""hibari's G2P data (lexicons, tagger) in one SQLite file, read a word at a time.

The hibari package keeps its pronunciation lexicons and its part-of-speech tagger as gzipped
JSON; loaded as Python dicts they cost ~125 MB of RSS (tagger 54, gold lexicon 45, silver 25)
for a speaker that says a few hundred distinct words a day. The bundle therefore carries them
as `g2p.sqlite` (built once from the pinned package's files), and the G2P looks words up in it:
SQLite reads only the pages it needs through its own small page cache, so the resident cost is
a couple of MB and the lookups cost microseconds. Values are the package's own JSON values, so
the phonemes are identical to the package's (tests compare them).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

from device.errors import ModelError

FILE = "g2p.sqlite"
TABLES = {
    "gold": "lexicon_{acc}_gold.json.gz",
    "silver": "lexicon_{acc}_silver.json.gz",
}
PAGE_CACHE_KB = 1024
"""SQLite's page cache per connection: the words said most often stay decoded in memory."""


def _read_json(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def build_g2p_db(assets: Path, out: Path, *, british: bool = False) -> Path:
    """Write `out` from hibari's asset directory: lexicons, tagger tag dictionary, weights, vocabulary."""
    acc = "gb" if british else "us"
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        tagger = _read_json(assets / "tagger.json.gz")
        tables: dict[str, Any] = {name: _read_json(assets / f.format(acc=acc)) for name, f in TABLES.items()}
        tables |= {"tagdict": tagger["tagdict"], "weights": tagger["weights"]}
        for name, mapping in tables.items():
            db.execute(f"CREATE TABLE {name} (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID")
            db.executemany(f"INSERT INTO {name} VALUES (?, ?)", ((k, json.dumps(v)) for k, v in mapping.items()))
        db.execute("CREATE TABLE vocab (k TEXT PRIMARY KEY) WITHOUT ROWID")
        db.executemany("INSERT INTO vocab VALUES (?)", ((w,) for w in tagger.get("vocab", [])))
        db.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("tags", json.dumps(tagger["tags"])),
                                                          ("has_vocab", json.dumps("vocab" in tagger)),
                                                          ("british", json.dumps(british))])
        db.commit()
    finally:
        db.close()
    tmp.replace(out)
    return out


class Table:
    """A read-only mapping over one table: `get(key)` and `in`, the only operations the G2P uses."""

    def __init__(self, db: sqlite3.Connection, name: str, *, values: bool = True) -> None:
        self._db = db
        self._query = f"SELECT {'v' if values else '1'} FROM {name} WHERE k = ?"
        self._values = values

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute(self._query, (key,)).fetchone()
        if row is None:
            return default
        return json.loads(row[0]) if self._values else True

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._db.execute(self._query, (key,)).fetchone() is not None


def open_g2p(path: Path, oov: Any, *, british: bool = False) -> Any:
    """A hibari `G2P` whose lexicons and tagger are SQLite tables (same behaviour, a fraction of the RSS)."""
    try:
        from hibari.g2p import G2P, Lexicon, Tagger, Tokenizer, _load_json
    except ImportError:
        raise ModelError("model-runtime", "the hibari voice needs the hibari-tts package (its G2P)") from None
    try:
        # Read-only and shared-cache off: one connection per voice, used from the thread that speaks.
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KB}")
        meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
        tags, has_vocab = json.loads(meta["tags"]), json.loads(meta["has_vocab"])
        built_british = json.loads(meta["british"])
    except (sqlite3.Error, KeyError, ValueError) as err:
        raise ModelError("model-corrupt", f"{path}: not a G2P database ({err})") from None
    if built_british != british:
        raise ModelError("model-corrupt", f"{path} holds the {'British' if built_british else 'American'} lexicon")
    # The package's G2P.__init__ would load the JSON; build the same object around the tables
    # (attributes of the pinned hibari-tts version, checked by tests against the package's G2P).
    g2p = G2P.__new__(G2P)
    g2p.lexicon = Lexicon(Table(db, "gold"), Table(db, "silver"), british)
    g2p.tokenizer = Tokenizer(_load_json("tokenizer_exceptions.json"))
    g2p.tagger = Tagger({"tagdict": Table(db, "tagdict"), "tags": tags, "weights": Table(db, "weights")})
    g2p.tagger.vocab = Table(db, "vocab", values=False) if has_vocab else None
    g2p._oov = oov
    g2p.unk = ""
    g2p.british = british
    return g2p
