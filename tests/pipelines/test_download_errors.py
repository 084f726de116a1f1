"""img2dataset's free-text outcomes (as urllib and OpenCV word them) -> status and error_kind."""

import pytest

from pairsmith.pipelines.download_errors import classify


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        ("success", None, ("success", None)),
        (
            "failed_to_download",
            "<urlopen error [Errno -2] Name or service not known>",
            ("failed_to_download", "dns"),
        ),
        (
            "failed_to_download",
            "<urlopen error [Errno -3] Temporary failure in name resolution>",
            ("failed_to_download", "dns"),
        ),
        ("failed_to_download", "HTTP Error 404: Not Found", ("failed_to_download", "http_404")),
        ("failed_to_download", "HTTP Error 503: Service Unavailable", ("failed_to_download", "http_503")),
        (
            "failed_to_download",
            "HTTP Error 302: The HTTP server returned a redirect error that would lead to an infinite loop.",
            ("failed_to_download", "redirect_loop"),
        ),
        ("failed_to_download", "<urlopen error timed out>", ("failed_to_download", "timeout")),
        ("failed_to_download", "The read operation timed out", ("failed_to_download", "timeout")),
        (
            "failed_to_download",
            "<urlopen error [Errno 111] Connection refused>",
            ("failed_to_download", "connection"),
        ),
        ("failed_to_download", "Use of image disallowed by X-Robots-Tag directive", ("blocked", "opt_out")),
        (
            "failed_to_download",
            "<urlopen error private address guard: host 'localhost' resolves to non-public address 127.0.0.1>",
            ("blocked", "private_address"),
        ),
        ("failed_to_resize", "Image decoding error", ("failed_to_decode", "decode")),
        ("failed_to_resize", "image too small", ("rejected_by_resizer", "too_small")),
        ("failed_to_resize", "aspect ratio too large", ("rejected_by_resizer", "aspect_ratio")),
        ("failed_to_download", "something new", ("failed_to_download", "other")),
    ],
)
def test_classify(status, message, expected):
    assert classify(status, message) == expected
