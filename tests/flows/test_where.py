"""`select --where` is read by an ast walk that cannot run code: attacks are refused before anything runs,
and the README's filters give what polars gives."""

import json
import re
from pathlib import Path

import polars as pl
import pytest

from pairsmith.flows.cli import main
from pairsmith.flows.select import SelectionError, parse_where

FRAME = pl.DataFrame(
    {
        "uid": ["u0", "u1", "u2", "u3", "u4"],
        "tar": pl.Series([None] * 5, dtype=pl.String),
        "member": pl.Series([None] * 5, dtype=pl.String),
        "status": ["success", "success", "failed_to_download", "success", None],
        "width": [64, 32, 0, 640, None],
        "lang": ["en", "fr", None, "en", "en"],
        "lang_score": [0.95, 0.5, None, 0.99, 0.2],
        "clip_score": [0.3, 0.27, None, 0.25, 0.29],
        "datacomp_basic_ok": [True, False, None, True, False],
        "is_duplicate": [False, True, None, False, False],
        "dup_image_group": ["a", "a", None, None, "b"],
        "caption": ["a dog", "Dog park", None, "cat", "hot dog"],
        "duplicate_kinds": [[], ["image"], None, [], ["exact", "image"]],
    }
)

# (text, the polars expression it must mean): README and --help examples, then the rest of the grammar
SAME = [
    ('pl.col("status") == "success"', pl.col("status") == "success"),
    (
        '(pl.col("status") == "success") & (pl.col("width") >= 64)',
        (pl.col("status") == "success") & (pl.col("width") >= 64),
    ),
    (
        'pl.col("datacomp_basic_ok") & (pl.col("lang_score") > 0.9)',
        pl.col("datacomp_basic_ok") & (pl.col("lang_score") > 0.9),
    ),
    ('pl.col("dup_image_group").is_not_null()', pl.col("dup_image_group").is_not_null()),
    ('~pl.col("is_duplicate")', ~pl.col("is_duplicate")),
    (
        '(pl.col("status") == "success") & ~pl.col("is_duplicate")',
        (pl.col("status") == "success") & ~pl.col("is_duplicate"),
    ),
    (
        'col("clip_score") >= pl.when(col("lang") == "en").then(0.28).otherwise(lit(0.26))',
        pl.col("clip_score") >= pl.when(pl.col("lang") == "en").then(0.28).otherwise(0.26),
    ),
    ('pl.col("status").is_in(["success", "blocked"])', pl.col("status").is_in(["success", "blocked"])),
    (
        'pl.col("lang_score").is_between(0.2, 0.95, closed="left") | pl.col("lang").is_null()',
        pl.col("lang_score").is_between(0.2, 0.95, closed="left") | pl.col("lang").is_null(),
    ),
    (
        'pl.col("caption").str.to_lowercase().str.contains("dog", literal=True)',
        pl.col("caption").str.to_lowercase().str.contains("dog", literal=True),
    ),
    (
        'pl.col("caption").str.starts_with("a") | (pl.col("caption").str.len_chars() > 5)',
        pl.col("caption").str.starts_with("a") | (pl.col("caption").str.len_chars() > 5),
    ),
    (
        'pl.col("duplicate_kinds").list.contains("image") & (pl.col("duplicate_kinds").list.len() == 1)',
        pl.col("duplicate_kinds").list.contains("image") & (pl.col("duplicate_kinds").list.len() == 1),
    ),
    (
        '(pl.col("width").cast(pl.Float64) * -2 + 10) // 3 % 7 - (pl.col("width") / 4).abs() < 1.5',
        (pl.col("width").cast(pl.Float64) * -2 + 10) // 3 % 7 - (pl.col("width") / 4).abs() < 1.5,
    ),
    ('pl.col("clip_score").fill_null(0).round(1) != 0.3', pl.col("clip_score").fill_null(0).round(1) != 0.3),
    ("pl.lit(True)", pl.lit(True)),
]


def _mask(expr: pl.Expr) -> list:
    return FRAME.select(expr.fill_null(False).alias("keep"))["keep"].to_list()


@pytest.mark.parametrize(("text", "expected"), SAME, ids=[t for t, _ in SAME])
def test_the_grammar_means_what_polars_means(text, expected):
    assert _mask(parse_where(text)) == _mask(expected)


def test_every_where_example_of_the_readme_and_the_cli_parses():
    here = Path(__file__).resolve().parents[2]
    texts = re.findall(
        r"ds\.filter\((.+?)\)(?:\.select|\.group_by|\.collect)", (here / "README.md").read_text()
    )
    texts += re.findall(r"--where '([^']+)'", (here / "README.md").read_text())
    assert len(texts) >= 3
    for text in texts:
        if not re.fullmatch(r"[A-Z ]+", text):  # a placeholder such as FILTER
            assert isinstance(parse_where(text), pl.Expr), text


ATTACKS = [
    "pl.__builtins__['__import__']('os').system('touch {marker}')",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]()"
    "._module.__builtins__['__import__']('os').system('touch {marker}')",
    "().__class__.__base__.__subclasses__()",
    "pl.col('a').__class__.__init__.__globals__['os'].system('touch {marker}')",
    "pl.read_csv('{marker}')",
    "pl.col('a').map_elements(lambda v: __import__('os').system('touch {marker}'))",
    "col('a').str.__class__",
    "getattr(pl, 'col')('a')",
    "pl.col(*['a'])",
    "pl.col('a').is_in(**{{'other': [1]}})",
    "[1] * 10",
    "'x' * 1000000000",
    "1 < pl.col('a') < 3",
    "pl.col('a') and pl.col('b')",
    "not pl.col('a')",
    "pl.col('a') ** 2",
    "pl.col('a')[0]",
    "pl.when(pl.col('a'))",
    "pl.col('a').alias('b')",
    "f'{{1}}'",
    "pl.col(",
    "(" * 5000 + "1" + ")" * 5000,
    "x" * 20_000,
]


@pytest.mark.parametrize("attack", ATTACKS, ids=range(len(ATTACKS)))
def test_anything_outside_the_grammar_is_refused_before_it_runs(attack, tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(SelectionError, match="cannot parse --where") as error:
        parse_where(attack.format(marker=marker))
    assert "\n" not in str(error.value)
    assert not marker.exists()


@pytest.fixture
def output(tmp_path) -> Path:
    """A minimal output folder: FRAME as its one data shard, and a manifest."""
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    FRAME.write_parquet(out / "data" / "s0.parquet")
    (out / "manifest.json").write_text(json.dumps({"output_rows": FRAME.height}))
    return out


def _one_line_error(capsys, message: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err


def test_the_cli_refuses_an_attack_in_one_line_and_runs_nothing(output, tmp_path, capsys):
    marker = tmp_path / "pwned"
    attack = ATTACKS[0].format(marker=marker)
    assert main(["select", str(output), "--where", attack, "--out", str(tmp_path / "subset")]) == 2
    _one_line_error(capsys, "cannot parse --where")
    assert not marker.exists() and not (tmp_path / "subset").exists()


def test_a_filter_that_is_not_true_or_false_per_row_is_one_line_and_a_constant_holds_for_all(
    output, tmp_path, capsys
):
    assert main(["select", str(output), "--where", 'pl.col("width")', "--out", str(tmp_path / "a")]) == 2
    _one_line_error(capsys, "the selection failed")
    keep_all = ["--where", "pl.lit(True)", "--keep-duplicates", "--out", str(tmp_path / "b")]
    assert main(["select", str(output), *keep_all]) == 0
    assert pl.read_parquet(tmp_path / "b" / "data" / "*.parquet").equals(FRAME)
