"""Local understanding of home commands: transcript → tool call, "not local", or a clear rejection."""

from device.intent.grammar import candidate_sentences
from device.intent.parser import Decision, Understanding

__all__ = ["Decision", "Understanding", "candidate_sentences"]
