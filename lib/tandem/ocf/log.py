# SPDX-License-Identifier: GPL-2.0-or-later
"""Logging the way HA tools expect, without the cost of the `logging` package.

HA_LOGFACILITY selects syslog, HA_LOGFILE (and HA_DEBUGLOG) a file, HA_debug turns debug on ("0" is off),
and stderr is used when a person runs the agent. Exit reasons are `ocf-exit-reason:` lines on stderr.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

LEVELS = {"debug": 7, "info": 6, "warning": 4, "err": 3, "crit": 2}
FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
FALSE_WORDS = {"", "0", "no", "false", "off", "n", "f"}


def env_true(value: str | None) -> bool:
    """HA conventions: "0", "no", "false", "off" (any case) and empty are false; anything else is true."""
    return value is not None and value.strip().lower() not in FALSE_WORDS


class Logger:
    """Writes each record to every configured sink. Never raises: logging must not fail an action."""

    def __init__(
        self,
        tag: str,
        debug_on: bool = False,
        facility: int | None = None,
        files: tuple[str, ...] = (),
        debug_file: str | None = None,
        stream: TextIO | None = None,
        reason_prefix: str = "ocf-exit-reason:",
    ) -> None:
        self.tag = tag
        self.debug_on = debug_on
        self.facility = facility
        self.files = files
        self.debug_file = debug_file
        self.stream = stream
        self.reason_prefix = reason_prefix
        self.reasons: list[str] = []

    @classmethod
    def from_env(cls, tag: str, env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> Logger:
        env = os.environ if env is None else env
        facility_name = env.get("HA_LOGFACILITY", "").strip().lower()
        facility = FACILITIES.get(facility_name) if facility_name not in ("", "none") else None
        files = tuple(f for f in (env.get("HA_LOGFILE", ""),) if f)
        if stream is None and sys.stderr.isatty():
            stream = sys.stderr
        return cls(
            tag=env.get("HA_LOGTAG") or tag,
            debug_on=env_true(env.get("HA_debug")),
            facility=facility,
            files=files,
            debug_file=env.get("HA_DEBUGLOG") or None,
            stream=stream,
            reason_prefix=env.get("OCF_EXIT_REASON_PREFIX") or "ocf-exit-reason:",
        )

    def log(self, level: str, msg: str) -> None:
        is_debug = level == "debug"
        if is_debug and not self.debug_on:
            return
        body = f"{level.upper()}: {msg}"
        line = f"{self.tag}[{os.getpid()}]: {body}"
        if self.facility is not None:
            self._syslog(LEVELS[level], body)
        stamp = time.strftime("%b %d %H:%M:%S ")
        targets = list(self.files)
        if self.debug_file and (is_debug or not self.files):
            targets.append(self.debug_file)
        for path in dict.fromkeys(targets):
            try:
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(stamp + line + "\n")
            except OSError:
                pass
        if self.stream is not None:
            print(line, file=self.stream, flush=True)

    def _syslog(self, priority: int, body: str) -> None:
        import syslog

        assert self.facility is not None
        syslog.openlog(self.tag, syslog.LOG_PID, self.facility << 3)
        syslog.syslog(priority, body)

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def info(self, msg: str) -> None:
        self.log("info", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def error(self, msg: str) -> None:
        self.log("err", msg)

    def exit_reason(self, reason: str, out: TextIO | None = None) -> None:
        """The one-line reason Pacemaker shows in crm_mon; newlines would break its parser."""
        one_line = " ".join(reason.split())
        self.reasons.append(one_line)
        print(f"{self.reason_prefix}{one_line}", file=out or sys.stderr, flush=True)
        self.log("err", one_line)
