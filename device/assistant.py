"""What happens after the front end: utterance → transcript → local action or cloud turn → answer.

The assistant is one handler of the service's events. It never blocks the audio loop: each
utterance is processed in its own task (speech recognition in a worker thread), while wake words
keep arriving and can interrupt a cloud reply at once (barge-in). Everything it decides becomes
an event (Transcript, Routed, ToolCall, ToolResult, Say, CloudReply, Interrupted, Error) handed to
`emit`, so the CLI prints it, the voice speaks it and telemetry times it, all from one stream.

Local first: the speech model reads the utterance twice on one encoding — freely, and constrained
during search to the sentences the home can hear (the language's word graph) — and the policy
(intent/policy.py) weighs the two: a command the audio supports runs locally through the MQTT
tools, a device the home lacks is refused, two readings that differ on a risky verb ask first.
Everything else goes to the cloud, unless the privacy switch is off, in which case the device says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from device.cloud.confirmation import SpokenConfirmation
from device.cloud.decision import LocalKind, RouteDecider
from device.errors import VoxError
from device.events import (
    CloudReply,
    Detection,
    EndNow,
    Error,
    Interrupted,
    ListenTimeout,
    Routed,
    Say,
    SpeakerControl,
    SpeechPaused,
    SpeechSoFar,
    StartListening,
    ToolCall,
    ToolResult,
    Transcript,
    VoiceStopped,
)
from device.intent.answers import yes_or_no
from device.intent.decision import Decision
from device.intent.early import acts_early
from device.intent.grammar_graph import normalise_words
from device.intent.language import HomeLanguage
from device.intent.policy import Choice, choose
from device.listening.reads import GrowingReads
from device.timers.local import LocalTimers
from device.tools.api import ToolExecutor
from device.voice.speaker import say_for_result
from hal.audio import pcm16_to_float
from models.asr.stop import Stop

_LOGGER = logging.getLogger(__name__)

CONFIRM_TIMEOUT_MS = 6000


Emit = Callable[[object], Awaitable[None]]


WARM_UP = "turn on the warm up lamp"
"""Matched once at start-up: no home has it, so every path of a miss runs (the unknown-name one too)."""


class Recognizer(Protocol):
    def transcribe(self, audio: np.ndarray, search: Any = None, stop: Stop | None = None,
                   search_if: Callable[[str], bool] | None = None) -> tuple[str, Any]:
        """Free text, and details whose `grammar` holds the search's best sentences (when given,
        and `search_if(free text)` is true if that is given) and whose `mean_logprob` is the free
        reading's per-token log-probability; `stop` (called from another thread) gives the
        reading up with `Stopped`."""
        ...

    def prepare(self, graph: Any) -> Any:
        """A constrained search over a word graph (once per grammar)."""
        ...


class _Grammars:
    """The recognizer's search over the home's sentences. Built off the event loop; when the home
    changes (discovery) the old search keeps serving until the new one is ready."""

    def __init__(self, recognizer: Recognizer, language: HomeLanguage) -> None:
        self._recognizer = recognizer
        self._language = language
        self._key: tuple[object, ...] | None = None
        self._search: Any = None
        self._building: asyncio.Task[None] | None = None

    @property
    def ready(self) -> Any:
        """The search as it is now (None before the first build): for reads while speaking."""
        return self._search

    async def current(self) -> Any:
        key = self._language.signature()
        if key != self._key and (self._building is None or self._building.done()):
            self._building = asyncio.create_task(self._build(key))
        if self._search is None and self._building is not None:
            await self._building  # the first utterance waits once; later ones never do
        return self._search

    async def _build(self, key: tuple[object, ...]) -> None:
        started = asyncio.get_running_loop().time()
        try:
            graph = await asyncio.to_thread(self._language.graph)
            self._search = await asyncio.to_thread(self._recognizer.prepare, graph)
        except Exception:  # the free reading still works; a broken grammar must not end the service
            _LOGGER.exception("couldn't build the home's sentence graph; free decoding only")
            return
        finally:
            self._key = key
        _LOGGER.info("home sentence graph ready in %.1f s", asyncio.get_running_loop().time() - started)


class CloudTurns(Protocol):
    async def turn(self, utterance: bytes) -> Any: ...

    async def interrupt(self, reason: str = "wake") -> int: ...


@dataclass
class _Pending:
    call: ToolCall
    message: str
    decision: Decision | None = None
    asked_again: bool = False
    """An unclear answer ('I'm not sure') gets the question once more, then the action is off."""


@dataclass(frozen=True, slots=True)
class _Reading:
    """One utterance read and understood (both readings and the policy's choice)."""

    text: str
    details: Any
    free: Decision | None
    command: str | None = None
    command_confidence: float = 0.0
    choice: Choice | None = None
    continuations: tuple[str, ...] = ()
    """How the grammar lets the command go on (early endpointing's rule)."""


class Assistant:
    def __init__(
        self,
        *,
        emit: Emit,
        listen: Callable[[int, str], None],
        decider: RouteDecider,
        recognizer: Recognizer | None = None,
        language: HomeLanguage | None = None,
        tools: ToolExecutor | None = None,
        cloud: CloudTurns | None = None,
        cloud_confirmation: SpokenConfirmation | None = None,
        timers: LocalTimers | None = None,
        followup_ms: int = 5000,
        end_now: Callable[[SpeechPaused, object], None] | None = None,
    ) -> None:
        self._emit = emit
        self._listen = listen
        self._decider = decider
        self._recognizer = recognizer
        self._language = language
        self._tools = tools
        self._cloud = cloud
        self._cloud_confirmation = cloud_confirmation
        self._timers = timers
        self._followup_ms = followup_ms
        self._pending: _Pending | None = None
        self._task: asyncio.Task[None] | None = None
        self._cloud_busy = False
        self._end_now = end_now
        """Early endpointing: end the utterance at this pause with this reading (None: off)."""
        self._early: list[asyncio.Task[None]] = []
        self._reads: GrowingReads[_Reading] = GrowingReads(self._read_so_far)
        """The command read while it is spoken (early endpointing's decode worker)."""
        self._running: str | None = None
        """The call id of the local command being run: its publish starts the 'done' earcon."""
        self._chime: asyncio.Task[None] | None = None
        self._early_read: tuple[int, _Reading] | None = None
        """The last pause's reading (its speech end, ms): the normal end of the same speech reuses it."""
        self._heard: tuple[str, Decision | None] = ("", None)
        """The last free reading's meaning: a home sentence with the same words isn't parsed again."""
        can_search = recognizer is not None and language is not None and hasattr(recognizer, "prepare")
        self._grammars = _Grammars(recognizer, language) if can_search and recognizer and language else None

    async def handle(self, event: object) -> None:
        match event:
            case Detection():
                if self._cloud_busy and self._cloud is not None:
                    heard = await self._cloud.interrupt("wake")
                    await self._emit(Interrupted(event.timestamp_ms, reason=f"wake word after {heard} ms of reply"))
            case VoiceStopped():
                if self._task is not None and not self._task.done():
                    _LOGGER.info("still answering the last command; this one is dropped")
                    await self._emit(Say(prompt="busy"))
                    return
                self._task = asyncio.create_task(self._guarded(event))
            case SpeechSoFar():
                if self._reading_early() and self._grammars is not None and self._grammars.ready is not None:
                    self._reads.offer(event)
            case SpeechPaused():
                if self._reading_early():
                    self._early = [t for t in self._early if not t.done()]
                    self._early.append(asyncio.create_task(self._read_early(event)))
            case ListenTimeout():
                self._reads.reset()
                if self._pending is not None:
                    self._pending = None
                    await self._emit(Say(prompt="cancelled"))

    async def prepare(self) -> None:
        """Build the home's sentence search now (start-up), not on the first command, and run
        the sentence matcher once: hassil's first miss costs ~180 ms, later ones ~35 ms."""
        if self._grammars is not None:
            await self._grammars.current()
        if self._language is not None:
            try:
                await asyncio.to_thread(self._language.understand, WARM_UP)
            except Exception:  # each command reports its own failure; start-up goes on
                _LOGGER.exception("the sentence matcher failed its warm-up")

    async def drain(self) -> None:
        """Wait for the utterance in progress (the end of a file run, a clean shutdown); an
        early reading first, so a file run ends its utterances where a live one would."""
        for early in list(self._early):
            await early
        if self._task is not None:
            await self._task

    async def _guarded(self, utterance: VoiceStopped) -> None:
        try:
            await self._process(utterance)
        except VoxError as err:
            _LOGGER.error("command failed: [%s] %s", err.code, err.message, extra={"code": err.code})
            await self._emit(Error(err.code, err.message, utterance.timestamp_ms))
            await self._emit(Say(prompt="error"))
        except Exception as err:  # one bad utterance must never end the service
            _LOGGER.exception("command failed unexpectedly")
            await self._emit(Error("internal", f"{type(err).__name__}: {err}", utterance.timestamp_ms))
            await self._emit(Say(prompt="error"))

    def _reading_early(self) -> bool:
        """Early endpointing applies: on, a grammar, no answer being given, no yes/no expected."""
        busy = self._task is not None and not self._task.done()
        return self._end_now is not None and self._grammars is not None and not busy and not self._waiting()

    def _waiting(self) -> bool:
        """A yes/no answer is expected (ours or the cloud's question)."""
        return self._pending is not None or (self._cloud_confirmation is not None and self._cloud_confirmation.waiting is not None)

    async def _read_early(self, paused: SpeechPaused) -> None:
        """At a pause, the reading that heard all the speech before it (read while it was spoken,
        or now); end the utterance there if the command can't change."""
        assert self._grammars is not None and self._end_now is not None
        try:
            if await self._grammars.current() is None:
                return
            latest, before = await self._reads.covering(paused)
        except Exception:  # the normal end still comes; an early reading is only a shortcut
            _LOGGER.exception("early reading failed")
            return
        if latest is None:
            return
        reading = latest.reading
        self._early_read = (paused.timestamp_ms, reading)
        gap = -math.log(reading.command_confidence) if reading.command_confidence > 0 else None
        early, why = acts_early(reading.choice, gap, reading.continuations, short=paused.short,
                                before=before.reading.choice if before is not None else None)
        _LOGGER.info("pause at %d ms (%d ms quiet, read up to %d ms): %s (%s)", paused.timestamp_ms,
                     paused.decided_ms - paused.timestamp_ms, latest.heard_ms, "end now" if early else "wait", why)  # never the words
        if early:
            self._end_now(paused, reading)

    def _read_so_far(self, heard: SpeechSoFar | SpeechPaused, stop: Stop) -> tuple[_Reading, bool]:
        """The command so far (the decode worker), and whether the reading is complete.

        When the free words are already a whole sentence of the home's grammar, that sentence is
        the constrained reading too (gap 0: the search can only find it at least as likely), and
        the search is skipped. Otherwise, in mid-speech the reading stays free (half a command;
        kept to compare with the next), and in a pause the grammar is searched on the same encoded
        audio, straight after the free decode: one pass, not a free reading and then both again."""
        assert self._recognizer is not None and self._language is not None and self._grammars is not None
        audio = pcm16_to_float(heard.audio)
        graph = self._language.graph()
        in_pause = heard.decided_ms > heard.timestamp_ms
        last = self._reads.latest()
        search = self._grammars.ready
        started = time.perf_counter()
        checked: list[tuple[tuple[str, Decision] | None, Decision | None, bool]] = []
        """The free words checked (the transcriber asks once, between its free decode and the
        search): their whole acting home sentence, their meaning, whether the search ran."""

        def needs_search(text: str) -> bool:
            acts, meaning = self._whole_sentence(text, last)
            if meaning is not None:
                stop.check()  # hassil took its time; the speaker may have fallen quiet since
            # In mid-speech, search too once the speaker has fallen quiet within this audio: it
            # heard all the speech, so it is the pause's reading, and one pass makes both.
            search_now = acts is None and (in_pause or self._reads.heard_the_end(heard))
            checked.append((acts, meaning, search_now))
            return search_now

        text, details = self._recognizer.transcribe(audio, search, stop, search_if=needs_search)
        stop.check()
        if not checked:  # no search was offered: no grammar yet, or longer than a command's window
            acts, meaning = self._whole_sentence(text, last)
            checked.append((acts, meaning, in_pause and search is not None))  # a pause's reading goes as far as it can
        acts, meaning, searched = checked[0]
        if acts is not None:
            sentence, acting = acts
            _LOGGER.debug("read a whole home sentence in %.0f ms", 1000 * (time.perf_counter() - started))
            return _Reading(text, details, acting, sentence, 1.0, choose(acting, acting, gap=0.0), graph.continuations(sentence)), True
        if not searched:
            return _Reading(text, details, None), False
        decoded = time.perf_counter()
        free = meaning if meaning is not None else self._understand(text)
        _LOGGER.debug("read and searched%s in %.0f ms, understood in %.0f ms", "" if in_pause else " (quiet since)",
                      1000 * (decoded - started), 1000 * (time.perf_counter() - decoded))
        if free is None or not text:
            return _Reading(text, details, free), True
        command, confidence, choice = self._constrained(details, free)
        return _Reading(text, details, free, command, confidence, choice, graph.continuations(command or "")), True

    def _whole_sentence(self, text: str, last: Any) -> tuple[tuple[str, Decision] | None, Decision | None]:
        """Free words that are a whole sentence of the home's grammar: (that sentence and its
        meaning, if it acts; its meaning). Words the grammar doesn't hold aren't parsed here."""
        assert self._language is not None
        sentence = normalise_words(text)
        if not sentence or not self._language.graph().accepts(sentence):
            return None, None
        same = last is not None and last.reading.command == sentence and last.reading.free is not None
        meaning = last.reading.free if same else self._understand(text)  # hassil: ~50 ms
        # Only a sentence that acts: a name the home lacks ("the copy maker") is a sentence too,
        # and there the search must say whether the audio is a known device's name.
        if meaning is not None and meaning.kind in ("tool", "answer", "speaker", "timer") \
                and (meaning.kind != "tool" or meaning.call is not None):
            return (sentence, meaning), meaning
        return None, meaning

    async def _process(self, utterance: VoiceStopped) -> None:
        audio = pcm16_to_float(utterance.audio)
        text, details = "", None
        early = utterance.reading if isinstance(utterance.reading, _Reading) and not self._waiting() else None
        if early is None and not self._waiting() and self._early_read is None:
            for pause in list(self._early):
                await pause  # the pause's reading of this same speech is under way: don't decode twice
        self._reads.reset()
        if early is None and not self._waiting() and self._early_read is not None \
                and self._early_read[0] == utterance.timestamp_ms:
            early = self._early_read[1]  # nobody spoke after the pause: the same speech, read there
        self._early_read = None
        if early is not None:
            text, details = early.text, early.details  # read at the pause, on exactly this audio
        elif self._recognizer is not None:
            # A yes/no answer is read freely; a command also against the home's sentences.
            search = await self._grammars.current() if self._grammars is not None and not self._waiting() else None
            text, details = await asyncio.to_thread(self._recognizer.transcribe, audio, search)
        if self._pending is not None:
            await self._confirm(text, utterance)
            return
        if self._cloud_confirmation is not None and self._cloud_confirmation.waiting is not None:
            # The cloud asked "are you sure?": the device itself judges the answer, then the
            # model hears it too and repeats the call, which only now goes through.
            outcome = self._cloud_confirmation.answer(self._yes_or_no(text))
            await self._emit(Transcript(text, utterance.timestamp_ms))
            if outcome == "ask_again":
                await self._emit(Routed("local", "unclear answer to the cloud's confirmation question", "none", 1.0))
                await self._emit(Say(prompt="confirm", text=f"Please say yes or no. {self._cloud_confirmation.question}"))
                self._listen(CONFIRM_TIMEOUT_MS, "confirm")
                return
            if outcome == "gave_up":
                await self._emit(Routed("local", "still no clear yes to the cloud's confirmation question", "none", 1.0))
                await self._emit(Say(prompt="cancelled", text="I didn't hear a clear yes, so I won't."))
                return
            await self._emit(Routed("cloud", "answer to the cloud's confirmation question", "none", 1.0))
            await self._cloud_turn(utterance)
            return
        decision = early.free if early is not None else self._understand(text)
        command, command_confidence = None, 0.0
        if decision is not None and text:
            if early is not None and early.choice is not None:
                command, command_confidence, choice = early.command, early.command_confidence, early.choice
            else:
                command, command_confidence, choice = self._constrained(details, decision)
            _LOGGER.info("readings: %s (%s)", choice.verdict, choice.reason)
            decision = choice.decision
            if choice.verdict == "ask" and decision.call is not None:
                await self._emit(Transcript(text, utterance.timestamp_ms, command=command, command_confidence=round(command_confidence, 3)))
                await self._emit(Routed("local", choice.reason, "tool", round(decision.confidence, 3)))
                await self._ask(decision)
                return
        await self._emit(
            Transcript(text, utterance.timestamp_ms, command=command, command_confidence=round(command_confidence, 3))
        )
        kind: LocalKind = decision.kind if decision is not None else ("none" if not text else "not_local")
        confidence = decision.confidence if decision is not None else 0.0
        route = self._decider.decide(kind, confidence)
        await self._emit(Routed(route.way, route.reason, kind, round(confidence, 3)))
        if route.way == "local" and decision is not None:
            await self._local(decision, utterance)
        elif route.way == "cloud":
            await self._cloud_turn(utterance)
        else:
            await self._emit(Say(prompt="cloud_disabled"))

    def _yes_or_no(self, text: str) -> bool | None:
        """The answer judged in the configured language ('ja, bitte'), not always in English."""
        return yes_or_no(text, self._language.language if self._language is not None else "en")

    def _understand(self, text: str) -> Decision | None:
        if self._language is None or not text:
            return None
        decision = self._language.understand(text)
        self._heard = (normalise_words(text), decision)
        return decision

    def _constrained(self, details: Any, free: Decision) -> tuple[str | None, float, Choice]:
        """The home's best sentence for this audio, weighed against the free reading (policy.py).

        The n best grammar sentences are tried in order; the first that means something local
        is the constrained reading, and `gap` is how much less likely per token it is than the
        free reading (≈ 0 when the audio says it, several nats when it is forced onto other speech)."""
        hypotheses = getattr(details, "grammar", ()) or ()
        if self._language is None or not hypotheses:
            return None, 0.0, choose(free, None)
        graph = self._language.graph()
        for hypothesis in hypotheses:
            sentence = normalise_words(hypothesis.text)
            heard, meaning = self._heard
            reading = meaning if sentence == heard and meaning is not None else self._language.understand(sentence)
            if reading.kind in ("tool", "answer", "speaker", "timer"):
                gap = float(details.mean_logprob) - float(hypothesis.mean_logprob)
                return sentence, math.exp(-max(0.0, gap)), choose(free, reading, gap=gap, accepted=graph.accepts(hypothesis.text))
        return normalise_words(hypotheses[0].text), 0.0, choose(free, None)

    async def _local(self, decision: Decision, utterance: VoiceStopped) -> None:
        if decision.kind == "speaker" and decision.action is not None:
            if decision.action[0] == "stop":
                # 'stop' ends a timer's ring; with nothing ringing there is nothing to stop.
                if self._timers is None or not self._timers.stop_ring():
                    _LOGGER.info("'stop' with nothing ringing")
                return
            await self._emit(SpeakerControl(decision.action[0], int(decision.action[1])))
            return
        if decision.kind == "answer":
            if decision.message:
                await self._emit(Say(prompt="done", text=decision.message))
            return
        if decision.kind == "timer" and decision.action is not None:
            if self._timers is None:
                await self._emit(Say(prompt="error", text="Timers aren't available on this speaker."))
                return
            area = self._language.area if self._language is not None else None
            await self._emit(self._timers.handle(decision.action[0], decision.action[1], area=area))
            return
        if decision.kind == "reject" or decision.call is None:
            await self._emit(Say(prompt="unknown_device", text=decision.message))
            return
        await self._run_tool(decision.call, confirmed=False, at_ms=utterance.timestamp_ms, decision=decision)

    async def _run_tool(self, call: ToolCall, *, confirmed: bool, at_ms: int, decision: Decision | None = None) -> None:
        await self._emit(call)
        if self._tools is None:
            await self._emit(Error("tool-unavailable", "the home is not connected (MQTT is off)", at_ms))
            await self._emit(Say(prompt="error"))
            return
        self._running = call.call_id
        self._forget_chime()
        try:
            result = await self._tools.execute(call, confirmed=confirmed)
        finally:
            self._running = None
        if self._chime is not None:
            await self._chime  # the device may confirm before the earcon's task got its turn
        await self._emit(result)
        await self._answer(call, result, decision)

    def _forget_chime(self) -> None:
        self._chime = None

    def sent(self, call: ToolCall) -> None:
        """The tools' publish hook: our own command is on the broker, so the 'done' earcon starts
        now, while the device confirms and the answer is synthesized (the cloud's calls stay quiet:
        its reply speaks for them)."""
        if call.call_id == self._running and self._chime is None:
            self._chime = asyncio.create_task(self._say_done())

    async def _say_done(self) -> None:
        await self._emit(Say(prompt="done"))

    async def _answer(self, call: ToolCall, result: ToolResult, decision: Decision | None) -> None:
        said = self._language.answer(decision, result) if self._language is not None and decision is not None else None
        say = Say(prompt="done", text=said) if said else say_for_result(result)
        chimed, self._chime = self._chime, None
        if chimed is not None:
            await chimed  # the answer plays after the earcon, never before it
        if chimed is None or say.prompt != "done" or say.text is not None:  # else the earcon was the answer
            await self._emit(say)
        if result.status == "needs_confirmation":
            self._pending = _Pending(call, result.message, decision=decision)
            self._listen(CONFIRM_TIMEOUT_MS, "confirm")

    async def _ask(self, decision: Decision) -> None:
        """Two readings that differ in a risky verb: the user says which, nothing moves before."""
        assert decision.call is not None
        question = f"Did you say {decision.text.rstrip('.?!')}?"
        self._pending = _Pending(decision.call, question, decision=decision)
        await self._emit(Say(prompt="are_you_sure", text=question))
        self._listen(CONFIRM_TIMEOUT_MS, "confirm")

    async def _confirm(self, text: str, utterance: VoiceStopped) -> None:
        pending, self._pending = self._pending, None
        assert pending is not None
        answer = self._yes_or_no(text)
        await self._emit(Transcript(text, utterance.timestamp_ms))
        if answer is True:
            await self._run_tool(pending.call, confirmed=True, at_ms=utterance.timestamp_ms, decision=pending.decision)
        elif answer is None and not pending.asked_again:
            self._pending = _Pending(pending.call, pending.message, pending.decision, asked_again=True)
            await self._emit(Say(prompt="confirm", text=f"Please say yes or no. {pending.message}"))
            self._listen(CONFIRM_TIMEOUT_MS, "confirm")
        elif answer is None:
            await self._emit(Say(prompt="cancelled", text="I didn't hear a clear yes, so I won't."))
        else:
            await self._emit(Say(prompt="cancelled"))

    async def _cloud_turn(self, utterance: VoiceStopped) -> None:
        if self._cloud is None:
            await self._emit(Say(prompt="cloud_unreachable"))
            return
        self._cloud_busy = True
        try:
            outcome = await self._cloud.turn(utterance.audio)
        finally:
            self._cloud_busy = False
        for result in outcome.tool_results:
            await self._emit(result)
        await self._emit(CloudReply(
            outcome.status, outcome.reply_text, outcome.user_text, outcome.played_ms, outcome.code,
            outcome.first_audio_ms,
        ))
        say = outcome.say()
        if say is not None:
            await self._emit(say)
        if outcome.status == "ok" and outcome.followup_s > 0:
            self._listen(round(outcome.followup_s * 1000), "followup")


def end_via(inject: Callable[[Callable[[int], object]], None]) -> Callable[[SpeechPaused, object], None]:
    """Adapt the service's `inject` to the assistant's `end_now(pause, reading)`."""

    def end_now(paused: SpeechPaused, reading: object) -> None:
        inject(lambda at_ms: EndNow(at_ms, paused.timestamp_ms, paused.decided_ms, reading))

    return end_now


def listen_via(inject: Callable[[Callable[[int], object]], None]) -> Callable[[int, str], None]:
    """Adapt the service's `inject` to the assistant's `listen(timeout_ms, reason)`."""

    def listen(timeout_ms: int, reason: str) -> None:
        inject(lambda at_ms: StartListening(at_ms, timeout_ms, reason))

    return listen
