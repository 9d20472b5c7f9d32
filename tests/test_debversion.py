"""One Debian version ordering: the project's APT port, apt_pkg and python-debian agree.

``engines.legacy.debversion`` is the port of libapt-pkg's comparison (what
PostgreSQL's ``debversion`` calls); ``compare_versions`` uses ``apt_pkg`` as
a fast path where python-apt imports. The port is held to ``apt_pkg``
itself: in this interpreter when it imports, else through Debian's system
``python3`` when that has it; only that half is skipped when neither has.
On versions dpkg accepts, it is also held to python-debian's public
``version_compare`` (its own implementation, or apt_pkg's, whichever it built on).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from debian.debian_support import Version, version_compare
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.legacy import debversion
from engines.legacy.debversion import compare_versions, port_compare_versions
from engines.new.dependencies import valid_version, version_satisfies

SYSTEM_PYTHON = "/usr/bin/python3"
_ORACLE = (
    "import apt_pkg, json, sys\n"
    "apt_pkg.init_system()\n"
    "pairs = json.load(sys.stdin)\n"
    "print(json.dumps([apt_pkg.version_compare(a, b) for a, b in pairs]))\n"
)


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _apt_pkg_batch() -> Callable[[list[tuple[str, str]]], list[int]] | None:
    """A function comparing pairs with libapt-pkg, or ``None`` where none is reachable."""
    try:
        import apt_pkg  # type: ignore[import-not-found,unused-ignore]

        apt_pkg.init_system()
        return lambda pairs: [apt_pkg.version_compare(a, b) for a, b in pairs]
    except Exception:
        pass

    def system(pairs: list[tuple[str, str]]) -> list[int]:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-I", "-c", _ORACLE],
            input=json.dumps(pairs),
            capture_output=True,
            text=True,
            check=True,
        )
        result: list[int] = json.loads(done.stdout)
        return result

    try:
        system([("1.0", "1.0~")])
    except (OSError, subprocess.CalledProcessError):
        return None
    return system


APT_PKG = _apt_pkg_batch()

#: Realistic versions, odd strings APT still orders, and any printable text.
DEBIAN_VERSIONS = st.builds(
    lambda epoch, upstream, revision: f"{epoch}{upstream}{revision}",
    st.sampled_from(["", "", "1:", "2:", "01:", "0:"]),
    st.from_regex(r"\A[0-9][0-9a-zA-Z.+~:-]{0,8}\Z", fullmatch=True),
    st.sampled_from(["", "-1", "-1~bpo1", "-0.1", "-2+b1", "-1.1", "-", "-a"]),
)
ANY_VERSIONS = st.one_of(
    DEBIAN_VERSIONS,
    st.text(alphabet="0123456789abzAZ.+-~:_ é!%", max_size=10),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6),
    st.sampled_from(["", "-1", "1:", ":1", "0:1", "00:1.0", "01:1.0", "1.0-", "1:-1", "a:1"]),
)


def dpkg_valid(text: str) -> bool:
    """python-debian accepts it and dpkg would too: no empty upstream part nor revision.

    python-debian also accepts ``1.0-`` and ``1:-1``, which dpkg refuses; on
    those APT's ordering and python-debian's differ, and the new engine
    follows APT's (the one ordering of this project)."""
    try:
        Version(text)
    except ValueError:
        return False
    rest = text.split(":", 1)[1] if ":" in text else text
    return not text.endswith("-") and not rest.startswith("-")


PAIRS = st.lists(st.tuples(ANY_VERSIONS, ANY_VERSIONS), min_size=50, max_size=200)


@pytest.mark.skipif(APT_PKG is None, reason="no apt_pkg here nor in the system python3")
@settings(max_examples=40, deadline=None)
@given(PAIRS)
def test_port_agrees_with_apt_pkg(pairs: list[tuple[str, str]]) -> None:
    assert APT_PKG is not None
    expected = APT_PKG(pairs)
    for (left, right), answer in zip(pairs, expected, strict=True):
        assert sign(port_compare_versions(left, right)) == sign(answer), (left, right)
        # The fast path, whichever this interpreter takes, says the same.
        assert sign(compare_versions(left, right)) == sign(answer), (left, right)


@settings(max_examples=400, deadline=None)
@given(DEBIAN_VERSIONS, DEBIAN_VERSIONS)
def test_port_agrees_with_python_debian_on_valid_versions(left: str, right: str) -> None:
    if not (valid_version(left) and valid_version(right)):
        assert not version_satisfies(left, "=", right)
        return
    if not (dpkg_valid(left) and dpkg_valid(right)):
        return
    expected = sign(version_compare(left, right))
    assert sign(port_compare_versions(left, right)) == expected
    assert sign(compare_versions(left, right)) == expected
    assert version_satisfies(left, "<<", right) == (expected < 0)
    assert version_satisfies(left, "=", right) == (expected == 0)


def test_no_private_python_debian_names_are_used() -> None:
    """python-debian built on apt_pkg has no ``_order`` nor ``re_all_digits_or_not``."""
    from pathlib import Path

    import engines.new.dependencies as deps

    source = Path(deps.__file__).read_text(encoding="utf-8") + Path(debversion.__file__).read_text(
        encoding="utf-8"
    )
    for private in ("._order", "re_all_digits_or_not", "re_valid_version", "._compare"):
        assert private not in source


def test_janitor_shadow_starts_with_debians_system_packages_on_the_path() -> None:
    """python-debian on apt_pkg (Debian's site-packages first): ``--help`` must still work."""
    from pathlib import Path

    system_site = Path("/usr/lib/python3/dist-packages")
    if not (system_site / "apt_pkg-stubs").exists() and not list(system_site.glob("apt_pkg*.so")):
        pytest.skip("no Debian python3-apt here")
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(system_site)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import engines.new.dependencies as d, engines.legacy.debversion as v;"
            "print(d.version_satisfies('1.0-1', '<<', '1.0-2'), v._APT_PKG is not None)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
