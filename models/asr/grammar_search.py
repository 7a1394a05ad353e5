"""Constrained decoding during search: beam search over Whisper's tokens, kept inside a word graph.

The graph (any `WordGraph`; voxhome's is built from the home's hassil templates in
`device.intent.grammar_graph`) says which word fragments may come next; this module matches
tokens to them character by character, so the grammar never has to be tokenized and any way
Whisper splits a word ("Thermostat" or " Ther" "mostat") is followed:

- lowercase; a token's leading space starts a new word, a token without one continues the word;
- punctuation tokens (, . ? ! ; :) are allowed only at a word boundary and ignored, except that
  '.' inside a number ('21.5') is part of the word; after punctuation the next word needs its
  space (a reader drops the comma of 'room,spotlights' and sees one word); '%' is the word "percent";
- end-of-text only where the graph can end.

Speed: the 51,864-token vocabulary is never scanned per step. Once per graph the tokens that can
occur at all (their text is a prefix or substring of a grammar word, or punctuation) go into a
character trie; the tokens allowed after a hypothesis's grammar position (the set of graph states
plus the partly spelled fragment) come from one walk of that trie and are cached per position, so
the common openings ("turn on the") are computed once for the life of the graph. States reached
by the same fragment in different templates share its unread rest, so they move as one group.
The allowed set is a superset in one way: a token that runs on past the end of a fragment
(" the" → " theory") is checked only if the search picks it. The beam is decoded in one batched
decoder call per step, with the cache rows of the surviving parents gathered as `constrained.py`
does. As in Whisper's own beam search, ended hypotheses are ranked by their mean log-probability
per token and the search stops when `beam` of them have ended.

Scores are full-softmax log-probabilities with the same suppressed tokens as free greedy decoding
(`WhisperOnnx.token_logits`), so a constrained result is directly comparable with the free
transcript of the same audio: a sentence the grammar forces onto audio that says something else
costs clearly more per token (the basis for rejecting out-of-grammar speech).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from models.asr.runner import EncoderOutput, WhisperOnnx
    from models.asr.stop import Stop
    from models.asr.tokenizer import Tokenizer

_LOGGER = logging.getLogger(__name__)

BEAM = 4
PRUNE = 4.0
"""Hypotheses more than this many nats behind the best are dropped (the beam narrows when sure).
On the bench's 30 tuning-voice commands 4 and 8 got the same sentences right; 8 cost 25 % more
time. A beam of 2 is ~25 % faster in noise (pink 10 dB) and gets a few commands fewer right."""
PUNCTUATION = frozenset(".,?!;:")
MAX_SUBSTRING = 16
CACHE_SIZE = 512
"""Grammar positions remembered (allowed tokens, word-boundary moves); the least recently used go first. The
openings every command shares stay hot; a position inside one name is rarely seen twice. Bounds
the caches to a few MB however long the speaker runs."""
START, JOIN, SPACED, SOFT, MARKS = 0, 1, 2, 3, 4
"""Cursor modes: nothing read yet; right after a fragment; after a space; after a punctuation
token; inside one ("?!"). Punctuation can't follow a punctuation token: "..." again and again
would otherwise be an endless way not to say anything."""

_SPACINGS: dict[int, tuple[bool, ...]] = {START: (False, True), JOIN: (False,), SPACED: (True,), SOFT: (), MARKS: ()}
"""Per cursor mode, the arcs (by `spaced`) a fragment may start on without another character first."""

Position = frozenset[tuple[tuple[str, int], frozenset[Hashable]]]
"""Where a hypothesis is in the grammar: groups of graph states by (rest of the fragment being
spelled, mode). States reached by the same fragment in different templates share its rest, so
they move as one group until the fragment ends."""
Moves = dict[str, dict[tuple[str, int], frozenset[Hashable]]]
"""Next character → the groups it leads to."""
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")


class WordGraph(Protocol):
    """What the search needs of a grammar: a network of word fragments."""

    def starts(self) -> Sequence[Hashable]:
        """The states a sentence starts in."""

    def arcs(self, state: Any) -> Sequence[tuple[str, bool, Hashable]]:
        """The fragments that can follow `state`: (text, preceded by a word boundary, next state)."""

    def is_final(self, state: Any) -> bool:
        """Whether a sentence can end in `state`."""

    def vocabulary(self) -> Collection[str]:
        """Every whole word the graph can produce (for choosing the tokens that can occur)."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    text: str
    """As Whisper writes it (" Turn on the kitchen light.")."""
    tokens: tuple[int, ...]
    logprob: float
    """Sum of the log-probabilities of the tokens and the end-of-text."""
    token_logprobs: tuple[float, ...]

    @property
    def scored(self) -> int:
        """Tokens scored: the text's plus the end-of-text (as free decoding counts them)."""
        return len(self.token_logprobs)

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, self.scored)


