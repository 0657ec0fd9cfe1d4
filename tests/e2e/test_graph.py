"""The dependency graph in a real browser: a 61-tool domain drawn wide and readable, search, node and
edge panels, kind toggles, wheel zoom, a task's highlight; and a generated 500-tool, 5,000-edge graph
that stays usable. Screenshots go to var/screenshots/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import store_domain
from tests.environments.test_graph_layout import store_large_domain

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SIXTY = 3  # procedural seed of a 61-tool domain (tests.conftest.synthesized)
CY = "document.getElementById('tdg').scaleenvGraph.cy"


def watch(page) -> list[str]:
    """Page errors, CSP violations and console warnings (Cytoscape warns of styles it ignores and edges
    it cannot draw), collected while the test runs."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if "Content Security Policy" in msg.text or msg.type in ("error", "warning") else None)
    return problems


def shot(page, name: str, full_page: bool = False) -> None:
    """The graph widget scrolled into view (and the whole page with full_page)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#tdg").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def open_graph(page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#tdg[data-drawn='1']", timeout=60_000)  # (wait_for_function would need eval: CSP)
    return time.perf_counter() - started


def node_point(page, name: str) -> dict[str, float]:
    """Where a tool is on the screen (page coordinates)."""
    return page.evaluate(f"""(name) => {{
        const node = {CY}.nodes('.tool').filter(n => n.data('name') === name)[0];
        const box = document.querySelector('#tdg [data-role=canvas]').getBoundingClientRect();
        const p = node.renderedPosition();
        return {{x: box.left + p.x, y: box.top + p.y}};
    }}""", name)


def test_a_60_tool_graph_is_wide_readable_searchable_and_answers_clicks(curator_page, live_server):
    domain = store_domain(SIXTY)
    tools = domain.tools.count()
    assert tools >= 60
    page = curator_page
    problems = watch(page)
    seconds = open_graph(page, f"{live_server.url}/domains/{domain.slug}/")
    print(f"\n{tools} tools, {domain.dependencies.count()} edges drawn in {seconds:.2f} s")

    # Drawn wide, not as a column, and readable at the first (fitted) view.
    view = page.evaluate(f"""() => {{
        const cy = {CY}; const bb = cy.nodes('.tool').boundingBox();
        return {{zoom: cy.zoom(), w: bb.w, h: bb.h, font: parseFloat(cy.nodes('.tool')[0].style('font-size')),
                 canvas: [cy.width(), cy.height()], nodes: cy.nodes('.tool').length,
                 edges: cy.edges('.dep').length, shown: cy.edges('.dep').not('.off').length}};
    }}""")
    assert view["nodes"] == tools and view["edges"] == domain.dependencies.count()
    assert view["w"] / view["h"] > 1.4, view
    assert view["w"] * view["zoom"] > 0.8 * view["canvas"][0], view  # uses the width of the screen
    assert view["zoom"] * view["font"] >= 9.0, view  # labels about 9 px or more at the first view
    data_flow = sum(1 for d in domain.dependencies.all() if "data_flow" in d.kinds)
    assert view["shown"] == data_flow  # data flow only, by default
    shot(page, "graph-domain-60-tools-page", full_page=True)
    page.evaluate("document.getElementById('tdg').scrollIntoView()")
    shot(page, "graph-domain-60-tools")

    # Kind toggles: pre/post and shared state come and go.
    page.check("#tdg input[data-kind=pre_post]")
    page.check("#tdg input[data-kind=shared_state]")
    assert page.evaluate(f"{CY}.edges('.dep').not('.off').length") == view["edges"]
    page.uncheck("#tdg input[data-kind=pre_post]")
    page.uncheck("#tdg input[data-kind=shared_state]")
    assert page.evaluate(f"{CY}.edges('.dep').not('.off').length") == data_flow

    # The mouse wheel zooms at a useful rate, around the pointer; the buttons and Fit work.
    box = page.locator("#tdg [data-role=canvas]").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before = page.evaluate(f"{CY}.zoom()")
    for _ in range(5):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(30)
    after = page.evaluate(f"{CY}.zoom()")
    assert after / before > 2.5, (before, after)  # five notches; the complaint saw 0.21 -> 0.23 for ten
    for _ in range(5):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(30)
    assert abs(page.evaluate(f"{CY}.zoom()") / before - 1) < 0.05
    page.click("#tdg [data-zoom=in]")
    assert page.evaluate(f"{CY}.zoom()") > before * 1.3
    page.click("#tdg [data-zoom=fit]")
    assert abs(page.evaluate(f"{CY}.zoom()") - before) < 0.01
    # Drag on the background pans.
    pan = page.evaluate(f"{CY}.pan()")
    corner = (box["x"] + 6, box["y"] + box["height"] - 6)
    page.mouse.move(*corner)
    page.mouse.down()
    page.mouse.move(corner[0] + 120, corner[1] - 40, steps=6)
    page.mouse.up()
    moved = page.evaluate(f"{CY}.pan()")
    assert abs(moved["x"] - pan["x"] - 120) < 10 and abs(moved["y"] - pan["y"] + 40) < 10
    page.click("#tdg [data-zoom=fit]")

    # Search a tool by name: it is selected, brought into view, and its panel opens.
    page.fill("#tdg-search", "book_scr")
    assert "1 tool matches" in page.locator("#tdg [data-role=search-status]").inner_text()
    page.press("#tdg-search", "Enter")
    panel = page.locator("#tdg [data-role=panel]")
    panel.locator("text=Parameters").wait_for()
    assert "book_screening" in panel.inner_text() and "screening_id" in panel.inner_text()
    assert page.evaluate(f"{CY}.$('node:selected').data('name')") == "book_screening"
    assert page.evaluate(f"{CY}.zoom()") * view["font"] >= 12
    shot(page, "graph-search-and-panel")

    # Click a node with the mouse: its panel (description, schema, status, reads/writes, a link).
    page.click("#tdg [data-zoom=fit]")
    target = domain.tools.get(name="create_show")
    point = node_point(page, target.name)
    page.mouse.click(point["x"], point["y"])
    panel.locator(".gp-title", has_text="create_show").wait_for()
    text = panel.inner_text()
    for part in ("Parameters", "verified", "Writes", "Needs (", "Feeds (", "Open the tool page", target.description[:40]):
        assert part in text, part
    assert page.evaluate(f"{CY}.$('node:selected').data('name')") == "create_show"
    # Panel buttons move to a neighbour, and to an edge's evidence.
    panel.locator("[data-graph-edge]").first.click()
    panel.locator("text=Evidence").wait_for()
    assert "Witness" in panel.inner_text()
    shot(page, "graph-edge-panel")

    # Click an edge with the mouse: evidence and witness.
    page.click("#tdg [data-role=panel-close]")
    assert panel.is_hidden()
    page.fill("#tdg-search", "get_subscription_payment")
    page.press("#tdg-search", "Enter")
    panel.locator("text=Parameters").wait_for()
    page.click("#tdg [data-role=panel-close]")
    edge_point = page.evaluate(f"""() => {{
        const cy = {CY}; const box = document.querySelector('#tdg [data-role=canvas]').getBoundingClientRect();
        // the midpoint of a visible edge that no tool covers
        for (const e of cy.edges('.dep').not('.off')) {{
            const m = e.renderedMidpoint();
            if (m.x < 10 || m.y < 10 || m.x > cy.width() - 10 || m.y > cy.height() - 10) continue;
            const hit = cy.nodes('.tool').some(n => {{ const b = n.renderedBoundingBox(); return m.x > b.x1 - 6 && m.x < b.x2 + 6 && m.y > b.y1 - 6 && m.y < b.y2 + 6; }});
            if (!hit) return {{x: box.left + m.x, y: box.top + m.y}};
        }}
        return null;
    }}""")
    assert edge_point
    page.mouse.click(edge_point["x"], edge_point["y"])
    panel.locator("text=Evidence").wait_for()
    assert "Witness" in panel.inner_text() and "→" in panel.inner_text()
    assert page.evaluate(f"{CY}.$('edge:selected').length") == 1
    assert problems == []


def test_a_task_highlight_outlines_h_and_numbers_the_gold_chain(curator_page, live_server):
    domain = store_domain(SIXTY)
    page = curator_page
    problems = watch(page)
    h = ["create_show", "get_show", "create_screening", "book_screening", "get_seat_reservation", "update_show"]
    chain = ["create_show", "create_screening", "book_screening", "get_seat_reservation"]
    open_graph(page, f"{live_server.url}/domains/{domain.slug}/?h={','.join(h)}&chain={','.join(chain)}")
    marked = page.evaluate(f"""() => {{ const cy = {CY};
        return {{h: cy.nodes('.in-h').map(n => n.data('name')).sort(), chain: cy.nodes('.in-chain').length,
                 steps: cy.edges('.chain').map(e => e.data('step')), outside: cy.nodes('.tool.outside').length,
                 zoom: cy.zoom()}}; }}""")
    assert marked["h"] == sorted(h) and marked["chain"] == 4
    assert marked["steps"] == ["1→2", "2→3", "3→4"]
    assert marked["outside"] == domain.tools.count() - len(h)
    shot(page, "graph-task-highlight")
    # The highlight can be switched off and back on; the page's JS API takes another one.
    page.uncheck("#tdg [data-role=highlight-toggle]")
    assert page.evaluate(f"{CY}.edges('.chain').length + {CY}.nodes('.outside').length") == 0
    page.check("#tdg [data-role=highlight-toggle]")
    assert page.evaluate(f"{CY}.edges('.chain').length") == 3
    page.evaluate("document.getElementById('tdg').scaleenvGraph.highlight({h: ['get_show'], chain: []})")
    assert page.evaluate(f"{CY}.nodes('.in-h').length") == 1
    assert problems == []


def test_500_tools_and_5000_edges_stay_usable(curator_page, live_server):
    domain = store_large_domain(500, 5000)
    page = curator_page
    problems = watch(page)
    seconds = open_graph(page, f"{live_server.url}/domains/{domain.slug}/")
    timings = page.evaluate("document.getElementById('tdg').scaleenvGraph.timings")
    print(f"\n500 tools / 5,000 edges: page to first render {seconds:.2f} s "
          f"(JSON fetched at {timings['fetched']:.0f} ms, Cytoscape built at {timings['built']:.0f} ms, "
          f"first frame at {timings['firstRender']:.0f} ms after the script started)")
    assert seconds < 30  # generous: CI machines are slow; the printed figure is the measurement
    assert page.evaluate(f"{CY}.nodes('.tool').length") == 500
    # Zooming and panning respond: time a burst of wheel notches and a drag, each until the next frame.
    box = page.locator("#tdg [data-role=canvas]").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    started = time.perf_counter()
    for _ in range(5):
        page.mouse.wheel(0, -100)
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    zoom_s = (time.perf_counter() - started) / 5
    started = time.perf_counter()
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 200, box["y"] + box["height"] / 2 + 50, steps=10)
    page.mouse.up()
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    pan_s = time.perf_counter() - started
    print(f"wheel notch to painted frame: {zoom_s * 1000:.0f} ms each; a 10-step drag: {pan_s * 1000:.0f} ms")
    assert zoom_s < 3 and pan_s < 10
    # Labels too small to read at the overview show on hover; search still finds a tool.
    page.click("#tdg [data-zoom=fit]")
    name = domain.tools.order_by("name").values_list("name", flat=True)[250]
    point = node_point(page, name)
    page.mouse.move(point["x"], point["y"])
    tip = page.locator("#tdg [data-role=tip]")
    if page.evaluate(f"{CY}.zoom() * parseFloat({CY}.nodes('.tool')[0].style('font-size'))") < 9.5:
        tip.wait_for(state="visible")
        assert name in tip.inner_text()
    shot(page, "graph-500-tools")
    page.fill("#tdg-search", name)
    page.press("#tdg-search", "Enter")
    page.locator("#tdg [data-role=panel]").locator("text=Parameters").wait_for()
    assert page.evaluate(f"{CY}.$('node:selected').data('name')") == name
    shot(page, "graph-500-tools-search")
    assert problems == []
