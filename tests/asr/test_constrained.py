"""Constrained decoding: picking the spoken command from a closed list, with a confidence."""

from __future__ import annotations

import numpy as np
import pytest

from device.bench.asr_commands import home_commands
from device.bench.speech import VOICES, mix_at_snr, synthesize
from device.errors import ModelError
from models.asr.constrained import confidences, whisper_style
from models.asr.runner import WhisperOnnx

CANDIDATES = list(home_commands())


@pytest.mark.parametrize(
    ("sentence", "voice", "snr"),
    [
        ("lock the front door", 0, None),  # free transcription gets this one wrong ("like the front door")
        ("set the kitchen light to 25 percent", 4, None),
        ("set the thermostat to 19 degrees", 1, None),
        ("close the bedroom shutters", 5, 10.0),
        ("turn off the hallway light", 2, 10.0),
    ],
)
def test_picks_the_spoken_command(runner: WhisperOnnx, sentence: str, voice: int, snr: float | None) -> None:
    audio = synthesize(sentence, VOICES[voice])
    if snr is not None:
        audio = mix_at_snr(audio, snr, seed=7)
    best, confidence = runner.best(audio, CANDIDATES)
    assert best == sentence
    assert 0.3 < confidence <= 1.0


def _direct(runner: WhisperOnnx, audio: np.ndarray, sentence: str, all_sentences: list[str]) -> float:
    """One candidate teacher-forced in one decoder pass, scored over the same token set."""
    tok = runner.tokenizer
    cross = runner.encode(audio)
    ids = tok.encode(whisper_style(sentence))
    tokens = np.array([[*runner.prompt, *ids]], np.int64)
    hidden, _ = runner.decode(tokens, runner.empty_cache(1), cross)
    ends = [tok.eot, *(tok.token_id(m) for m in ".!?")]
    used = {t for s in all_sentences for t in tok.encode(whisper_style(s))}
    vocab = np.array(sorted(used | set(ends)))
    logits = hidden[0] @ runner.embedding_rows(vocab).T
    logp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    column = {t: i for i, t in enumerate(vocab.tolist())}
    steps = [logp[len(runner.prompt) - 1 + i, column[t]] for i, t in enumerate(ids)]
    end = np.logaddexp.reduce([logp[-1, column[t]] for t in ends])
    return float((sum(steps) + end) / (len(ids) + 1))


SUBSET = ["turn on the office fan", "turn off the office fan", "turn on the office light", "lock the back door"]


def test_prefix_tree_equals_direct_teacher_forcing(float_runner: WhisperOnnx) -> None:
    """Sharing prefixes in batched decoder calls computes exactly the one-pass likelihoods."""
    audio = synthesize("turn on the office fan", VOICES[0])
    together = dict(float_runner.score(audio, SUBSET))
    for sentence in SUBSET:
        assert together[sentence] == pytest.approx(_direct(float_runner, audio, sentence, SUBSET), abs=1e-3)
    assert max(together, key=lambda s: together[s]) == "turn on the office fan"


def test_int8_scores_rank_like_direct_teacher_forcing(runner: WhisperOnnx) -> None:
    audio = synthesize("turn on the office fan", VOICES[0])
    together = dict(runner.score(audio, SUBSET))
    direct = {s: _direct(runner, audio, s, SUBSET) for s in SUBSET}
    assert sorted(SUBSET, key=together.__getitem__) == sorted(SUBSET, key=direct.__getitem__)
    for sentence in SUBSET:
        assert together[sentence] == pytest.approx(direct[sentence], rel=0.25)


def test_order_duplicates_and_edge_cases(runner: WhisperOnnx) -> None:
    audio = synthesize("pause the music", VOICES[0])
    scored = runner.score(audio, ["stop the music", "pause the music", "stop the music"])
    assert [s for s, _ in scored] == ["stop the music", "pause the music", "stop the music"]
    assert scored[0][1] == scored[2][1]
    assert runner.score(audio, []) == []
    with pytest.raises(ModelError):
        runner.best(audio, [])
    with pytest.raises(ModelError, match="no words"):
        runner.score(audio, ["   "])
    with pytest.raises(ModelError, match="too short"):
        runner.score(np.zeros(10, np.float32), ["pause the music"])


def test_confidence_is_a_distribution() -> None:
    probs = confidences([-0.2, -0.3, -2.0])
    assert probs.sum() == pytest.approx(1.0) and probs[0] > probs[1] > probs[2]
    assert confidences([-0.5, -0.5]) == pytest.approx([0.5, 0.5])


def test_whisper_style() -> None:
    assert whisper_style("set the light to 50 percent") == " Set the light to 50%"
    assert whisper_style("  lock the door ") == " Lock the door"
