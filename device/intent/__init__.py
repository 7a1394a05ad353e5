"""Local understanding of home commands: hassil over the home's sentence templates (language.py)."""

from device.intent.decision import Decision, Meaning
from device.intent.language import HomeLanguage

__all__ = ["Decision", "HomeLanguage", "Meaning"]
