"""python manage.py run_tool_code: run one tool by hand."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import ITEMS_CODE, ITEMS_SCHEMA


@pytest.fixture
def files(tmp_path):
    code = tmp_path / "tool.py"
    code.write_text(ITEMS_CODE + "\ndef spin(db, ctx):\n    while True:\n        pass\n")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"items": {"a": {"item_id": "a", "name": "apple", "qty": 3, "owner_id": None}}, "owners": {}}))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(ITEMS_SCHEMA))
    return code, state, schema


def run(*args):
    out = StringIO()
    call_command("run_tool_code", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_prints_outcome_value_diff_and_hash(files):
    code, state, schema = files
    text = run("--code", str(code), "--tool", "add_item", "--args", '{"name": "fig", "qty": 2}', "--state", str(state),
               "--schema", str(schema))
    assert "outcome     success" in text
    assert "diff        + items[itm_" in text
    assert "state hash  " in text


def test_json_output_carries_the_rejection(files):
    code, state, _schema = files
    report = json.loads(run("--code", str(code), "--tool", "get_item", "--args", '{"item_id": "zz"}', "--state",
                            str(state), "--json"))
    assert (report["outcome"], report["error_type"], report["error"]) == ("anticipated_rejection", "KeyError", "no item zz")
    assert report["diff"] == {} and len(report["state_hash"]) == 64


def test_a_tool_that_never_ends_is_an_unexpected_failure(files):
    code, state, _schema = files
    report = json.loads(run("--code", str(code), "--tool", "spin", "--state", str(state), "--timeout", "0.5", "--json"))
    assert (report["outcome"], report["error_type"]) == ("unexpected_failure", "Timeout")


def test_bad_input_gets_a_clear_error(files, tmp_path):
    code, state, _schema = files
    with pytest.raises(CommandError, match="--args is not valid JSON"):
        run("--code", str(code), "--tool", "get_item", "--args", "{nope", "--state", str(state))
    with pytest.raises(CommandError, match="state file not found"):
        run("--code", str(code), "--tool", "get_item", "--state", str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef get_item(db, ctx, item_id):\n    return os.getcwd()\n")
    with pytest.raises(CommandError, match="import of 'os' is not allowed"):
        run("--code", str(bad), "--tool", "get_item", "--state", str(state))
