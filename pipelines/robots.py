"""robots.txt: each origin's rules, fetched once per opener (one opener per shard) and kept for it.

A URL that its origin's robots.txt disallows for `download.user_agent_token` is refused before any
request is sent to it (`RobotsDisallowed`; status `blocked`, error_kind `opt_out`). The rules are read
with `urllib.robotparser`. A robots.txt that cannot be had counts as "no rules" (allow): any HTTP
error status (4xx as RFC 9309 says; 5xx too, where the RFC would assume "disallow all"), a refused
or failed connection, the private-address guard, the deadline or the byte limit.
"""

from __future__ import annotations

import http.client
import logging
import threading
import urllib.error
import urllib.parse
import urllib.robotparser
from collections.abc import Callable

ROBOTS_KEY = "download.respect_robots_txt"
log = logging.getLogger(__name__)


class RobotsDisallowed(urllib.error.URLError):
    """The URL's robots.txt disallows it for our user agent."""


class _Origin:
    def __init__(self):
        self.lock = threading.Lock()
        self.loaded = False
        self.rules: urllib.robotparser.RobotFileParser | None = None


class RobotsRules:
    """robots.txt rules per origin (scheme, host, port); `load(url)` returns a robots.txt's bytes."""

    def __init__(self, load: Callable[[str], bytes], user_agent: str):
        self._load, self._agent = load, user_agent
        self._origins: dict[str, _Origin] = {}
        self._lock = threading.Lock()
        self._loading = threading.local()  # requests made while loading robots.txt are not checked

    def check(self, url: str) -> None:
        """Raise `RobotsDisallowed` if `url` may not be fetched."""
        parts = urllib.parse.urlsplit(url)
        if getattr(self._loading, "active", False) or parts.scheme not in ("http", "https"):
            return
        origin = f"{parts.scheme}://{parts.netloc}"
        rules = self._rules(origin)
        if rules is not None and not rules.can_fetch(self._agent, url):
            raise RobotsDisallowed(
                f"robots.txt of {origin} disallows this URL for user agent {self._agent!r} ({ROBOTS_KEY})"
            )

    def _rules(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        with self._lock:
            entry = self._origins.setdefault(origin, _Origin())
        with entry.lock:  # the other threads that want this origin wait for the one fetch
            if not entry.loaded:
                entry.rules, entry.loaded = self._fetch(origin), True
        return entry.rules

    def _fetch(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        self._loading.active = True
        try:
            body = self._load(f"{origin}/robots.txt")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            log.debug("no robots.txt rules for %s: %s", origin, exc)
            return None
        finally:
            self._loading.active = False
        rules = urllib.robotparser.RobotFileParser()
        rules.parse(body.decode("utf-8", errors="replace").splitlines())
        return rules
