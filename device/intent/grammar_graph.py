"""The sentences a home can hear, as a word graph for constrained decoding: built from hassil templates.

`build_graph(intents, slot_lists, intent_names)` turns every template of the chosen intents into
a recursive transition network. Expansion rules and slot lists are sub-grammars built once and
*called* (entered, then returned from), never copied into each template that uses them, so a home
with 200 names costs one name list, not one per template: memory grows with templates + lists
while the number of sentences grows with their product. Nothing is enumerated.

- Text slot lists: each value's `text_in` is itself a template. A template's `requires_context` /
  `excludes_context` filters the values by their context (`{name}` of a lock template holds only
  locks); each distinct filter is one more shared copy of that list.
- Range lists: the numbers as Whisper writes them (digits, the range's step, `21.5` when the
  range has halves or tenths). The spoken number is the range value; a multiplier only changes
  the slot's value, not what is said.
- Wildcard lists can't be a closed grammar: templates that use one are left out (counted, logged).

Arcs carry word *fragments*: hassil templates build words from pieces ("light[s]"), so an arc
says whether a word boundary precedes it (`spaced`). Words are normalised the way Whisper's output
is after lowercasing: letters, digits and apostrophes ('.' only inside a number); '%' is the word
"percent"; hyphens and underscores split words; other punctuation is dropped.

Once built, nodes with the same future are merged (templates end alike, lists return to a few
places), which shrinks the graph ~3× and, more important, the number of call stacks the decoder
meets. The graph implements `models.asr.grammar_search.WordGraph`; it caches the closures it
computes for the decoder, bounded.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    ListReference,
    Permutation,
    RuleReference,
    Sentence,
    Sequence,
    TextChunk,
)
from hassil.intents import (
    IntentData,
    RangeFractionType,
    RangeSlotList,
    SlotList,
    TextSlotList,
    WildcardSlotList,
)

from device.errors import ConfigError

_LOGGER = logging.getLogger(__name__)

WORD, SPACE, EPS, CALL = 0, 1, 2, 3
MAX_DEPTH = 12
"""Deepest nesting of sub-grammar calls (rules in rules in lists); guards recursive rules."""
MAX_RANGE = 5_000
"""A range with more numbers than this becomes "any number of its length" instead of a list."""
_PIECES = re.compile(r"\s+|\S+")
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")

State = tuple[int, Any]
"""(node, call stack): the stack is None or (return node, parent stack)."""


@dataclass(frozen=True, slots=True)
class GraphStats:
    nodes: int
    arcs: int
    sub_grammars: int
    templates: int
    wildcard_templates: int
    dead_templates: int
    """Templates that can't produce a sentence in this home (an empty list: no floors, no locks)."""


def normalise_words(text: str) -> str:
    """Text as the graph spells it: lowercase words of letters, digits, apostrophes; '%' → percent."""
    return " ".join(w for w in (_word(p) for p in _prepare(text).split()) if w)


