"""Debian version ordering exactly as PostgreSQL's ``debversion`` type compares.

The extension compares with libapt-pkg's version comparison, which accepts
any string: it never rejects a version, it orders it. dpkg-style parsers
(python-debian's ``Version``) refuse strings such as ``''``, ``'1:'`` or
``'1_0'``, and order some odd strings (``'-1'``) differently, so the memory
backend cannot use them where the legacy's SQL would have answered. This
module states APT's rules in Python, byte for byte:

* the epoch is everything before the first ``:`` (leading zeros ignored, an
  all-zero epoch is no epoch), the revision everything after the last ``-``
  of the rest, the upstream part what lies between (when that last ``-`` is
  the first character, the upstream part is empty and there is no revision);
* parts compare as alternating runs of non-digits and digits: non-digit
  characters by weight (``~`` lowest, then the end of the part, then
  letters by code, then every other byte above all letters), digit runs by
  numeric value;
* a missing revision compares as ``0`` against a present one, and is equal
  when both are missing.

Checked against the real extension by ``tests/test_legacy_sql.py``, and
against ``apt_pkg`` (python-apt, the same libapt-pkg code) by
``tests/test_debversion.py``. Where ``apt_pkg`` imports (a Debian host with
python3-apt), :func:`compare_versions` calls it instead, about 25 times
faster per uncached comparison; the answer is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

_DIGITS = frozenset(b"0123456789")
_ZERO = ord("0")
_TILDE = ord("~")


def _is_alpha(byte: int) -> bool:
    return 65 <= byte <= 90 or 97 <= byte <= 122


def _weight(byte: int | None) -> int:
    """Sort weight of one byte in a non-digit run; ``None`` is the end of the part."""
    if byte is None or byte in _DIGITS:
        return 0
    if _is_alpha(byte):
        return byte
    if byte == _TILDE:
        return -1
    # Other bytes sort after every letter: ASCII punctuation by code + 256; bytes
    # above 127 (a signed char in C) come out as their unsigned value.
    return byte + 256 if byte < 128 else byte


def compare_part(a: bytes, b: bytes) -> int:
    """Compare one part (epoch, upstream or revision); the sign is the answer."""
    i = j = 0
    end_a, end_b = len(a), len(b)

    def at(s: bytes, k: int) -> int | None:
        return s[k] if k < len(s) else None

    while i < end_a and j < end_b:
        while i < end_a and j < end_b and not (a[i] in _DIGITS and b[j] in _DIGITS):
            diff = _weight(a[i]) - _weight(b[j])
            if diff:
                return diff
            i += 1
            j += 1
        while at(a, i) == _ZERO:
            i += 1
        while at(b, j) == _ZERO:
            j += 1
        first_diff = 0
        while (
            (x := at(a, i)) is not None
            and x in _DIGITS
            and (y := at(b, j)) is not None
            and y in _DIGITS
        ):
            if not first_diff:
                first_diff = x - y
            i += 1
            j += 1
        x, y = at(a, i), at(b, j)
        if x is not None and x in _DIGITS:
            return 1
        if y is not None and y in _DIGITS:
            return -1
        if first_diff:
            return first_diff
    if i >= end_a and j >= end_b:
        return 0
    if i >= end_a:
        return 1 if b[j] == _TILDE else -1
    return -1 if a[i] == _TILDE else 1


def _split(version: bytes) -> tuple[bytes, bytes, bytes | None]:
    """(epoch, upstream, revision or None), as APT cuts a version string."""
    colon = version.find(b":")
    if colon <= 0:  # a leading ':' is no epoch, and stays part of the version
        epoch, rest = b"", version
    else:
        epoch, rest = version[:colon].lstrip(b"0"), version[colon + 1 :]
    hyphen = rest.rfind(b"-")
    if hyphen < 0:
        return epoch, rest, None
    if hyphen == 0:  # APT ends the upstream part there but does not see a revision
        return epoch, b"", None
    return epoch, rest[:hyphen], rest[hyphen + 1 :]


def port_compare_versions(left: str, right: str) -> int:
    """``debversion_cmp(left, right)`` by this module's port: negative, zero or positive."""
    epoch_a, upstream_a, revision_a = _split(left.encode("utf-8", "surrogatepass"))
    epoch_b, upstream_b, revision_b = _split(right.encode("utf-8", "surrogatepass"))
    result = compare_part(epoch_a, epoch_b)
    if result:
        return result
    result = compare_part(upstream_a, upstream_b)
    if result:
        return result
    if revision_a is None and revision_b is None:
        return 0
    # An absent revision is "0"; an empty one ("1.0-") is empty.
    return compare_part(
        b"0" if revision_a is None else revision_a, b"0" if revision_b is None else revision_b
    )


def _apt_pkg_compare() -> Callable[[str, str], int] | None:
    """``apt_pkg.version_compare`` when python-apt imports and initialises, else ``None``."""
    try:
        import apt_pkg  # type: ignore[import-not-found,unused-ignore]

        apt_pkg.init_system()
        compare: Callable[[str, str], int] = apt_pkg.version_compare
        if compare("1.0~rc1", "1.0") >= 0:  # a sanity check of the library's state
            return None
    except Exception:
        return None
    return compare


_APT_PKG = _apt_pkg_compare()


@cache
def compare_versions(left: str, right: str) -> int:
    """``debversion_cmp(left, right)``: negative, zero or positive; never raises.

    libapt-pkg itself when python-apt is importable, else the port; a string
    holding NUL (which PostgreSQL's text cannot) or a lone surrogate (which
    has no UTF-8 bytes) always goes to the port.
    """
    if _APT_PKG is not None and left.isprintable() and right.isprintable():
        return _APT_PKG(left, right)
    return port_compare_versions(left, right)
