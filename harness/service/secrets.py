"""Keep passwords out of everything the service writes: logs, history, report, metrics.

The service knows its secrets (the passwords in its DSN and enqueue URL);
any text that came from elsewhere (an exception message, a driver's error)
goes through a :class:`Scrubber` before it is logged or recorded: the known
passwords are replaced, and so is any ``scheme://user:password@`` or
``password=…`` the text happens to carry.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"


def password_of(url: str | None) -> str | None:
    """The password part of a URL (decoded), if any."""
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


class Scrubber:
    """Callable: ``text`` with every known and every URL-shaped password masked."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found: set[str] = set()
        for secret in secrets:
            if secret:
                found.add(secret)
        # longest first, so a password containing another is masked whole
        self.secrets = tuple(sorted(found, key=len, reverse=True))

    @classmethod
    def for_urls(cls, *urls: str | None) -> Scrubber:
        secrets: list[str | None] = []
        for url in urls:
            password = password_of(url)
            if password:
                secrets += [password, _raw_password(url)]
        return cls(secrets)

    def __call__(self, text: str) -> str:
        from harness.cli.crash import redact_secrets

        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return redact_secrets(text)


def _raw_password(url: str | None) -> str | None:
    """The password as written in the URL (percent-encoded)."""
    if not url:
        return None
    netloc = urlsplit(url).netloc
    userinfo = netloc.rpartition("@")[0]
    return userinfo.partition(":")[2] or None
