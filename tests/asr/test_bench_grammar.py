"""The speech benchmark's test commands come from the demo home's real grammar."""

from __future__ import annotations

from device.bench.asr_commands import candidate_pool, command_kind, demo_grammar, seeded_sample


def test_sample_is_seeded_drawn_from_grammar_and_covers_every_kind() -> None:
    grammar = demo_grammar()
    sample = seeded_sample(grammar, 60, seed=7)
    assert len(sample) == 60 and len(set(sample)) == 60
    assert set(sample) <= set(grammar)
    assert {command_kind(s) for s in sample} == {command_kind(s) for s in grammar}
    assert any(s.startswith("lock ") for s in sample) and any(s.startswith("unlock ") for s in sample)
    assert sample == seeded_sample(grammar, 60, seed=7)
    assert sample != seeded_sample(grammar, 60, seed=8)


def test_timing_pool_extends_the_real_grammar_to_500_distinct_sentences() -> None:
    grammar = demo_grammar()
    pool = candidate_pool(500, grammar)
    assert len(pool) == 500 == len(set(pool))
    assert pool[: len(grammar)] == grammar
    assert candidate_pool(100, grammar) == grammar[:100]
