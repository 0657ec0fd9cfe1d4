// Keyboard shortcuts (docs: templates/tasks/_shortcut_help.html), declared in the markup:
//   data-shortcut="j ArrowRight"  pressing one of the keys clicks the element (or focuses a field,
//                                 or toggles a checkbox marked data-toggle-check);
//   data-picker="rejected"        opens the reason picker in that mode (its Enter button is the one
//                                 marked data-default-for="rejected");
//   data-close-picker, data-toggle="id", data-clear="id"  close the picker, show/hide, empty.
// Ignored while typing in a field and whenever Ctrl, Alt or ⌘ is held (those chords belong to the
// browser and the OS). Loaded as a static file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";

  function typing(el) {
    return el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  }

  function shown(el) {
    return !el.closest("[hidden]") && el.getClientRects().length > 0;
  }

  function picker() {
    return document.getElementById("reason-picker");
  }

  function openPicker(mode) {
    const p = picker();
    if (!p) return;
    p.hidden = false;
    p.dataset.mode = mode;
    p.querySelectorAll("[data-default-for]").forEach(function (b) {
      b.classList.toggle("default", b.dataset.defaultFor === mode);
    });
    p.scrollIntoView({ block: "nearest" });
  }

  function closePicker() {
    const p = picker();
    if (p) p.hidden = true;
  }

  function help() {
    return document.getElementById("shortcut-help");
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    const p = picker();
    const pickerOpen = Boolean(p && !p.hidden);
    const key = event.key;
    if (key === "Escape") {
      if (typing(event.target)) event.target.blur();
      else if (help() && !help().hidden) help().hidden = true;
      else if (pickerOpen) closePicker();
      return;
    }
    if (typing(event.target)) return;
    if (key === "Enter" && pickerOpen) {
      const submit = p.querySelector('[data-default-for="' + p.dataset.mode + '"]');
      if (submit) {
        event.preventDefault();
        submit.click();
      }
      return;
    }
    // With the picker open only its own keys work, so a stray letter never decides a task.
    if (pickerOpen && !/^[1-9c?]$/.test(key)) return;
    if (!pickerOpen && /^[1-9]$/.test(key)) return;
    const target = Array.from(document.querySelectorAll("[data-shortcut]")).find(function (el) {
      return el.dataset.shortcut.split(" ").includes(key) && (shown(el) || el.id === "shortcut-help");
    });
    if (!target) return;
    event.preventDefault();
    if (target.hasAttribute("data-toggle-check")) {
      target.checked = !target.checked;
      target.dispatchEvent(new Event("change", { bubbles: true }));
    }
    else if (typing(target) || target.hasAttribute("data-focus")) target.focus();
    else target.click();
  });

  // The picker's error (a refused verdict) is about the boxes: it goes once one changes.
  document.addEventListener("change", function (event) {
    const p = picker();
    if (p && event.target.matches('input[type="checkbox"]') && p.contains(event.target)) {
      p.querySelectorAll(".picker-error").forEach(function (el) { el.remove(); });
    }
  });

  document.addEventListener("click", function (event) {
    const opener = event.target.closest("[data-picker]");
    if (opener) openPicker(opener.dataset.picker);
    if (event.target.closest("[data-close-picker]")) closePicker();
    const toggle = event.target.closest("[data-toggle]");
    if (toggle) {
      const el = document.getElementById(toggle.dataset.toggle);
      if (el) el.hidden = !el.hidden;
    }
    const clear = event.target.closest("[data-clear]");
    if (clear) {
      const el = document.getElementById(clear.dataset.clear);
      if (el) el.replaceChildren();
    }
  });
})();
