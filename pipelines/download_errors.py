"""Turn img2dataset's free-text outcomes into pairsmith's `status` and a machine-readable `error_kind`.

The fetch policy's own refusals name their marker or config key in the message, so they are told
apart here: `scheme`, `private_address` and `opt_out` (robots.txt or X-Robots-Tag) are `blocked`;
`deadline` and `too_large` are failed downloads; too many pixels is `failed_to_decode / too_large`.
"""

from __future__ import annotations

import re

from pairsmith.pipelines.address_guard import GUARD_MARKER
from pairsmith.pipelines.fetch_limits import DEADLINE_KEY, MAX_BYTES_KEY
from pairsmith.pipelines.fetch_policy import SCHEME_MARKER
from pairsmith.pipelines.robots import ROBOTS_KEY

PIXELS_KEY = "download.max_image_pixels"
X_ROBOTS_TAG = "X-Robots-Tag"

# (pattern in the error text, status, error_kind); first match wins.
_RULES: tuple[tuple[str, str, str], ...] = (
    (re.escape(GUARD_MARKER), "blocked", "private_address"),
    (re.escape(SCHEME_MARKER), "blocked", "scheme"),
    (re.escape(ROBOTS_KEY), "blocked", "opt_out"),
    (re.escape(X_ROBOTS_TAG), "blocked", "opt_out"),
    (re.escape(DEADLINE_KEY), "failed_to_download", "deadline"),
    (re.escape(MAX_BYTES_KEY), "failed_to_download", "too_large"),
    (
        r"Name or service not known|Temporary failure in name resolution|nodename nor servname|"
        r"No address associated with hostname|getaddrinfo failed|\[Errno -[235]\]",
        "failed_to_download",
        "dns",
    ),
    (r"infinite loop|redirect error", "failed_to_download", "redirect_loop"),
    (r"timed out|timeout", "failed_to_download", "timeout"),
    (
        r"Connection refused|Connection reset|Connection aborted|Remote end closed|RemoteDisconnected|"
        r"Network is unreachable|No route to host|IncompleteRead|Broken pipe",
        "failed_to_download",
        "connection",
    ),
    (r"SSL|CERTIFICATE", "failed_to_download", "tls"),
    (r"unknown url type|no host given", "invalid_input", "invalid_url"),
)
_RESIZER_REJECTIONS = {
    "image too small": "too_small",
    "image area too large": "too_large_area",
    "aspect ratio too large": "aspect_ratio",
}


def classify(img2dataset_status: str, message: str | None) -> tuple[str, str | None]:
    """(status, error_kind) for one row of img2dataset's output."""
    if img2dataset_status == "success":
        return "success", None
    text = message or ""
    if img2dataset_status == "failed_to_resize":
        if PIXELS_KEY in text:
            return "failed_to_decode", "too_large"
        kind = _RESIZER_REJECTIONS.get(text)
        return ("rejected_by_resizer", kind) if kind else ("failed_to_decode", "decode")
    http = re.search(r"HTTP Error (\d{3})", text)
    for pattern, status, kind in _RULES:
        if re.search(pattern, text):
            return status, kind
    if http:
        return "failed_to_download", f"http_{http.group(1)}"
    return "failed_to_download", "other"


def opt_out_source(message: str | None) -> str:
    """Which opt-out blocked a row of error_kind `opt_out`: `robots_txt` or `x_robots_tag`."""
    return "x_robots_tag" if X_ROBOTS_TAG in (message or "") else "robots_txt"
