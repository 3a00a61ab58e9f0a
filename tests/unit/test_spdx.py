# SPDX-License-Identifier: GPL-2.0-or-later
"""Every source file carries the SPDX line of the license in LICENSE and setup.cfg (tools/spdx.py adds it)."""

from __future__ import annotations

from tools.spdx import TAG, has_line, source_files, with_line

from tests.conftest import TOP


def test_license_matches_setup_cfg():
    assert "license = GPL-2.0-or-later" in (TOP / "setup.cfg").read_text()
    text = (TOP / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 2, June 1991" in text
    assert TAG.endswith("GPL-2.0-or-later")


def test_every_source_file_has_the_spdx_line():
    files = source_files()
    rel = {str(p.relative_to(TOP)) for p in files}
    assert {"agents/drbd", "lib/tandem/cli.py", "lab/guest/guest.c", "debian/rules", "run"} <= rel
    assert not any(r.startswith("tests/unit/data/") for r in rel)
    missing = sorted(str(p.relative_to(TOP)) for p in files if not has_line(p.read_text()))
    assert missing == [], (
        f"run python3 tools/spdx.py: {len(missing)} files lack the SPDX line, e.g. {missing[:5]}"
    )


def test_the_line_goes_first_or_after_the_shebang_once():
    assert with_line('"""doc"""\n', "a.py") == f'# {TAG}\n"""doc"""\n'
    script = "#!/usr/bin/python3\nimport os\n"
    added = with_line(script, "drbd")
    assert added == f"#!/usr/bin/python3\n# {TAG}\nimport os\n"
    assert with_line(added, "drbd") == added
    assert with_line("int x;\n", "guest.c") == f"/* {TAG} */\nint x;\n"
    assert has_line(with_line("", "empty.py"))
