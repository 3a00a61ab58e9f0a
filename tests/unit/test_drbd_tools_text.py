# SPDX-License-Identifier: GPL-2.0-or-later
"""What the DRBD agent reads on every monitor is parsed with str operations, not `re` (whose import costs the
monitor milliseconds): the module version, the configuration's includes and their glob. Each is checked
against the regex or fnmatch it replaced, over generated inputs."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tandem.drbd.tools import Version, config_key, find_version, glob_match, includes

VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
INCLUDE = re.compile(r'^\s*include\s+"?([^";\s]+)"?\s*;', re.MULTILINE)


def by_regex(text: str) -> Version | None:
    match = VERSION.search(text)
    return Version(*(int(g) for g in match.groups())) if match else None


@given(st.text(alphabet="0123456789..x -:()\u0663", max_size=30) | st.text())
def test_versions_are_found_as_the_regex_found_them(text: str) -> None:
    assert find_version(text) == by_regex(text)


def test_version_lines() -> None:
    assert find_version("version: 9.2.4 (api:2/proto:86-122)") == Version(9, 2, 4)
    assert Version.parse("8.4.11") == Version(8, 4, 11) and str(Version(10, 0, 0)) == "10.0.0"


CONF_WORDS = st.sampled_from(
    [
        "include",
        "includes",
        ' "',
        '"',
        ";",
        " ",
        "\n",
        "\t",
        "/etc/drbd.d/*.res",
        "r0.res",
        "#",
        "x",
        "resource",
    ]
)


@given(st.lists(CONF_WORDS, max_size=14).map("".join))
def test_includes_are_read_as_the_regex_read_them(text: str) -> None:
    assert includes(text) == INCLUDE.findall(text)


def test_includes_of_a_drbd_conf() -> None:
    text = 'include "drbd.d/global_common.conf";\n  include /etc/drbd.d/*.res ;\n# include "no.res";\n'
    assert includes(text) == ["drbd.d/global_common.conf", "/etc/drbd.d/*.res"]


NAMES = st.text(alphabet="ab.*?", max_size=8)


@given(NAMES, NAMES)
def test_globs_match_as_fnmatch_does(name: str, pattern: str) -> None:
    assert glob_match(name, pattern) == fnmatch.fnmatchcase(name, pattern)


def test_the_config_key_follows_every_included_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "r0.res").write_text("resource r0 {}\n")
    (tmp_path / "d" / "notes.txt").write_text("")
    conf = tmp_path / "drbd.conf"
    conf.write_text(f'include "{tmp_path}/d/*.res";\n')
    key = config_key(str(conf))
    assert key is not None and "r0.res" in key and "notes.txt" not in key
    (tmp_path / "d" / "r1.res").write_text("resource r1 {}\n")
    assert config_key(str(conf)) != key
    conf.write_text(f'include "{tmp_path}/d/r[01].res";\n')
    assert config_key(str(conf)) is None  # a [set] is not matched here: no cache, drbdadm dump each time
    os.unlink(conf)
    assert config_key(str(conf)) is None
