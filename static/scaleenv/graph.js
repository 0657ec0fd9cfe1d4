// Draws a tool dependency graph with Cytoscape from positions computed on the server.
(function () {
  const COLORS = { data_flow: "#2f6fdf", pre_post: "#b0459a", shared_state: "#9aa3b5" };

  function draw(container) {
    if (!window.cytoscape || container.dataset.drawn) return;
    const source = document.getElementById(container.dataset.graphId);
    if (!source) return;
    const elements = JSON.parse(source.textContent);
    container.dataset.drawn = "1";
    const cy = window.cytoscape({
      container: container,
      elements: elements.nodes.concat(elements.edges),
      layout: { name: "preset", fit: true, padding: 20 },
      wheelSensitivity: 0.2,
      hideEdgesOnViewport: elements.edges.length > 800,
      style: [
        { selector: "node", style: { label: "data(label)", "font-size": 9, "text-valign": "bottom",
          "background-color": "#4a8f6a", width: 14, height: 14 } },
        { selector: "node[?mutates]", style: { "background-color": "#d08a2a", shape: "round-rectangle" } },
        { selector: "edge", style: { width: 1.2, "curve-style": "bezier", "target-arrow-shape": "triangle",
          "arrow-scale": 0.6, opacity: 0.55 } },
        { selector: "edge[witnessed = 'no']", style: { "line-style": "dashed" } },
        { selector: "edge[kind = 'data_flow']", style: { "line-color": COLORS.data_flow, "target-arrow-color": COLORS.data_flow } },
        { selector: "edge[kind = 'pre_post']", style: { "line-color": COLORS.pre_post, "target-arrow-color": COLORS.pre_post } },
        { selector: "edge[kind = 'shared_state']", style: { "line-color": COLORS.shared_state, "target-arrow-color": COLORS.shared_state } },
        { selector: ".faded", style: { opacity: 0.08 } },
      ],
    });
    cy.on("tap", "node", function (evt) {
      const hood = evt.target.closedNeighborhood();
      cy.elements().addClass("faded");
      hood.removeClass("faded");
    });
    cy.on("tap", function (evt) { if (evt.target === cy) cy.elements().removeClass("faded"); });
    const toggle = document.getElementById("tdg-shared");
    if (toggle) toggle.addEventListener("change", function () {
      cy.edges("[kind = 'shared_state']").style("display", toggle.checked ? "element" : "none");
    });
    container.cy = cy;
  }

  function init(root) { (root || document).querySelectorAll("[data-graph-id]").forEach(draw); }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (evt) { init(evt.target); });
  document.addEventListener("htmx:beforeCleanupElement", function (evt) {
    if (evt.target.cy) { evt.target.cy.destroy(); }
  });
})();
