"""The policy never acts on a constrained reading the home's word graph doesn't accept."""

from __future__ import annotations

from device.intent.policy import choose
from tests.home.conftest import demo_language, demo_registry


def test_a_constrained_reading_outside_the_graph_never_acts() -> None:
    language = demo_language(demo_registry())
    graph = language.graph()
    glued = " Turn on the kitchen,light."  # what a search gluing words across punctuation wrote
    assert not graph.accepts(glued) and graph.accepts(" Turn on the kitchen, light.")
    constrained = language.understand("turn on the kitchen light")
    assert constrained.kind == "tool"
    free = language.understand("turn on the kitchen lied")
    # The same readings act when the graph accepts the text, and never when it doesn't.
    assert choose(free, constrained, gap=0.1, accepted=graph.accepts(" Turn on the kitchen, light.")).verdict == "act"
    refused = choose(free, constrained, gap=0.1, accepted=graph.accepts(glued))
    assert refused.verdict == "free" and refused.decision == free and "graph" in refused.reason
    # Even when both readings agree on the call.
    assert choose(constrained, constrained, gap=0.0, accepted=False).verdict == "free"
