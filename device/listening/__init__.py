"""Listening: the front end (wake word, VAD), the pure pipeline and the end-of-speech segmenter."""
