"""Runs the OTA agent in child processes that the power-cut test SIGKILLs.

Started once per test (imports paid once), it reads one command per line on stdin:
`apply <state_dir> <url> <root_file> <kill_step or ->` forks a child that prints `PID n`, then
`STEP name` at every step boundary of `Agent.apply()` (killing itself with SIGKILL at
`kill_step`), then `DONE <state>`. The parent reaps it and prints `EXIT <signal or code>`.
Forking from this single-threaded process gives each trial a fresh agent process in
milliseconds instead of a Python start-up per trial.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from ota.agent import Agent, AgentConfig


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def child(state: Path, url: str, root: bytes, kill_step: str) -> None:
    _say(f"PID {os.getpid()}")

    def on_step(step: str) -> None:
        _say(f"STEP {step}")
        if step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)

    config = AgentConfig(state_dir=state, repository_url=url, trusted_root=root, kinds=("vad",),
                         metadata_dir=state.parent / (state.name + "-tuf"), disk_margin_bytes=0)
    results = Agent(config, on_step=on_step).apply()
    _say("DONE " + ",".join(str(r["state"]) for r in results))


def main() -> int:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] != "apply" or len(words) != 5:
            _say(f"ERROR bad command {line.strip()!r}")
            continue
        pid = os.fork()
        if pid == 0:
            try:
                child(Path(words[1]), words[2], Path(words[3]).read_bytes(), words[4])
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _say(f"EXIT {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