def _prepare(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("%", " percent ")
    return text.replace("-", " ").replace("_", " ")


def _word(piece: str) -> str:
    kept = _DECIMAL.sub("\0", piece)  # the point of 21.5 stays; any other '.' is punctuation
    return "".join(c for c in kept if c.isalnum() or c in "'\0").replace("\0", ".")


class GrammarGraph:
    """A recursive transition network over word fragments (see the module docstring)."""

    def __init__(self, edges: list[list[tuple[int, int, int]]], frags: list[str], subs: list[tuple[int, int]],
                 start: int, final: int, stats: GraphStats) -> None:
        self._edges = edges
        self._frags = frags
        self._sub_start = [s for s, _ in subs]
        self._sub_end = {e for _, e in subs}
        self._subs = subs
        self._start = start
        self._final = final
        self.stats = stats
        self._closures: dict[State, tuple[tuple[tuple[str, bool, State], ...], bool]] = {}

    # -- the protocol the decoder walks -------------------------------------------------------

    def starts(self) -> tuple[State, ...]:
        return ((self._start, None),)

    def arcs(self, state: State) -> tuple[tuple[str, bool, State], ...]:
        """Fragments that can come next: (text, spaced, state after it)."""
        return self._closure(state)[0]

    def is_final(self, state: State) -> bool:
        return self._closure(state)[1]

    def vocabulary(self) -> frozenset[str]:
        """Every word the graph can produce, fragments joined as spoken ('light' + 's')."""
        callers: dict[int, list[int]] = {}
        for edges in self._edges:
            for kind, a, b in edges:
                if kind == CALL:
                    callers.setdefault(self._subs[a][1], []).append(b)
        words: set[str] = set()
        for edges in self._edges:
            for kind, a, b in edges:
                if kind == WORD:
                    words.add(self._frags[a])
                    for tail in self._joined(b, callers, 2):
                        words.add(self._frags[a] + tail)
        return frozenset(words)

    def count_sentences(self) -> int:
        """Paths from start to final (a sentence two templates both produce counts twice)."""
        sub_counts: dict[int, int] = {}
        memo: dict[int, int] = {}
        ends = {e: i for i, (_, e) in enumerate(self._subs)}

        def paths(node: int, depth: int = 0) -> int:
            if node in memo:
                return memo[node]
            if depth > 500:
                raise ConfigError("intent-grammar-cycle", "the sentence graph has a cycle (a rule that uses itself?)")
            total = 1 if node == self._final or node in ends else 0
            for kind, a, b in self._edges[node]:
                if kind == CALL:
                    if a not in sub_counts:
                        sub_counts[a] = paths(self._sub_start[a], depth + 1)
                    total += sub_counts[a] * paths(b, depth + 1)
                else:
                    total += paths(b, depth + 1)
            memo[node] = total
            return total

        return paths(self._start)

    def accepts(self, text: str) -> bool:
        """Whether `text` (normalised as Whisper output is) is one of the graph's sentences."""
        cursors: set[tuple[State, str, bool]] = {(s, "", True) for s in self.starts()}
        for i, word in enumerate(normalise_words(text).split()):
            step: set[tuple[State, str, bool]] = set()
            for state, _rest, _ in cursors:
                step |= self._match_word(state, word, i == 0)
            cursors = step
            if not cursors:
                return False
        return any(self.is_final(state) for state, _, _ in cursors)

    def continuations(self, text: str, max_frags: int = 8, budget: int = 400) -> tuple[str, ...]:
        """How `text` can go on: for each fragment the graph allows next, the shortest run of
        fragments from it to the end of a sentence ('lights', ' in the kitchen', ' percent'; a
        leading space starts a new word). Empty when nothing longer shares the prefix. Bounded
        (`max_frags` per run, `budget` states per first fragment): a run not found in time is
        reported as its first fragment alone, so "unknown" never reads as "can't go on"."""
        cursors: set[State] = set()
        if text.split():
            found: set[tuple[State, str, bool]] = {(s, "", True) for s in self.starts()}
            for i, word in enumerate(normalise_words(text).split()):
                step: set[tuple[State, str, bool]] = set()
                for state, _rest, _ in found:
                    step |= self._match_word(state, word, i == 0)
                found = step
            cursors = {state for state, _, _ in found}
        else:
            cursors = set(self.starts())
        out: dict[str, None] = {}
        for state in cursors:
            for frag, spaced, nxt in self.arcs(state):
                first = (" " if spaced else "") + frag
                out[self._shortest_end(nxt, first, max_frags, budget)] = None
        return tuple(out)

    def _shortest_end(self, state: State, said: str, max_frags: int, budget: int) -> str:
        """Breadth first from `state` to the nearest end of a sentence."""
        todo = [(state, said, 0)]
        seen = {state}
        for at, so_far, depth in todo:
            if self.is_final(at):
                return so_far
            if depth >= max_frags or len(todo) > budget:
                continue
            for frag, spaced, nxt in self.arcs(at):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, so_far + (" " if spaced else "") + frag, depth + 1))
        return said

    # -- internals ----------------------------------------------------------------------------

    def _match_word(self, state: State, word: str, first: bool) -> set[tuple[State, str, bool]]:
        """States after `word` from `state`: a spaced fragment, then unspaced ones until it is used up."""
        out: set[tuple[State, str, bool]] = set()
        todo = [(state, word, True)]
        while todo:
            at, rest, need_space = todo.pop()
            for frag, spaced, nxt in self.arcs(at):
                if (spaced != need_space and not first) or not rest.startswith(frag):
                    continue
                if rest == frag:
                    out.add((nxt, "", False))
                else:
                    todo.append((nxt, rest[len(frag):], False))
            first = False
        return out

    def _joined(self, node: int, callers: dict[int, list[int]], depth: int) -> Iterable[str]:
        """Fragments that can follow at `node` without a space (returns go to every caller)."""
        if depth == 0:
            return
        seen = set()
        todo = [node]
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            todo += callers.get(n, [])
            for kind, a, b in self._edges[n]:
                if kind == WORD:
                    yield self._frags[a]
                    for tail in self._joined(b, callers, depth - 1):
                        yield self._frags[a] + tail
                elif kind == EPS:
                    todo.append(b)
                elif kind == CALL:
                    todo.append(self._sub_start[a])

    def _closure(self, state: State) -> tuple[tuple[tuple[str, bool, State], ...], bool]:
        cached = self._closures.get(state)
        if cached is not None:
            return cached
        arcs: dict[tuple[str, bool, State], None] = {}
        final = False
        seen: set[tuple[int, Any, bool]] = set()
        todo: list[tuple[int, Any, bool, int]] = [(state[0], state[1], False, _depth(state[1]))]
        while todo:
            node, stack, spaced, depth = todo.pop()
            if (node, stack, spaced) in seen:
                continue
            seen.add((node, stack, spaced))
            if node == self._final and stack is None:
                final = True
            if node in self._sub_end and stack is not None:
                todo.append((stack[0], stack[1], spaced, depth - 1))
            for kind, a, b in self._edges[node]:
                if kind == WORD:
                    arcs[(self._frags[a], spaced, (b, stack))] = None
                elif kind == SPACE:
                    todo.append((b, stack, True, depth))
                elif kind == EPS:
                    todo.append((b, stack, spaced, depth))
                elif depth < MAX_DEPTH:
                    todo.append((self._sub_start[a], (b, stack), spaced, depth + 1))
        if len(self._closures) > 4096:
            self._closures.clear()  # bounded: a long-running speaker visits new states forever
        result = (tuple(arcs), final)
        self._closures[state] = result
        return result


