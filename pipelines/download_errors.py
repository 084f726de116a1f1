"""Turn img2dataset's free-text outcomes into pairsmith's `status` and a machine-readable `error_kind`."""

from __future__ import annotations

import re

from pairsmith.pipelines.address_guard import GUARD_MARKER

# (pattern in the error text, status, error_kind); first match wins.
_RULES: tuple[tuple[str, str, str], ...] = (
    (GUARD_MARKER, "blocked", "private_address"),
    ("X-Robots-Tag", "blocked", "opt_out"),
    (
        r"Name or service not known|Temporary failure in name resolution|nodename nor servname|"
        r"No address associated with hostname|getaddrinfo failed|\[Errno -[235]\]",
        "failed_to_download",
        "dns",
    ),
    (r"infinite loop|redirect error", "failed_to_download", "redirect_loop"),
    (r"timed out|timeout", "failed_to_download", "timeout"),
    (
        r"Connection refused|Connection reset|Remote end closed|RemoteDisconnected|Network is unreachable",
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
        kind = _RESIZER_REJECTIONS.get(text)
        return ("rejected_by_resizer", kind) if kind else ("failed_to_decode", "decode")
    http = re.search(r"HTTP Error (\d{3})", text)
    for pattern, status, kind in _RULES:
        if re.search(pattern, text):
            return status, kind
    if http:
        return "failed_to_download", f"http_{http.group(1)}"
    return "failed_to_download", "other"
