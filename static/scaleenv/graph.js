// The tool dependency graph widget (templates/environments/_graph.html).
//
// Positions come from the server (environments/graph.py: readable_layout, cached on the domain row);
// Cytoscape only draws them ("preset" layout). One box per table; in a box, tools that can be called
// first are on the left. Data-flow edges are shown by default, the other kinds behind toggles.
// Clicking a tool or an edge loads its side panel with htmx. Everything from the server is data:
// names go in through textContent or Cytoscape labels, never as HTML.
(function () {
  "use strict";

  const KINDS = ["data_flow", "pre_post", "shared_state"];
  const COLORS = { data_flow: "#2f6fdf", pre_post: "#b0459a", shared_state: "#7d8799" };
  const FONT_FAMILY = "system-ui, Segoe UI, Roboto, Helvetica, Arial, sans-serif"; // no quotes: Cytoscape refuses them
  const FONT_SIZE = 13; // the size the server sized the boxes for (graph.CHAR_WIDTH)
  const PAD_X = 14; // graph.PAD_X
  const READABLE_PX = 9.5; // below this rendered size, labels give way to the hover tip
  const MAX_ZOOM = 3;

  function widgets(root) {
    const found = [];
    if (root.matches && root.matches(".graph-widget")) found.push(root);
    if (root.querySelectorAll) root.querySelectorAll(".graph-widget").forEach(function (w) { found.push(w); });
    return found;
  }

  function part(widget, role) { return widget.querySelector('[data-role="' + role + '"]'); }

  function readJson(id) {
    const el = id && document.getElementById(id);
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  // The font size at which every label fits its box (the server estimated text widths).
  function fittingFont(nodes) {
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.font = FONT_SIZE + "px " + FONT_FAMILY;
    let scale = 1;
    nodes.forEach(function (n) {
      const widest = Math.max.apply(null, n.data.label.split("\n").map(function (l) { return ctx.measureText(l).width; }));
      if (widest > 0) scale = Math.min(scale, (n.data.w - 2 * PAD_X + 4) / widest);
    });
    return Math.max(9, Math.floor(FONT_SIZE * scale * 10) / 10);
  }

  function styles(font, large, edges) {
    // Faint when many: a thousand edges at full strength hide the labels; hovering or selecting a
    // tool brings its own edges forward.
    const edgeOpacity = edges > 1500 ? 0.14 : edges > 400 ? 0.2 : 0.32;
    return [
      { selector: "*", style: { "z-index-compare": "manual" } },
      { selector: "node.tool", style: {
        shape: "round-rectangle", width: "data(w)", height: "data(h)", "z-index": 20,
        "background-color": "#eaf5ee", "border-width": 1.5, "border-color": "#4a8f6a",
        label: "data(label)", "text-wrap": "wrap", "text-max-width": 2000, "font-family": FONT_FAMILY,
        "font-size": font, color: "#1d2330", "text-valign": "center", "text-halign": "center",
        "min-zoomed-font-size": 7, "transition-property": "opacity", "transition-duration": 0 } },
      { selector: "node.tool[?mutates]", style: { "background-color": "#fdf0de", "border-color": "#c47a1c" } },
      { selector: "node.tool[status != 'verified']", style: {
        "background-color": "#f1f2f4", "border-color": "#9aa3b5", "border-style": "dashed", color: "#6b7385" } },
      { selector: "node.group", style: {
        shape: "round-rectangle", width: "data(w)", height: "data(h)", "z-index": 0, events: "no",
        "background-color": "#f5f7fa", "border-width": 1, "border-color": "#d3d8e2", label: "" } },
      { selector: "node.group-title", style: {
        width: 1, height: 1, "background-opacity": 0, "border-width": 0, "z-index": 25, events: "no",
        label: "data(label)", "font-family": FONT_FAMILY, "font-size": large ? 20 : 14, "font-weight": 700, color: "#3d4558",
        "text-halign": "right", "text-valign": "center", "min-zoomed-font-size": 6,
        "text-wrap": "ellipsis", "text-max-width": "data(tw)" } },
      { selector: "edge", style: {
        width: 1.1, "line-color": COLORS.data_flow, "target-arrow-color": COLORS.data_flow,
        "target-arrow-shape": "triangle", "arrow-scale": 0.7, opacity: edgeOpacity, "z-index": 5,
        // Straight: cheap to draw, and opposite edges between two stacked tools stay drawable.
        "curve-style": "straight" } },
      { selector: "edge[shown = 'pre_post']", style: { "line-color": COLORS.pre_post, "target-arrow-color": COLORS.pre_post } },
      { selector: "edge[shown = 'shared_state']", style: { "line-color": COLORS.shared_state, "target-arrow-color": COLORS.shared_state } },
      { selector: "edge[!witnessed]", style: { "line-style": "dashed", "line-dash-pattern": [5, 4] } },
      { selector: "edge.off", style: { display: "none" } },
      { selector: "edge.hood", style: { opacity: 0.9, width: 2, "z-index": 10 } },
      { selector: "edge:selected", style: { opacity: 1, width: 3.5, "z-index": 12,
        "underlay-color": "#ffd54a", "underlay-opacity": 0.75, "underlay-padding": 4 } },
      { selector: "node.tool.in-h", style: { "border-width": 3.5, "border-color": "#7a4bc4" } },
      { selector: "node.tool.in-chain", style: { "background-color": "#ffe9c2", "border-width": 3.5, "border-color": "#d97706" } },
      { selector: "edge.chain", style: {
        width: 4, "line-color": "#d97706", "target-arrow-color": "#d97706", "target-arrow-shape": "triangle",
        "arrow-scale": 1.1, opacity: 0.95, "curve-style": "bezier", "line-style": "solid",
        // Drawn above the nodes (manual z order, top of the compound boxes) so the step number sits on
        // an opaque, outlined chip instead of mixing with a node's name underneath it.
        "z-index": 15, "z-index-compare": "manual", "z-compound-depth": "top",
        label: "data(step)", "font-family": FONT_FAMILY, "font-size": 13, "font-weight": 700, color: "#7a3e00",
        "text-background-color": "#fffaf0", "text-background-opacity": 1, "text-background-padding": 3,
        "text-background-shape": "round-rectangle", "text-border-width": 1.5, "text-border-color": "#d97706",
        "text-border-opacity": 1, "text-events": "no", "min-zoomed-font-size": 5 } },
      { selector: ".outside", style: { opacity: 0.28 } },
      { selector: "edge.outside", style: { opacity: 0.06 } },
      { selector: ".dim", style: { opacity: 0.12 } },
      { selector: "node.tool.match", style: { "border-width": 3.5, "border-color": "#e0a100", "background-color": "#fff6d6" } },
      { selector: "node.tool:selected", style: { "border-width": 4, "border-color": "#1d4fd8",
        "underlay-color": "#1d4fd8", "underlay-opacity": 0.18, "underlay-padding": 6, opacity: 1 } },
    ];
  }

  function Graph(widget) {
    this.widget = widget;
    this.canvas = part(widget, "canvas");
    this.status = part(widget, "status");
    this.panel = part(widget, "panel");
    this.panelBody = part(widget, "panel-body");
    this.tip = part(widget, "tip");
    this.timings = { start: performance.now() };
    this.hl = { h: [], chain: [] };
    this.cy = null;
  }

  Graph.prototype.load = function () {
    const self = this;
    const rect = this.canvas.getBoundingClientRect();
    const aspect = rect.height > 0 ? (rect.width / rect.height).toFixed(2) : "2";
    const url = this.widget.dataset.graphUrl + (this.widget.dataset.graphUrl.indexOf("?") < 0 ? "?" : "&") + "aspect=" + aspect;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("the server answered " + response.status);
        return response.json();
      })
      .then(function (data) { self.timings.fetched = performance.now() - self.timings.start; self.draw(data); })
      .catch(function (error) {
        if (self.status) { self.status.textContent = "The graph could not be loaded: " + error.message; self.status.classList.add("error"); }
      });
  };

  Graph.prototype.draw = function (data) {
    const self = this;
    this.data = data;
    const large = data.edges.length > 1500 || data.nodes.length > 250;
    const font = fittingFont(data.nodes);
    this.font = font;
    const elements = [];
    data.groups.forEach(function (g) {
      elements.push({ group: "nodes", data: g.data, position: g.position, classes: "group", selectable: false, grabbable: false });
      elements.push({ group: "nodes", data: { id: g.data.id + "-title", label: g.data.label + " · " + g.data.tools, tw: g.data.w - 20 },
        position: { x: g.position.x - g.data.w / 2 + 10, y: g.position.y - g.data.h / 2 + 16 },
        classes: "group-title", selectable: false, grabbable: false });
    });
    data.nodes.forEach(function (n) { elements.push({ group: "nodes", data: n.data, position: n.position, classes: "tool" }); });
    data.edges.forEach(function (e) {
      e.data.shown = e.data.kinds[0] || "shared_state";
      elements.push({ group: "edges", data: e.data, classes: "dep" });
    });
    if (this.status) this.status.remove();
    const cy = window.cytoscape({
      container: this.canvas, elements: elements, layout: { name: "preset", fit: false },
      style: styles(font, large, data.edges.length), autoungrabify: true, boxSelectionEnabled: false, selectionType: "single",
      minZoom: 0.02, maxZoom: MAX_ZOOM, hideEdgesOnViewport: large, textureOnViewport: data.edges.length > 4000,
      pixelRatio: large ? 1 : "auto",
    });
    this.cy = cy;
    this.timings.built = performance.now() - this.timings.start;
    cy.one("render", function () { self.timings.firstRender = performance.now() - self.timings.start; self.widget.dataset.drawn = "1"; });

    this.bindGraph();
    this.bindToolbar();
    this.applyKinds();
    const highlight = readJson(this.widget.dataset.graphData);
    if (highlight && ((highlight.h && highlight.h.length) || (highlight.chain && highlight.chain.length))) {
      this.highlight(highlight);
    } else {
      this.fit();
    }
    this.showZoom();
    this.widget.scaleenvGraph = {
      cy: cy, timings: this.timings,
      focus: function (name) { return self.focusByName(name, true); },
      highlight: function (h) { self.highlight(h); },
      clearHighlight: function () { self.highlight({ h: [], chain: [] }); },
      openPanel: function (url) { self.openPanel(url); },
    };
    this.widget.dispatchEvent(new CustomEvent("graph:ready", { bubbles: true }));
  };

  Graph.prototype.tools = function () { return this.cy.nodes(".tool"); };

  Graph.prototype.byName = function (name) {
    return this.tools().filter(function (n) { return n.data("name") === name; })[0] || null;
  };

  Graph.prototype.fit = function (eles) {
    const cy = this.cy;
    const some = eles && eles.length;
    cy.fit(some ? eles : cy.nodes(".group, .tool"), some ? 60 : 24);
    if (some && cy.zoom() > 1.4) { cy.zoom(1.4); cy.center(eles); }
    this.showZoom();
  };

  Graph.prototype.showZoom = function () {
    const el = part(this.widget, "zoom-level");
    if (el && this.cy) el.textContent = Math.round(this.cy.zoom() * 100) + "%";
  };

  Graph.prototype.zoomBy = function (factor, rendered) {
    const cy = this.cy;
    const level = Math.min(cy.maxZoom(), Math.max(cy.minZoom(), cy.zoom() * factor));
    const at = rendered || { x: cy.width() / 2, y: cy.height() / 2 };
    cy.zoom({ level: level, renderedPosition: at });
    this.showZoom();
  };

  // Edges whose kinds are all switched off are hidden; the others are coloured by their first shown kind.
  Graph.prototype.applyKinds = function () {
    const on = {};
    this.widget.querySelectorAll("input[data-kind]").forEach(function (box) { on[box.dataset.kind] = box.checked; });
    this.cy.batch(function () {
      this.cy.edges(".dep").forEach(function (edge) {
        const kinds = edge.data("kinds");
        let shown = null;
        for (let i = 0; i < kinds.length; i++) { if (on[kinds[i]]) { shown = kinds[i]; break; } }
        if (shown) { edge.removeClass("off"); if (edge.data("shown") !== shown) edge.data("shown", shown); }
        else edge.addClass("off");
      });
    }.bind(this));
  };

  Graph.prototype.emphasise = function (node) {
    const cy = this.cy;
    cy.batch(function () {
      cy.elements(".dim").removeClass("dim");
      cy.edges(".hood").removeClass("hood");
      if (!node) return;
      const hood = node.closedNeighborhood();
      cy.elements(".tool, .dep").difference(hood).addClass("dim");
      node.connectedEdges().addClass("hood");
    });
  };

  // Select a tool, dim what is not its neighbourhood, open its panel; with `move`, bring it to the
  // centre at a zoom where its label reads.
  Graph.prototype.focusNode = function (node, options) {
    const cy = this.cy;
    cy.elements(":selected").unselect();
    node.select();
    this.emphasise(node);
    this.openPanel(this.data.urls.node + node.data("pk") + "/"); // first: the panel narrows the drawing
    if (options && options.move) {
      cy.stop();
      const level = Math.max(cy.zoom(), Math.min(READABLE_PX * 1.3 / this.font, MAX_ZOOM));
      cy.zoom(level);
      cy.center(node);
      this.showZoom();
    }
  };

  Graph.prototype.focusByName = function (name, move) {
    const node = this.byName(name);
    if (node) this.focusNode(node, { move: move !== false });
    return !!node;
  };

  Graph.prototype.openPanel = function (url) {
    const self = this;
    const wasHidden = this.panel.hidden;
    this.panel.hidden = false;
    this.widget.classList.add("panel-open");
    if (wasHidden) this.cy.resize();
    this.panelBody.classList.add("loading");
    window.htmx.ajax("GET", url, { target: this.panelBody, swap: "innerHTML" }).then(function () {
      self.panelBody.classList.remove("loading");
      self.panel.scrollTop = 0;
      self.widget.dispatchEvent(new CustomEvent("graph:panel", { bubbles: true, detail: { url: url } }));
    });
    // Keep what was clicked in view once the panel has taken its share of the width.
    const selected = this.cy.elements(":selected");
    if (wasHidden && selected.length) {
      const p = selected[0].isNode() ? selected[0].renderedPosition() : selected[0].renderedMidpoint();
      if (p.x > this.cy.width() - 20) this.cy.panBy({ x: this.cy.width() / 2 - p.x, y: 0 });
    }
  };

  Graph.prototype.closePanel = function () {
    this.panel.hidden = true;
    this.widget.classList.remove("panel-open");
    this.panelBody.textContent = "";
    this.cy.resize();
    this.cy.elements(":selected").unselect();
    this.emphasise(null);
  };

  Graph.prototype.showTip = function (node) {
    if (!this.tip) return;
    const readable = this.cy.zoom() * this.font >= READABLE_PX;
    if (readable) { this.tip.hidden = true; return; }
    const p = node.renderedPosition();
    this.tip.textContent = node.data("name");
    const extra = document.createElement("span");
    extra.className = "muted";
    extra.textContent = " · " + node.data("kind") + " · " + node.data("group");
    this.tip.appendChild(extra);
    this.tip.hidden = false;
    const left = Math.min(Math.max(4, p.x + 12), Math.max(4, this.cy.width() - this.tip.offsetWidth - 4));
    this.tip.style.left = left + "px"; // CSSOM, not a style attribute: allowed under CSP
    this.tip.style.top = Math.max(4, p.y - node.renderedHeight() / 2 - this.tip.offsetHeight - 6) + "px";
  };

  Graph.prototype.bindGraph = function () {
    const self = this;
    const cy = this.cy;
    cy.on("tap", "node.tool", function (evt) { self.focusNode(evt.target); });
    cy.on("tap", "edge.dep", function (evt) {
      const edge = evt.target;
      cy.elements(":selected").unselect();
      edge.select();
      self.emphasise(null);
      edge.connectedNodes().union(edge).removeClass("dim");
      self.openPanel(self.data.urls.edge + edge.data("pk") + "/");
    });
    cy.on("tap", function (evt) {
      if (evt.target === cy) { cy.elements(":selected").unselect(); self.emphasise(null); }
    });
    cy.on("mouseover", "node.tool", function (evt) {
      evt.target.connectedEdges().addClass("hood");
      self.showTip(evt.target);
      self.canvas.classList.add("pointing");
    });
    cy.on("mouseover", "edge.dep", function () { self.canvas.classList.add("pointing"); });
    cy.on("mouseout", "edge.dep", function () { self.canvas.classList.remove("pointing"); });
    cy.on("mouseout", "node.tool", function (evt) {
      const selected = cy.$("node.tool:selected");
      evt.target.connectedEdges().difference(selected.connectedEdges()).removeClass("hood");
      if (self.tip) self.tip.hidden = true;
      self.canvas.classList.remove("pointing");
    });
    cy.on("zoom", function () { self.showZoom(); });
    cy.on("viewport", function () { if (self.tip) self.tip.hidden = true; });

    // Wheel zoom at a steady rate: Cytoscape 3.34 turns a mouse-wheel notch into a ~3% step (and
    // clamps the first notches), so a notch here is ~26%, a trackpad's small deltas a little each.
    const body = part(this.widget, "body");
    body.addEventListener("wheel", function (evt) {
      if (!self.canvas.contains(evt.target)) return; // the panel scrolls as usual
      evt.preventDefault();
      evt.stopPropagation();
      let dy = evt.deltaY;
      if (evt.deltaMode === 1) dy *= 33; else if (evt.deltaMode === 2) dy *= 600;
      dy = Math.max(-150, Math.min(150, dy));
      const rect = self.canvas.getBoundingClientRect();
      self.zoomBy(Math.pow(2, -dy / (evt.ctrlKey ? 100 : 300)), { x: evt.clientX - rect.left, y: evt.clientY - rect.top });
      // While its own wheel handler zooms, Cytoscape's renderer skips edges (hideEdgesOnViewport) and
      // draws a texture (textureOnViewport); this flag of the renderer's (3.34, as its handler sets it)
      // gives zooming here the same fast frames, and the full drawing 150 ms after the last notch.
      const renderer = cy.renderer && cy.renderer();
      if (renderer && renderer.data) {
        renderer.data.wheelZooming = true;
        clearTimeout(self.wheelTimer);
        self.wheelTimer = setTimeout(function () {
          renderer.data.wheelZooming = false;
          renderer.redrawHint("eles", true);
          renderer.redraw();
        }, 150);
      }
    }, { capture: true, passive: false });
  };

  Graph.prototype.bindToolbar = function () {
    const self = this;
    const widget = this.widget;
    const names = part(widget, "names");
    const search = part(widget, "search");
    const status = part(widget, "search-status");
    if (names) {
      const sorted = this.tools().map(function (n) { return n.data("name"); }).sort();
      const fragment = document.createDocumentFragment();
      sorted.forEach(function (name) { const option = document.createElement("option"); option.value = name; fragment.appendChild(option); });
      names.appendChild(fragment);
    }
    KINDS.forEach(function (kind) {
      const el = widget.querySelector('[data-count="' + kind + '"]');
      if (el) el.textContent = "(" + (self.data.counts.by_kind[kind] || 0) + ")";
    });

    function matches(query) {
      const q = query.trim().toLowerCase();
      if (!q) return [];
      return self.tools().filter(function (n) { return n.data("name").toLowerCase().indexOf(q) >= 0; })
        .sort(function (a, b) {
          const an = a.data("name").toLowerCase(), bn = b.data("name").toLowerCase();
          return (an === q ? -1 : 0) - (bn === q ? -1 : 0) || an.indexOf(q) - bn.indexOf(q) || an.length - bn.length || (an < bn ? -1 : 1);
        });
    }
    function mark(found, query) {
      self.cy.batch(function () { self.cy.nodes(".match").removeClass("match"); found.forEach(function (n) { n.addClass("match"); }); });
      if (!status) return;
      status.classList.toggle("none", !!query.trim() && !found.length);
      status.textContent = !query.trim() ? "" : found.length ? found.length + " tool" + (found.length === 1 ? "" : "s") + " match" + (found.length === 1 ? "es" : "") : "no tool matches";
    }
    if (search) {
      search.addEventListener("input", function (evt) {
        const query = search.value;
        const found = query.trim().length >= 2 ? matches(query) : [];
        mark(found, query.trim().length >= 2 ? query : "");
        // Picking a name from the list (not typing its last letter) is a search too.
        const exact = found.filter(function (n) { return n.data("name") === query.trim(); });
        if (exact.length && (!evt.inputType || evt.inputType === "insertReplacementText")) self.focusNode(exact[0], { move: true });
      });
      search.addEventListener("keydown", function (evt) {
        if (evt.key === "Escape") { search.value = ""; mark([], ""); }
      });
    }
    const form = part(widget, "search-form");
    if (form) form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      const found = matches(search.value);
      mark(found, search.value);
      if (found.length) self.focusNode(found[0], { move: true });
    });
    widget.querySelectorAll("input[data-kind]").forEach(function (box) {
      box.addEventListener("change", function () { self.applyKinds(); });
    });
    widget.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        const how = button.dataset.zoom;
        if (how === "in") self.zoomBy(1.4);
        else if (how === "out") self.zoomBy(1 / 1.4);
        else self.fit();
      });
    });
    const toggle = part(widget, "highlight-toggle");
    if (toggle) toggle.addEventListener("change", function () {
      self.mark(toggle.checked ? self.hl : { h: [], chain: [] });
    });
    const close = part(widget, "panel-close");
    if (close) close.addEventListener("click", function () { self.closePanel(); });
    widget.addEventListener("keydown", function (evt) {
      if (evt.key === "Escape" && !self.panel.hidden && evt.target !== search) self.closePanel();
    });
    // Buttons in the panels: data-graph-tool="<name>" focuses a tool, data-graph-edge="<pk>" opens an edge.
    this.panel.addEventListener("click", function (evt) {
      const toolButton = evt.target.closest("[data-graph-tool]");
      const edgeButton = evt.target.closest("[data-graph-edge]");
      if (toolButton) { evt.preventDefault(); self.focusByName(toolButton.dataset.graphTool); }
      else if (edgeButton) {
        evt.preventDefault();
        const edge = self.cy.getElementById("e" + edgeButton.dataset.graphEdge);
        if (edge.length) {
          self.cy.elements(":selected").unselect();
          edge.removeClass("off").select();
          edge.connectedNodes().union(edge).removeClass("dim");
        }
        self.openPanel(self.data.urls.edge + edgeButton.dataset.graphEdge + "/");
      }
    });
  };

  // A task's subgraph H (outlined) and gold chain (filled, with numbered steps); the rest is dimmed
  // and the view fitted to them.
  Graph.prototype.highlight = function (highlight) {
    this.hl = { h: (highlight && highlight.h) || [], chain: (highlight && highlight.chain) || [] };
    const toggle = part(this.widget, "highlight-toggle");
    if (toggle) toggle.checked = true;
    this.mark(this.hl);
    const focus = this.cy.nodes(".in-h, .in-chain");
    this.fit(focus.length ? focus : null);
  };

  Graph.prototype.mark = function (hl) {
    const cy = this.cy;
    const self = this;
    cy.batch(function () {
      cy.elements(".chain").remove();
      cy.elements(".in-h, .in-chain, .outside").removeClass("in-h in-chain outside");
      hl.h.forEach(function (name) { const n = self.byName(name); if (n) n.addClass("in-h"); });
      const chain = hl.chain.map(function (name) { return self.byName(name); });
      chain.forEach(function (n) { if (n) n.addClass("in-chain"); });
      const steps = {};
      for (let i = 0; i + 1 < chain.length; i++) {
        const a = chain[i], b = chain[i + 1];
        if (!a || !b || a.same(b)) continue;
        const key = a.id() + ">" + b.id();
        if (steps[key]) { steps[key].step += ", " + (i + 1) + "→" + (i + 2); continue; }
        steps[key] = { id: "chain-" + i, source: a.id(), target: b.id(), step: (i + 1) + "→" + (i + 2) };
      }
      Object.keys(steps).forEach(function (key) { cy.add({ group: "edges", data: steps[key], classes: "chain", selectable: false }); });
      const focus = cy.nodes(".in-h, .in-chain");
      if (!focus.length) return;
      cy.nodes(".tool").difference(focus).addClass("outside");
      cy.edges(".dep").forEach(function (e) {
        if (!e.source().is(".in-h, .in-chain") || !e.target().is(".in-h, .in-chain")) e.addClass("outside");
      });
    });
  };

  function init(root) {
    if (!window.cytoscape) return;
    widgets(root || document).forEach(function (widget) {
      if (widget.dataset.graphInit) return;
      widget.dataset.graphInit = "1";
      new Graph(widget).load();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (evt) { init(evt.target); });
  document.addEventListener("htmx:beforeCleanupElement", function (evt) {
    widgets(evt.target).forEach(function (widget) {
      if (widget.scaleenvGraph) { widget.scaleenvGraph.cy.destroy(); widget.scaleenvGraph = null; }
    });
  });
})();
