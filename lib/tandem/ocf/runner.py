"""The one seam for side effects: running commands, with timeouts, never through a shell.

Agents take a Runner; tests hand them a fake with the same `run` signature.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tandem.ocf.deadline import Deadline, DeadlineExceeded


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def describe(self) -> str:
        """One line for logs and exit reasons: the command, its code and the last line it printed."""
        last = (self.err.strip() or self.out.strip()).splitlines()
        tail = f": {last[-1]}" if last else ""
        return f"{' '.join(self.argv)} exited {self.rc}{tail}"


class CommandTimeout(DeadlineExceeded):
    """A command ran out of its time budget and was killed."""


class CommandMissing(Exception):
    """The program does not exist on this node."""


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result: ...


@dataclass
class ProcessRunner:
    """Runs real commands; a timeout never exceeds what is left of the deadline."""

    deadline: Deadline | None = None
    # Reserved for whatever the caller still has to do after the command (e.g. reporting).
    keep: float = 0.0

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        if self.deadline is not None:
            timeout = self.deadline.budget(timeout, keep=self.keep)
        full_env = None if env is None else {**os.environ, **env}
        try:
            proc = subprocess.run(  # argv list, never a shell
                list(argv),
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=full_env,
                check=False,
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise CommandMissing(f"{argv[0]}: not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeout(f"{' '.join(argv)} timed out after {timeout:.1f}s") from exc
        return Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
