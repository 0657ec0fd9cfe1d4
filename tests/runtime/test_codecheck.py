from environments.runtime.codecheck import check_tool_code


def test_it_accepts_contract_following_code():
    code = "import datetime\n\ndef tool(db, ctx, x):\n    return {'x': x, 'at': ctx.now_iso()}\n"
    assert check_tool_code(code, "tool") == []


def test_it_rejects_forbidden_imports_builtins_dunders_and_wall_clock():
    code = (
        "import os\nfrom subprocess import run\n\n"
        "def tool(db, ctx):\n"
        "    open('/etc/passwd')\n"
        "    x = ().__class__\n"
        "    eval('1')\n"
        "    return datetime.now()\n"
    )
    messages = " | ".join(map(str, check_tool_code(code, "tool")))
    for expected in ("import of 'os'", "import from 'subprocess'", "'open'", "'__class__'", "'eval'", "datetime.now"):
        assert expected in messages


def test_it_reports_syntax_errors_and_a_missing_function():
    assert "syntax error" in str(check_tool_code("def tool(db, ctx):\n  return (", "tool")[0])
    assert "no top-level function named 'tool'" in str(check_tool_code("def other(db, ctx):\n    return 1\n", "tool")[0])


def test_it_requires_db_and_ctx_first():
    assert "(db, ctx)" in str(check_tool_code("def tool(x, db, ctx):\n    return 1\n", "tool")[0])