def _depth(stack: Any) -> int:
    depth = 0
    while stack is not None:
        depth += 1
        stack = stack[1]
    return depth


class _Builder:
    def __init__(self, intents: Intents, slot_lists: Mapping[str, SlotList]) -> None:
        self.intents = intents
        self.slot_lists = slot_lists
        self.edges: list[list[tuple[int, int, int]]] = []
        self.frags: list[str] = []
        self.frag_ids: dict[str, int] = {}
        self.subs: list[tuple[int, int]] = []
        self.sub_ids: dict[Any, int | None] = {}
        self.filtered: dict[Any, tuple[list[Any], Any]] = {}

    def node(self) -> int:
        self.edges.append([])
        return len(self.edges) - 1

    def edge(self, src: int, kind: int, a: int, dst: int) -> None:
        self.edges[src].append((kind, a, dst))

    def text(self, text: str, state: int) -> int:
        for piece in _PIECES.findall(_prepare(text)):
            if piece.isspace():
                nxt = self.node()
                self.edge(state, SPACE, 0, nxt)
                state = nxt
                continue
            word = _word(piece)
            if not word:
                continue
            nxt = self.node()
            self.edge(state, WORD, self.frag(word), nxt)
            state = nxt
        return state

    def frag(self, word: str) -> int:
        frag = self.frag_ids.setdefault(word, len(self.frag_ids))
        if frag == len(self.frags):
            self.frags.append(word)
        return frag

    def expr(self, exp: Expression, state: int, data: IntentData) -> int | None:
        """Build `exp` from `state`; the node it ends in, or None if it can produce nothing here."""
        if isinstance(exp, TextChunk):
            return self.text(exp.text, state)
        if isinstance(exp, Permutation):
            perms = Alternative(items=[Sequence(items=list(p)) for p in itertools.permutations(exp.items)])
            return self.expr(perms, state, data)
        if isinstance(exp, Alternative):
            end = self.node()
            alive = False
            for item in exp.items:
                branch = self.node()
                item_end = self.expr(item, branch, data)
                if item_end is not None:
                    self.edge(state, EPS, 0, branch)
                    self.edge(item_end, EPS, 0, end)
                    alive = True
            if exp.is_optional:
                self.edge(state, EPS, 0, end)
                alive = True
            return end if alive else None
        if isinstance(exp, Sequence):
            at = state
            for item in exp.items:
                nxt = self.expr(item, at, data)
                if nxt is None:
                    return None
                at = nxt
            return at
        if isinstance(exp, RuleReference):
            return self.rule(exp.rule_name, state, data)
        if isinstance(exp, ListReference):
            return self.list_ref(exp, state, data)
        raise ConfigError("intent-grammar", f"unexpected template part {type(exp).__name__}")

    def call(self, key: Any, state: int, build: Any) -> int | None:
        """Enter the shared sub-grammar `key` (built on first use by `build(start) -> end`)."""
        if key not in self.sub_ids:
            self.sub_ids[key] = None  # a rule that reaches itself while being built is dead there
            start = self.node()
            end = build(start)
            if end is not None:
                self.subs.append((start, end))
                self.sub_ids[key] = len(self.subs) - 1
        sub = self.sub_ids[key]
        if sub is None:
            return None
        ret = self.node()
        self.edge(state, CALL, sub, ret)
        return ret

    def rule(self, name: str, state: int, data: IntentData) -> int | None:
        body: Sentence | None = data.expansion_rules.get(name) or self.intents.expansion_rules.get(name)
        if body is None:
            raise ConfigError("intent-unknown-rule", f"the rule <{name}> is not defined")
        key = ("rule", id(body), _data_key(data))
        return self.call(key, state, lambda start: self.expr(body.expression, start, data))

    def find_list(self, name: str, data: IntentData) -> SlotList | None:
        return self.slot_lists.get(name) or data.slot_lists.get(name) or self.intents.slot_lists.get(name)

    def list_ref(self, ref: ListReference, state: int, data: IntentData) -> int | None:
        if ref.prefix:
            state = self.text(ref.prefix, state)
        inline = ref.get_inline_range()
        slot_list = RangeSlotList(None, *inline) if inline else self.find_list(ref.list_name, data)
        if slot_list is None:
            return None  # hassil refuses unknown lists at load; a list the home lacks has no values
        if isinstance(slot_list, WildcardSlotList):
            raise _Wildcard(ref.list_name)
        if isinstance(slot_list, RangeSlotList):
            end = self.call(("range", *_range_key(slot_list)), state, lambda start: self.numbers(slot_list, start))
        elif isinstance(slot_list, TextSlotList):
            key = ("list", id(slot_list), _data_key(data)[:2])
            if key not in self.filtered:
                values = [v for v in slot_list.values if _fits(v.context, data)]
                # Templates whose filters keep the same values share one copy of the list.
                self.filtered[key] = (values, ("list", id(slot_list), tuple(id(v) for v in values)))
            values, sub = self.filtered[key]
            end = self.call(sub, state, lambda start: self.values(values, start, data))
        else:
            raise ConfigError("intent-grammar", f"list {{{ref.list_name}}} is a {type(slot_list).__name__}, which the grammar can't use")
        if end is not None and ref.suffix:
            end = self.text(ref.suffix, end)
        return end

    def values(self, values: list[Any], start: int, data: IntentData) -> int | None:
        return self.expr(Alternative(items=[v.text_in for v in values]), start, data) if values else None

    def numbers(self, spec: RangeSlotList, start: int) -> int | None:
        fractions = [f"{f:.1f}"[1:] for f in RangeFractionType.get_fractions(spec.fraction_type)]
        count = len(range(spec.start, spec.stop + 1, spec.step)) * (1 + len(fractions))
        end = self.node()
        if count > MAX_RANGE:
            # Too many to list: any whole number with as many digits as the range's ends have,
            # digit by digit (a superset; hassil checks the value after decoding).
            _LOGGER.info("range %d..%d has %d numbers: decoded as any number of its length", spec.start, spec.stop, count)
            low, high = len(str(abs(spec.start))), len(str(abs(spec.stop)))
            for length in range(low, high + 1):
                at = start
                for i in range(length):
                    nxt = self.node()
                    for digit in "123456789" if i == 0 and length > 1 else "0123456789":
                        self.edge(at, WORD, self.frag(digit), nxt)
                    at = nxt
                self.edge(at, EPS, 0, end)
            return end
        for n in range(spec.start, spec.stop + 1, spec.step):
            for text in (str(n), *(f"{n}{f}" for f in fractions)):
                self.edge(self.text(text, start), EPS, 0, end)
        return end


