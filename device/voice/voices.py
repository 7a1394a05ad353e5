"""Which voice speaks: the engines, their voices, and the default voice for each language.

Pure data, read by the settings (to validate `[voice]`) and by the factory (to open the voice).
Neural voices exist only where a package carries one offline: both are American English.
hibari's British voices download at run time, so British English falls back to espeak-ng's.
"""

from __future__ import annotations

import re

NEURAL = {"hibari": {"heart": "hibari-heart"}, "piper": {"joe": "piper-joe"}}
"""engine → voice → the bundle's voice name (models.tts.factory.VOICES)."""
FLITE_VOICES = ("slt", "rms", "kal", "awb")
ENGINES = ("auto", "hibari", "piper", "espeak-ng", "flite", "festival", "none")

LANGUAGES: dict[str, tuple[str, str]] = {
    "en-us": ("hibari", "heart"),
    "en-gb": ("espeak-ng", "en-gb"),
}
"""language → (engine, voice) used when `engine = "auto"` (and the voice when `voice` is unset)."""
FALLBACK_VOICE = {"en-us": "en-us", "en-gb": "en-gb"}
"""espeak-ng's voice for the language: what speaks when a neural voice can't."""

_ESPEAK_VOICE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]+)*(\+[a-z0-9]+)?$")


def resolve(engine: str, voice: str, language: str) -> tuple[str, str]:
    """(engine, voice) after defaults; ValueError naming what is wrong."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "auto":
        engine, default = LANGUAGES[language]
        voice = voice or default
    if engine == "none":
        return engine, ""
    if engine in NEURAL:
        voice = voice or next(iter(NEURAL[engine]))
        if voice not in NEURAL[engine]:
            raise ValueError(f"the {engine} engine has the voice(s) {', '.join(NEURAL[engine])}, not {voice!r}")
    elif engine == "espeak-ng":
        voice = voice or FALLBACK_VOICE[language]
        if not _ESPEAK_VOICE.match(voice):
            raise ValueError(f"{voice!r} is not an espeak-ng voice name (e.g. en-us, en-gb, en-us+f3)")
    elif engine == "flite":
        voice = voice or "slt"
        if voice not in FLITE_VOICES:
            raise ValueError(f"flite has the voices {', '.join(FLITE_VOICES)}, not {voice!r}")
    elif engine == "festival":
        voice = voice or "kal_diphone"
        if not re.match(r"^[a-z0-9_]+$", voice):
            raise ValueError(f"{voice!r} is not a festival voice name (e.g. kal_diphone)")
    return engine, voice