@dataclass(frozen=True, slots=True)
class _Allowed:
    ids: np.ndarray
    end: bool


@dataclass(frozen=True, slots=True)
class _Index:
    first: dict[tuple[str, bool], tuple[tuple[Hashable, str], ...]]
    """(first character, spaced) → (next state, rest of the fragment)."""
    percent: frozenset[Hashable]
    boundary: bool
    """A new word (or the end) can come next: punctuation is allowed here."""
    final: bool


@dataclass(slots=True)
class _Beam:
    position: Position
    tokens: tuple[int, ...]
    score: float
    logprobs: tuple[float, ...]
    spelled: str
    """The tokens' text, lowercased: two beams spelling the same at the same position are one."""


class _Trie:
    __slots__ = ("_below", "children", "ids")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.ids: list[int] = []
        self._below: list[int] | None = None

    def below(self) -> list[int]:
        """The tokens of every node under this one (not its own)."""
        if self._below is None:
            self._below = [t for child in self.children.values() for t in (*child.ids, *child.below())]
        return self._below


class DecoderSteps(Protocol):
    """A decoder's scores, step by step: what the search needs of a model."""

    def start(self) -> np.ndarray:
        """Logits (1 × vocabulary) of the first token."""

    def next(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Logits (one row per hypothesis) after each surviving hypothesis, continued from row
        `parents[i]` of the previous step, read `tokens[i]`."""


class _WhisperSteps:
    """Whisper's decoder on one encoding: one batched call per step, the cache rows of the
    surviving parents gathered as `constrained.py` does."""

    def __init__(self, runner: WhisperOnnx, cross: EncoderOutput, stop: Stop | None = None) -> None:
        self.runner = runner
        self.cross = cross
        self.stop = stop
        self.cache: dict[str, np.ndarray] = {}

    def start(self) -> np.ndarray:
        runner = self.runner
        hidden, self.cache = runner.decode(np.array([runner.prompt], np.int64), runner.empty_cache(1), self.cross, self.stop)
        return runner.token_logits(hidden[:, -1], first=True)

    def next(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        cache = {name: value[parents] for name, value in self.cache.items()}
        hidden, self.cache = self.runner.decode(tokens[:, None], cache, self.cross, self.stop)
        return self.runner.token_logits(hidden[:, -1], first=False)


def token_texts(tokenizer: Tokenizer) -> list[str | None]:
    """Every text token's characters, lowercased (None for control tokens and broken UTF-8)."""
    out: list[str | None] = []
    blob, offsets = tokenizer.blob, tokenizer.offsets
    for i in range(tokenizer.first_special):
        try:
            out.append(blob[offsets[i] : offsets[i + 1]].tobytes().decode("utf-8").lower())
        except UnicodeDecodeError:
            out.append(None)  # a piece of a multi-byte character: names with them need whole-char tokens
    return out


class GrammarSearch:
    """Beam search of one runner restricted to one graph; build once per graph, search per utterance."""

    def __init__(self, runner: WhisperOnnx, graph: WordGraph, *, beam: int = BEAM, prune: float = PRUNE,
                 texts: list[str | None] | None = None) -> None:
        self.runner = runner
        self.graph = graph
        self.beam = beam
        self.prune = prune
        self.eot = runner.tokenizer.eot
        self._root, self._texts = _build_trie(graph.vocabulary(), texts if texts is not None else token_texts(runner.tokenizer))
        self._indexes: dict[Hashable, _Index] = {}
        self._allowed_cache: dict[Position, _Allowed] = {}
        self._boundaries: dict[tuple[frozenset[Hashable], int], Moves] = {}
        self.start: Position = frozenset({(("", START), frozenset(graph.starts()))})

    @property
    def token_count(self) -> int:
        """How many of the vocabulary's tokens can occur in this grammar at all."""
        return len(self._texts)

    # -- search -------------------------------------------------------------------------------

    def search(self, cross: EncoderOutput, *, n_best: int = 3, max_tokens: int | None = None,
               stop: Stop | None = None) -> list[Hypothesis]:
        """The best finished hypotheses by mean log-probability per token, best first (empty if the
        grammar can't fit the audio at all); `stop` gives it up (`Stopped`)."""
        runner = self.runner
        if max_tokens is None:
            # As free decoding: 12 tokens a second of speech (the encoder saw it plus the runner's
            # silence pad, at 50 frames a second), plus a few.
            frames = max(v.shape[-1] for k, v in cross.feeds.items() if k.startswith("cross_k"))
            seconds = max(0.0, frames / 50 - runner.pad_samples / 16000)
            max_tokens = min(224, int(12 * seconds) + 8)
        return self.run(_WhisperSteps(runner, cross, stop), n_best=n_best, max_tokens=max_tokens)

    def run(self, steps: DecoderSteps, *, n_best: int = 3, max_tokens: int = 224) -> list[Hypothesis]:
        """The search itself over any decoder's scores (`search` runs it on Whisper's)."""
        logits = steps.start()
        beams = [_Beam(self.start, (), 0.0, (), "")]
        finished: dict[str, Hypothesis] = {}
        ends = taken = 0
        for _ in range(max_tokens):
            taken += 1
            top = logits.max(axis=1, keepdims=True)
            shifted = logits - top
            np.exp(shifted, out=shifted)
            lse = top[:, 0] + np.log(shifted.sum(axis=1))
            candidates = [c for b, beam in enumerate(beams) for c in self._candidates(b, beam, logits[b] - lse[b])]
            candidates.sort(key=lambda c: -c[0])
            alive: list[_Beam] = []
            parents: list[int] = []
            seen: set[tuple[Position, str]] = set()
            best = candidates[0][0] if candidates else 0.0
            for score, b, token, lp, position in candidates:
                if len(alive) >= self.beam or score < best - self.prune:
                    break
                parent = beams[b]
                if token == self.eot:
                    ends += 1
                    text = self.runner.tokenizer.decode(parent.tokens)
                    key = _words(text)  # 'Turn on the light.' and 'turn on the light' are one answer
                    done = Hypothesis(text, parent.tokens, score, (*parent.logprobs, lp))
                    if key not in finished or done.mean_logprob > finished[key].mean_logprob:
                        finished[key] = done
                    continue
                spelled = parent.spelled + self._texts[token]
                if (position, spelled) in seen:
                    continue  # 'Kitchen' and 'kitchen': the better-scored spelling stands for both
                seen.add((position, spelled))
                alive.append(_Beam(position, (*parent.tokens, token), score, (*parent.logprobs, lp), spelled))
                parents.append(b)
            # As Whisper's own beam search: done when `beam` hypotheses have ended (ranked by
            # their mean, a sum would favour stopping early: "set the playroom red").
            if not alive or ends >= self.beam:
                break
            logits = steps.next(np.array(parents, dtype=np.int64), np.array([a.tokens[-1] for a in alive], dtype=np.int64))
            beams = alive
        ranked = sorted(finished.values(), key=lambda h: -h.mean_logprob)
        _LOGGER.debug("grammar search: %d steps, %d sentences ended", taken, len(ranked))  # never the words (privacy)
        return ranked[:n_best]

    def _candidates(self, b: int, beam: _Beam, logprobs: np.ndarray) -> list[tuple[float, int, int, float, Position]]:
        """The end (if allowed) and the `beam` best tokens that fit, as (score, beam, token, log-prob, position)."""
        allowed = self.allowed(beam.position)
        out = []
        if allowed.end:
            lp = float(logprobs[self.eot])
            out.append((beam.score + lp, b, self.eot, lp, beam.position))
        lps = logprobs[allowed.ids]
        k = min(len(lps), 3 * self.beam)
        order = np.argpartition(-lps, k - 1)[:k] if k else lps.argsort()
        order = order[np.argsort(-lps[order])]
        valid = tried = 0
        while valid < self.beam and tried < len(lps):
            if tried == len(order):  # none of the best few fit: the rest, in order
                order = np.argsort(-lps)
            i = int(order[tried])
            tried += 1
            token = int(allowed.ids[i])
            position = self.advance(beam.position, self._texts[token])
            if position:  # the allowed set is a superset (see `allowed`)
                out.append((beam.score + float(lps[i]), b, token, float(lps[i]), position))
                valid += 1
        return out

    # -- which tokens may come next -----------------------------------------------------------

    def allowed(self, position: Position) -> _Allowed:
        """The tokens allowed at this grammar position, from one walk of the token trie (cached).

        A superset: a token that runs on past the end of a fragment is included unchecked, and
        `advance` (empty if it doesn't fit) decides when the search picks it.
        """
        cached = self._allowed_cache.pop(position, None)
        if cached is not None:
            self._allowed_cache[position] = cached  # least recently used goes first
            return cached
        ids: list[int] = []
        todo: list[tuple[_Trie, Iterable[tuple[tuple[str, int], frozenset[Hashable]]]]] = [(self._root, position)]
        while todo:
            node, at = todo.pop()
            if node is not self._root and any(not rest and mode == JOIN for (rest, mode), _ in at):
                # A fragment ended inside the token (" the" of " theory"): what may follow it is
                # checked only if the search picks such a token, not for every token here.
                ids += node.below()
                continue
            children = node.children
            for ch, after in self._moves(at).items():
                child = children.get(ch)
                if child is None:
                    continue
                ids += child.ids
                if child.children:
                    todo.append((child, after.items()))
        end = any(not rest and mode in (JOIN, SOFT) and any(self._index(s).final for s in states)
                  for (rest, mode), states in position)
        result = _Allowed(np.array(ids, dtype=np.int32), end)
        if len(self._allowed_cache) >= CACHE_SIZE:
            del self._allowed_cache[next(iter(self._allowed_cache))]
        self._allowed_cache[position] = result
        return result

    def advance(self, position: Position, text: str) -> Position:
        """The position after reading `text` (a token's lowercased characters)."""
        at: Iterable[tuple[tuple[str, int], frozenset[Hashable]]] = position
        for ch in text:
            at = self._step(at, ch).items()
        groups: dict[tuple[str, int], frozenset[Hashable]] = {}
        for (rest, mode), states in at:
            _merge(groups, (rest, SOFT if mode == MARKS else mode), states)
        return frozenset(groups.items())

    def _step(self, groups: Iterable[tuple[tuple[str, int], frozenset[Hashable]]], ch: str) -> dict[tuple[str, int], frozenset[Hashable]]:
        return self._moves(groups).get(ch, {})

    def _moves(self, groups: Iterable[tuple[tuple[str, int], frozenset[Hashable]]]) -> Moves:
        """Every character that can come next, with the groups it leads to.

        Cursors that share the rest of a fragment move as one group; at a word boundary the
        group's continuations come precomputed (`_boundary`).
        """
        items = list(groups)
        if len(items) == 1 and not items[0][0][0]:
            (_rest, mode), states = items[0]
            return self._boundary(states, mode)  # shared, never modified
        moves: Moves = {}
        for (rest, mode), states in items:
            if rest:
                _merge(moves.setdefault(rest[0], {}), (rest[1:], JOIN), states)
                continue
            for ch, by_rest in self._boundary(states, mode).items():
                target = moves.get(ch)
                if target is None:
                    moves[ch] = dict(by_rest)
                else:
                    for key, found in by_rest.items():
                        _merge(target, key, found)
        return moves

    def _boundary(self, states: frozenset[Hashable], mode: int) -> Moves:
        """What can come at a word boundary from any of `states`, by next character (cached)."""
        cached = self._boundaries.pop((states, mode), None)
        if cached is not None:
            self._boundaries[(states, mode)] = cached
            return cached
        # Which arcs a new fragment may take: right after a fragment only one the graph joins on
        # (' light' 's'); after a space only a new word; after punctuation nothing but a space
        # or the end. Without that, 'room' ',' 'spotlights' read as the graph's 'room spotlights',
        # yet it is the word 'roomspotlights' once the comma is dropped (as every reader of the
        # text does), a word the graph doesn't have.
        spacings = _SPACINGS[mode]
        grown: dict[str, dict[tuple[str, int], set[Hashable]]] = {}
        percent: set[Hashable] = set()
        punctuation = set()
        for state in states:
            index = self._index(state)
            if index.boundary or index.final:
                punctuation.add(state)
            percent |= index.percent
            for (ch, spaced), arcs in index.first.items():
                if spaced in spacings:
                    by_rest = grown.setdefault(ch, {})
                    for nxt, tail in arcs:
                        by_rest.setdefault((tail, JOIN), set()).add(nxt)
        moves: Moves = {ch: {k: frozenset(v) for k, v in g.items()} for ch, g in grown.items()}
        if mode == START:
            moves[" "] = {("", START): states}
        elif mode != SPACED:
            moves[" "] = {("", SPACED): states}
            if punctuation and mode in (JOIN, MARKS):
                for mark in PUNCTUATION:
                    moves[mark] = {("", MARKS): frozenset(punctuation)}
        if mode in (JOIN, SPACED) and percent:
            moves["%"] = {("", JOIN): frozenset(percent)}
        if len(self._boundaries) >= CACHE_SIZE:
            del self._boundaries[next(iter(self._boundaries))]
        self._boundaries[(states, mode)] = moves
        return moves

    def _index(self, state: Hashable) -> _Index:
        index = self._indexes.get(state)
        if index is not None:
            return index
        first: dict[tuple[str, bool], list[tuple[Hashable, str]]] = {}
        percent = set()
        boundary = False
        for frag, spaced, nxt in self.graph.arcs(state):
            first.setdefault((frag[0], spaced), []).append((nxt, frag[1:]))
            boundary |= spaced
            if spaced and frag == "percent":
                percent.add(nxt)
        index = _Index({k: tuple(v) for k, v in first.items()}, frozenset(percent), boundary, self.graph.is_final(state))
        if len(self._indexes) >= 8 * CACHE_SIZE:
            self._indexes.clear()
        self._indexes[state] = index
        return index


def _merge(out: dict[tuple[str, int], frozenset[Hashable]], key: tuple[str, int], states: frozenset[Hashable]) -> None:
    have = out.get(key)
    out[key] = states if have is None else have | states


def _words(text: str) -> str:
    """A hypothesis's words, for telling n-best answers apart (case and punctuation aside)."""
    text = _DECIMAL.sub("\0", text.lower().replace("%", " percent"))
    return " ".join("".join(c for c in text if c.isalnum() or c in "' \0").replace("\0", ".").split())


def _build_trie(words: Collection[str], texts: list[str | None]) -> tuple[_Trie, dict[int, str]]:
    """A character trie of the tokens whose text can occur in the grammar's words at all."""
    prefixes: set[str] = set()
    inner: set[str] = set()
    for word in words:
        for i in range(len(word)):
            for j in range(i + 1, min(len(word), i + MAX_SUBSTRING) + 1):
                (prefixes if i == 0 else inner).add(word[i:j])
    inner |= prefixes
    marks = PUNCTUATION | {"%"}
    root = _Trie()
    kept: dict[int, str] = {}
    for token, text in enumerate(texts):
        if not text:
            continue
        lead = text.startswith(" ")
        core = text[1:] if lead else text
        if not core or any(c.isspace() for c in core):
            continue
        body = core.rstrip(".,?!;:%")
        if body and body not in (prefixes if lead else inner):
            continue
        if not body and not set(core) <= marks:
            continue
        node = root
        for ch in text:
            node = node.children.setdefault(ch, _Trie())
        node.ids.append(token)
        kept[token] = text
    return root, kept
