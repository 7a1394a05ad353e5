"""Hardware edges: microphone, speaker, LEDs, buttons behind small interfaces."""
