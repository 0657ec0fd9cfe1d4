// Trajectory replay on the run page: step controls (first, previous, play/pause, next, last, a
// slider and a strip of every step), expand/collapse all, the jump to the first failing step.
// Keys come from shortcuts.js, which clicks the buttons marked data-shortcut (j/→, k/←, e, f, ?);
// this file only adds them for the slider, where shortcuts.js stands aside. Step bodies load
// lazily (htmx, on a step's first opening); a step on another page loads that page first.
// Loaded as a static file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  function init(root) {
    if (root.dataset.ready) return;
    root.dataset.ready = "1";
    const count = Number(root.dataset.count) || 0;
    const perPage = Number(root.dataset.perPage) || 50;
    const stepsUrl = root.dataset.stepsUrl;
    const failing = root.dataset.firstFailing === "" ? null : Number(root.dataset.firstFailing);
    const slider = root.querySelector("#step-slider");
    const position = root.querySelector("#step-position");
    const strip = root.querySelector("#step-strip");
    const steps = root.querySelector("#steps");
    const playButton = root.querySelector('[data-act="play"]');
    const expandButton = root.querySelector('[data-act="expand"]');
    const speed = root.querySelector("#replay-speed");
    let current = root.dataset.current === "" ? null : Number(root.dataset.current);
    let expanded = false;
    let timer = null;
    let busy = false;

    function pageUrl(page) {
      let url = stepsUrl + "?page=" + page;
      if (failing !== null) url += "&failing=" + failing;
      if (expanded) url += "&open=all";
      return url;
    }

    // Resolves once htmx has settled the new page: until then it keeps the old elements' attributes
    // on new elements with the same id, so marking the current step earlier would be undone.
    function loadPage(page) {
      busy = true;
      return new Promise(function (resolve) {
        function settled(event) {
          if (event.target !== steps) return;
          steps.removeEventListener("htmx:afterSettle", settled);
          resolve();
        }
        steps.addEventListener("htmx:afterSettle", settled);
        htmx.ajax("GET", pageUrl(page), { target: steps, swap: "innerHTML" }).then(function () {
          window.setTimeout(function () { // no swap (an error): do not wait for ever
            steps.removeEventListener("htmx:afterSettle", settled);
            resolve();
          }, 500);
        });
      }).finally(function () {
        busy = false;
      });
    }

    function showPosition(i) {
      if (slider) slider.value = String(i);
      if (position) position.textContent = "#" + i + " · " + (i + 1) + " of " + count;
      if (strip) {
        const old = strip.querySelector(".tick.is-current");
        if (old) old.classList.remove("is-current");
        const tick = strip.querySelector('.tick[data-i="' + i + '"]');
        if (tick) tick.classList.add("is-current");
      }
    }

    function select(i, scroll) {
      const item = document.getElementById("step-" + i);
      if (!item) return;
      const previous = steps.querySelector(".step.is-current");
      if (previous && previous !== item) {
        previous.classList.remove("is-current");
        // A step opened by the controls closes again when the replay moves on (unless all are expanded).
        if (!expanded && previous.dataset.auto === "1") {
          const d = previous.querySelector("details");
          if (d) d.open = false;
        }
        delete previous.dataset.auto;
      }
      item.classList.add("is-current");
      const details = item.querySelector("details");
      if (details && !details.open) {
        // A page swapped in a moment ago may not be processed by htmx yet (it does so on settle):
        // process it now so the first toggle below finds its listener and loads the body.
        htmx.process(item);
        details.open = true; // its first toggle loads the body (hx-trigger="toggle once")
        item.dataset.auto = "1";
      }
      current = i;
      showPosition(i);
      if (scroll !== false) item.scrollIntoView({ block: "start" });
      const url = new URL(window.location.href);
      url.searchParams.set("step", String(i));
      url.searchParams.delete("page");
      url.hash = "";
      window.history.replaceState(null, "", url);
    }

    function goTo(i, scroll) {
      if (!count || busy) return Promise.resolve();
      i = Math.max(0, Math.min(count - 1, i));
      if (document.getElementById("step-" + i)) {
        select(i, scroll);
        return Promise.resolve();
      }
      return loadPage(Math.floor(i / perPage) + 1).then(function () {
        select(i, scroll);
      });
    }

    function step(delta) {
      return goTo(current === null ? (delta > 0 ? 0 : count - 1) : current + delta);
    }

    function setPlaying(on) {
      if (timer) window.clearInterval(timer);
      timer = null;
      if (on) {
        if (current === null || current >= count - 1) goTo(0);
        timer = window.setInterval(function () {
          if (busy) return;
          if (current !== null && current >= count - 1) {
            setPlaying(false);
            return;
          }
          step(1);
        }, Number(speed && speed.value) || 1000);
      }
      if (playButton) {
        playButton.setAttribute("aria-pressed", on ? "true" : "false");
        playButton.textContent = on ? "❚❚ Pause" : "▶ Play";
      }
    }

    function toggleAll() {
      expanded = !expanded;
      expandButton.setAttribute("aria-pressed", expanded ? "true" : "false");
      expandButton.textContent = expanded ? "Collapse all" : "Expand all";
      root.classList.toggle("all-open", expanded);
      if (expanded) {
        // One request for the whole page with its bodies inline, rather than one per step.
        const list = steps.querySelector("ol.steps");
        const page = list ? Number(list.dataset.page) : 1;
        const keep = current;
        return loadPage(page).then(function () {
          if (keep !== null && document.getElementById("step-" + keep)) select(keep, false);
        });
      }
      steps.querySelectorAll(".step details[open]").forEach(function (d) {
        if (!d.closest(".step").classList.contains("is-current")) d.open = false;
      });
      return Promise.resolve();
    }

    root.addEventListener("click", function (event) {
      const button = event.target.closest("[data-act]");
      if (button) {
        const act = button.dataset.act;
        if (act !== "play" && act !== "expand") setPlaying(false);
        if (act === "first") goTo(0);
        else if (act === "last") goTo(count - 1);
        else if (act === "prev") step(-1);
        else if (act === "next") step(1);
        else if (act === "play") setPlaying(!timer);
        else if (act === "expand") toggleAll();
        else if (act === "failing" && failing !== null) goTo(failing);
        return;
      }
      const link = event.target.closest("[data-goto]");
      if (link) {
        event.preventDefault();
        setPlaying(false);
        goTo(Number(link.dataset.goto));
        return;
      }
      const tick = event.target.closest(".tick[data-i]");
      if (tick) {
        setPlaying(false);
        goTo(Number(tick.dataset.i));
      }
    });

    if (slider) {
      slider.addEventListener("input", function () {
        const i = Number(slider.value);
        if (position) position.textContent = "#" + i + " · " + (i + 1) + " of " + count;
      });
      slider.addEventListener("change", function () {
        setPlaying(false);
        goTo(Number(slider.value));
      });
      // shortcuts.js ignores keys while an input has focus; the slider is no text field, so its
      // letters still work here (its arrows move the slider itself).
      slider.addEventListener("keydown", function (event) {
        if (event.ctrlKey || event.altKey || event.metaKey) return;
        const target = { j: "next", k: "prev", e: "expand", f: "failing" }[event.key];
        const button = target && root.querySelector('[data-act="' + target + '"]');
        if (button) {
          event.preventDefault();
          button.click();
        }
      });
    }
    if (speed) speed.addEventListener("change", function () { if (timer) setPlaying(true); });

    // The page links of the step list keep "expand all" on.
    steps.addEventListener("htmx:configRequest", function (event) {
      if (expanded && event.detail.elt.closest && event.detail.elt.closest(".step-pages")) {
        event.detail.parameters.open = "all";
      }
    });

    // A step opened by hand becomes the current one (so next and previous go on from there).
    steps.addEventListener("click", function (event) {
      const summary = event.target.closest("summary");
      const item = summary && summary.closest(".step");
      if (!item) return;
      window.setTimeout(function () {
        const details = item.querySelector("details");
        if (details && details.open && !item.classList.contains("is-current")) {
          setPlaying(false);
          select(Number(item.dataset.i), false);
        }
      }, 0);
    });

    if (current !== null) {
      showPosition(current);
      const item = document.getElementById("step-" + current);
      if (item) item.scrollIntoView({ block: "start" });
    }
  }

  document.addEventListener("htmx:load", function (event) {
    const root = event.detail.elt.querySelector ? event.detail.elt.querySelector("#replay") : null;
    if (root) init(root);
    else if (event.detail.elt.id === "replay") init(event.detail.elt);
  });
})();
