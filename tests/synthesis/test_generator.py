"""The procedural backend: deterministic, varied, within the size bounds."""

from environments.runtime.codecheck import check_tool_code
from environments.synthesis.procedural import generator, vocabulary
from environments.synthesis.procedural.codegen import render_tool
from environments.synthesis.spec import DomainSpec


def make(seed: int) -> DomainSpec:
    draft = generator.draft_domain(seed)
    tables = generator.design_schema(draft)
    tools, rules = generator.design_tools(draft, tables)
    return DomainSpec(name=draft["name"], slug=draft["slug"],
                      description=generator.describe_domain(draft, tables, tools, rules), keywords=[],
                      sector=draft["sector"], seed=seed, backend="procedural", tables=tables, tools=tools)


def test_the_vocabulary_has_at_least_40_archetypes_across_12_sectors():
    assert len(vocabulary.SECTORS) >= 12
    assert vocabulary.archetype_count() >= 40


def test_the_same_seed_gives_the_same_domain():
    assert make(11).spec_hash() == make(11).spec_hash()
    assert make(11).name == make(11).name


def test_one_hundred_seeds_give_one_hundred_distinct_domains_within_bounds():
    domains = [make(1000 + i) for i in range(100)]
    assert len({d.name for d in domains}) == 100
    assert len({d.spec_hash() for d in domains}) == 100
    assert len({d.sector for d in domains}) >= 12
    assert len({frozenset(t.name for t in d.tables) for d in domains}) >= 60  # schemas differ, not only names
    for d in domains:
        assert 5 <= len(d.tables) <= 20, d.name
        assert 25 <= len(d.tools) <= generator.MAX_TOOLS, d.name


def test_every_table_has_typed_columns_keys_and_reward_policies():
    d = make(5)
    names = {t.name for t in d.tables}
    for table in d.tables:
        assert table.column(table.pk).policy == "exempt"
        for col in table.columns:
            assert col.policy in ("exempt", "exact", "semantic")
            assert col.type in ("string", "text", "integer", "number", "boolean", "date", "datetime", "enum")
            assert col.description, (table.name, col.name)
            if col.fk:
                assert col.fk["table"] in names
            if col.type == "text":
                assert col.policy == "semantic"


def test_only_primary_keys_and_clock_stamps_are_exempt_and_optional_columns_are_exact():
    seen_optional = 0
    for seed in range(1000, 1040):
        for table in make(seed).tables:
            for col in table.columns:
                exempt = col.generator in ("pk", "created")
                assert (col.policy == "exempt") == exempt, (table.name, col.name, col.policy)
                if col.nullable and col.type != "text":
                    seen_optional += 1
                    assert col.policy == "exact", (table.name, col.name)
    assert seen_optional > 10


def test_tools_cover_reads_writes_actions_and_computations_with_full_specs():
    kinds = set()
    templates = set()
    for seed in range(1000, 1030):
        for tool in make(seed).tools:
            kinds.add(tool.kind)
            templates.add(tool.template)
            assert tool.parameters["type"] == "object"
            assert tool.returns["type"] == "object"
            assert tool.postconditions
            assert tool.raises or not tool.parameters["properties"]
            assert tool.reads or tool.writes
    assert kinds == {"read", "write", "action", "compute"}
    assert {"get", "search", "list_for_parent", "create", "update", "transition", "delete", "book",
            "cancel_booking", "pay", "restock", "withdraw", "aggregate", "count_by_status", "status_rate"} <= templates


def test_all_generated_code_passes_the_static_check():
    for seed in range(1000, 1010):
        for tool in make(seed).tools:
            code = render_tool(tool.name, tool.description, tool.contract)
            assert check_tool_code(code, tool.name) == [], tool.name


def test_fixtures_are_schema_valid():
    from environments.runtime.statekit import validate_rows

    for seed in range(1000, 1020):
        d = make(seed)
        fixture = generator.build_fixture(d.tables, seed)
        assert validate_rows(d.schema(), fixture) == []
        assert all(fixture[t.name] for t in d.tables)
