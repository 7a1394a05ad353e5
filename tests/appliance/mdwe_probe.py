"""Run the real models with writable+executable memory refused, as MemoryDenyWriteExecute=yes would.

PR_SET_MDWE (Linux >= 6.3) makes the kernel refuse any mapping that is, or later becomes, both
writable and executable — the same rule systemd's seccomp filter enforces. Prints one line per model.
"""

from __future__ import annotations

import ctypes
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("mdwe unsupported", ctypes.get_errno())
        return 3
    import mmap

    try:  # the control: the rule is really enforced in this process
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        print("w+x mapping allowed: not enforced")
        return 4
    except OSError:
        print("w+x refused")
    import numpy as np

    from device.settings import WakeWordSettings
    from models.vad import SileroVad
    from models.wake import WakeWordDetector, resolve_word

    noise = (np.random.default_rng(0).normal(0, 0.05, 32000) * 32767).astype(np.int16).tobytes()
    vad = SileroVad.from_builtin()
    print("vad ok", len(vad.process_streaming(noise)))
    words = [resolve_word(WakeWordSettings(m)) for m in ("okay_nabu", "oww:hey_jarvis")]
    wake = WakeWordDetector(words)
    for start in range(0, len(noise), 320):
        wake.process_streaming(noise[start : start + 320], start // 32)
    print("wake ok", ",".join(wake.words))
    if len(sys.argv) > 1:
        from pathlib import Path

        from models.asr.runner import WhisperOnnx

        asr = WhisperOnnx.load(Path(sys.argv[1]))
        text, _ = asr.transcribe(np.zeros(16000, dtype=np.float32))
        print("asr ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
