// The job pages' small script: no build step, no dependency but htmx (for the live parts).
// - Times are shown in the viewer's timezone by times.js (loaded before this one).
// - Elapsed times of running jobs ([data-elapsed], seconds at render) keep counting between polls.
// - The list's "select all" box and the count of selected jobs.
(function () {
  "use strict";

  // Mirrors scheduler_tags.format_duration.
  function formatDuration(seconds) {
    seconds = Math.max(seconds, 0);
    if (seconds < 10) return seconds.toFixed(1) + " s";
    var whole = Math.floor(seconds);
    if (whole < 60) return whole + " s";
    if (whole < 3600) return Math.floor(whole / 60) + " min " + (whole % 60) + " s";
    if (whole < 86400) return Math.floor(whole / 3600) + " h " + Math.floor((whole % 3600) / 60) + " min";
    return Math.floor(whole / 86400) + " d " + Math.floor((whole % 86400) / 3600) + " h";
  }

  // Counted from when the element arrived, not from the server's clock: the two clocks may differ.
  function startElapsed(root) {
    var now = performance.now();
    root.querySelectorAll("[data-elapsed]").forEach(function (el) {
      el._elapsedBase = parseFloat(el.getAttribute("data-elapsed"));
      el._elapsedFrom = now;
    });
  }

  function tick() {
    var now = performance.now();
    document.querySelectorAll("[data-elapsed]").forEach(function (el) {
      if (el._elapsedFrom === undefined) return;
      el.textContent = formatDuration(el._elapsedBase + (now - el._elapsedFrom) / 1000);
    });
  }

  function updateSelection() {
    var boxes = document.querySelectorAll("input[name=ids]");
    var checked = document.querySelectorAll("input[name=ids]:checked").length;
    var all = document.getElementById("select-all");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    var note = document.querySelector("[data-selected-count]");
    if (note) note.textContent = checked ? checked + " selected" : "Select jobs to act on several at once.";
  }

  function setUp(root) {
    startElapsed(root);
    updateSelection();
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.id === "select-all" || target.name === "ids") updateSelection();
  });

  document.addEventListener("DOMContentLoaded", function () {
    setUp(document);
    setInterval(tick, 1000);
  });

  // New content from a poll (htmx fires htmx:load on each element it adds).
  document.addEventListener("htmx:load", function (event) { setUp(event.target); });
})();
