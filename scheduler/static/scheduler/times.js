// Every time on the service's pages (the job pages and the admin) in one zone, the viewer's, labelled with
// it: the server writes <time datetime="…UTC…">… UTC</time>, which stays as it is without JavaScript, and
// this shows it as e.g. "1 Jun 2030, 14:00:00 CEST", keeping the UTC time in its title for hover.
(function () {
  "use strict";

  var dateFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      el.textContent = dateFormat.format(when);
      el.setAttribute("data-local", "");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var name = Intl.DateTimeFormat().resolvedOptions().timeZone;
    document.querySelectorAll("[data-viewer-timezone]").forEach(function (el) {
      if (name) el.textContent = " (" + name + ")";
    });
    localizeTimes(document);
  });

  // New content from a poll (htmx fires htmx:load on each element it adds).
  document.addEventListener("htmx:load", function (event) { localizeTimes(event.target); });
})();
