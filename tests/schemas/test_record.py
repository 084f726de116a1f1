from pathlib import Path

import pyarrow as pa
import pytest

from pairsmith.schemas.record import (
    FIELDS,
    SchemaMismatchError,
    readme_tables,
    record_schema,
    validate_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def _valid_table(status: str = "success") -> pa.Table:
    schema = record_schema()
    return pa.table(
        {f.name: pa.array([status if f.name == "status" else None], f.type) for f in FIELDS}, schema=schema
    )


def test_valid_table_passes():
    validate_table(_valid_table())


def test_wrong_type_missing_column_and_bad_status_fail_loudly():
    table = _valid_table()
    with pytest.raises(SchemaMismatchError, match="width"):
        validate_table(table.set_column(table.schema.get_field_index("width"), "width", pa.array(["1"])))
    with pytest.raises(SchemaMismatchError, match="missing"):
        validate_table(table.drop_columns(["phash"]))
    with pytest.raises(SchemaMismatchError, match="unknown status"):
        validate_table(_valid_table("ok-ish"))


def test_extra_input_columns_follow_the_core_ones():
    schema = record_schema(extra=pa.schema([("license", pa.string()), ("url", pa.string())]))
    assert schema.names[-1] == "license"
    assert schema.names.count("url") == 1


def test_readme_tables_are_generated_from_the_code():
    text = README.read_text()
    for name, table in readme_tables().items():
        assert f"<!-- {name}:start -->\n{table}\n<!-- {name}:end -->" in text, (
            f"README's {name} table differs from the code: run `python -m pairsmith.schemas.record README.md`"
        )