class _Wildcard(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _range_key(spec: RangeSlotList) -> tuple[int, int, int, str]:
    return spec.start, spec.stop, spec.step, str(spec.fraction_type)


def _data_key(data: IntentData) -> Any:
    """What a rule's expansion depends on besides its text: context filters and local lists/rules."""
    local = id(data) if data.slot_lists or data.expansion_rules else 0
    return repr(sorted(data.requires_context.items())), repr(sorted(data.excludes_context.items())), local


def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        wanted = wanted.get("value")
    if isinstance(actual, Mapping):
        actual = actual.get("value")
    if wanted is None:
        return True  # {slot: true} and the like constrain the match, not the spoken value
    if isinstance(wanted, Collection) and not isinstance(wanted, str):
        return actual in wanted
    return bool(actual == wanted)


def _fits(context: Mapping[str, Any] | None, data: IntentData) -> bool:
    """A value fits a template unless its own context contradicts the template's (keys it lacks pass)."""
    if not context:
        return True
    for key, wanted in data.requires_context.items():
        if key in context and not _matches(context[key], wanted):
            return False
    for key, unwanted in data.excludes_context.items():
        if key in context and unwanted is not None and _matches(context[key], unwanted):
            return False
    return True


def build_graph(intents: Intents, slot_lists: Mapping[str, SlotList] | None = None,
                intent_names: Collection[str] | None = None) -> GrammarGraph:
    """The word graph of every template of `intent_names` (all intents if None) for this home."""
    builder = _Builder(intents, slot_lists or {})
    start, final = builder.node(), builder.node()
    templates = wildcards = dead = 0
    for intent_name, intent in intents.intents.items():
        if intent_names is not None and intent_name not in intent_names:
            continue
        for data in intent.data:
            for sentence in data.sentences:
                templates += 1
                rules = {**intents.expansion_rules, **data.expansion_rules}
                used = set(sentence.list_names(rules))
                if data.wildcard_list_names & used or any(isinstance(builder.find_list(n, data), WildcardSlotList) for n in used):
                    wildcards += 1
                    continue
                entry = builder.node()
                try:
                    end = builder.expr(sentence.expression, entry, data)
                except _Wildcard:  # a wildcard list_names() didn't see; its few nodes stay unreachable
                    wildcards += 1
                    continue
                if end is None:
                    dead += 1
                    continue
                builder.edge(start, EPS, 0, entry)
                builder.edge(end, EPS, 0, final)
    if wildcards:
        _LOGGER.info("sentence graph: %d templates with an open (wildcard) slot left out", wildcards)
    edges, subs, start, final = _minimise(builder.edges, builder.subs, start, final)
    stats = GraphStats(len(edges), sum(map(len, edges)), len(subs), templates, wildcards, dead)
    _LOGGER.debug("sentence graph: %s", stats)
    return GrammarGraph(edges, builder.frags, subs, start, final, stats)


def _minimise(edges: list[list[tuple[int, int, int]]], subs: list[tuple[int, int]], start: int,
              final: int) -> tuple[list[list[tuple[int, int, int]]], list[tuple[int, int]], int, int]:
    """Merge nodes with the same future, bottom-up (hash-consing), and skip lone epsilons.

    Templates end alike ("… {name}", "… [please]") and so do the places lists are called from:
    after merging, a list entered from fifty templates returns to a handful of nodes, so the
    decoder sees a handful of call stacks instead of fifty, and the graph shrinks too.
    """
    ends = {e: i for i, (_, e) in enumerate(subs)}
    canon: dict[int, int] = {}
    table: dict[tuple[Any, ...], int] = {}
    out: list[list[tuple[int, int, int]]] = []
    roots = [start, *(n for sub in subs for n in sub), final]
    for root in roots:
        todo = [(root, False)]
        while todo:
            node, expanded = todo.pop()
            if node in canon:
                continue
            if not expanded:
                todo.append((node, True))
                todo += [(b, False) for _, _, b in edges[node] if b not in canon]
                continue
            moves = tuple(sorted({(kind, a, canon[b]) for kind, a, b in edges[node]}))
            flags = (node == final, ends.get(node, -1))
            if flags == (False, -1) and len(moves) == 1 and moves[0][0] == EPS:
                canon[node] = moves[0][2]
                continue
            key = (flags, moves)
            if key not in table:
                table[key] = len(out)
                out.append(list(moves))
            canon[node] = table[key]
    return out, [(canon[s], canon[e]) for s, e in subs], canon[start], canon[final]
