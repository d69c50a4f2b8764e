"""The parent's side of a measuring worker: a child Python process answering JSON lines on stdout.

`levit bench` and `levit tradeoff` run each backend or runtime in a worker of its own, whose thread counts are
fixed in its environment before anything is imported. A worker writes each answer as one line that starts with
the channel's mark (libraries may print on stdout too); the parent writes requests as JSON lines on stdin.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

# A pause before each timing request, so the previous worker's idle threads have stopped spinning: OpenBLAS's
# workers spin ~0.1 s after a call (2^28 cycles), ONNX Runtime's and OpenMP's shorter. Without it the worker timed
# next shared the cores with them: `levit bench`, numba at batch 1, 2 threads, timed after numpy: 14.7 ms (IQR
# 8.9-15.6) against 12.1 (IQR 11.6-12.6) with the pause.
SETTLE_SECONDS = 0.3


class WorkerChannel:
    """`python -m MODULE ARGS...` with its JSON-line channel. A worker that exits answers
    `{"ready": False, "error": "worker exited: <its last stderr line>"}` instead of raising."""

    def __init__(self, module: str, args: list[str], env: dict, mark: str):
        self.mark = mark
        self.process = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)

    def receive(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(self.mark):
                return json.loads(line[len(self.mark):])
        tail = self.process.stderr.read().strip().splitlines()[-1:] if self.process.stderr else []
        return {"ready": False, "error": f"worker exited: {' '.join(tail) or 'no message'}"}

    def ask(self, request: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError:
            pass  # the worker has gone: receive() reports its last words
        return self.receive()

    def measure(self, request: dict) -> dict:
        """`ask` a timing request, after SETTLE_SECONDS of quiet for the cores."""
        time.sleep(SETTLE_SECONDS)
        return self.ask(request)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"quit": True}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
