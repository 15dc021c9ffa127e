"""Descriptor validation: one clear line per problem, and nothing executed when it fails."""

from __future__ import annotations

import copy
import json

import pytest

from uvctl.errors import UsageError
from uvctl.schema import UV_TABLES, builtin_descriptor, load_descriptor


def _write(tmp_path, descriptor) -> str:
    path = tmp_path / "descriptor.json"
    path.write_text(descriptor if isinstance(descriptor, str) else json.dumps(descriptor))
    return str(path)


def _edited(edit):
    descriptor = copy.deepcopy(builtin_descriptor())
    edit(descriptor["Tables"][0], descriptor)
    return descriptor


def _set_type(table, _):
    table["Schema"][1]["Type"] = "Strng"


def _drop_scope(table, _):
    del table["Scope"]


def _drop_schema(table, _):
    del table["Schema"]


def _duplicate_column(table, _):
    table["Schema"].append({"Column": "workitemhash", "Type": "String", "Size": 64})


def _index_on_missing_column(table, _):
    table["Indexes"][0]["Columns"] = ["NoSuchColumn"]


def _bad_table_identifier(table, _):
    table["Scope"] = 'UV"; DROP TABLE x; --'


def _bad_column_identifier(table, _):
    table["Schema"][3]["Column"] = "Run Hash"


def _bad_index_identifier(table, _):
    table["Indexes"][1]["Name"] = "IX-Status"


def _bad_size(table, _):
    table["Schema"][1]["Size"] = "big"


def _decimal_out_of_range(table, _):
    table["Schema"].append({"Column": "Money", "Type": "Decimal", "Size": "99,200"})


def _two_identities(table, _):
    table["Schema"].append({"Column": "IDSecond", "Type": "AutoIdentity", "Size": "Default"})


def _text_index(table, _):
    table["Indexes"].append({"Name": "IX_Settings", "Columns": ["Settings"], "Unique": False})


CASES = [
    (_set_type, 'unknown Type "Strng"'),
    (_drop_scope, "Tables[0]: missing Scope"),
    (_drop_schema, "missing Schema"),
    (_duplicate_column, "duplicate column 'workitemhash'"),
    (_index_on_missing_column, "column 'NoSuchColumn' is not in the table's Schema"),
    (_bad_table_identifier, "Scope \"UV\\\"; DROP TABLE x; --\" is not an identifier"),
    (_bad_column_identifier, 'Column "Run Hash" is not an identifier'),
    (_bad_index_identifier, 'Name "IX-Status" is not an identifier'),
    (_bad_size, 'Size "big" must be a number, "Default" or "int"'),
    (_two_identities, "2 AutoIdentity columns (IDUVQueueWorkItem, IDSecond)"),
    (_decimal_out_of_range, 'Size "99,200" must have 1 <= precision <= 38'),
    (_text_index, "column 'Settings' is a text column"),
]


def test_builtin_descriptor_is_valid_and_complete():
    descriptor = load_descriptor()
    assert [t["Scope"] for t in descriptor["Tables"]] == list(UV_TABLES)
    assert [len(t["Schema"]) for t in descriptor["Tables"]] == [38, 12, 10, 15]
    indexes = [i for t in descriptor["Tables"] for i in t["Indexes"]]
    assert (len(indexes), sum(i["Unique"] for i in indexes)) == (11, 4)


@pytest.mark.parametrize("edit,expected", CASES, ids=[case[0].__name__.strip("_") for case in CASES])
def test_each_problem_is_one_clear_line(tmp_path, edit, expected):
    with pytest.raises(UsageError) as caught:
        load_descriptor(_write(tmp_path, _edited(edit)))
    message = str(caught.value)
    header, *problems = message.splitlines()
    assert "nothing was executed" in header
    assert [line for line in problems if expected in line], message
    assert len(problems) == 1, message


def test_every_problem_is_listed(tmp_path):
    def many(table, descriptor):
        _set_type(table, descriptor)
        _bad_size(descriptor["Tables"][1], descriptor)
        _drop_scope(descriptor["Tables"][2], descriptor)

    with pytest.raises(UsageError) as caught:
        load_descriptor(_write(tmp_path, _edited(many)))
    assert "3 problem(s)" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 4


def test_invalid_json_names_line_and_column(tmp_path):
    path = _write(tmp_path, '{\n  "Tables": [\n    {"Scope": "T",, }\n  ]\n}')
    with pytest.raises(UsageError, match=r"is not valid JSON: .* at line 3, column 19"):
        load_descriptor(path)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="cannot read schema descriptor .*nope.json: No such file"):
        load_descriptor(tmp_path / "nope.json")


@pytest.mark.parametrize("command", ["ensure", "plan"])
def test_nothing_is_executed_when_validation_fails(cli_runner, tmp_path, command):
    target = tmp_path / "never.sqlite"
    schema = _write(tmp_path, _edited(_set_type))
    result = cli_runner(["schema", command, "--db", f"sqlite:///{target}", "--schema", schema])
    assert result.exit_code == 2
    assert result.output.startswith("uvctl: error: schema descriptor")
    assert 'unknown Type "Strng"' in result.output
    assert "Traceback" not in result.output
    assert not target.exists()
