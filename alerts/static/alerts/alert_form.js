// The alert form, no build step. Without JavaScript every schedule field shows and the form works the same.
// 1. Only the chosen schedule kind's fields show (fieldsets marked "schedule-kind kind-<kind>").
// 2. The admin's "Now" and "Today" shortcuts read the clock in the alert's timezone, the zone the form
//    reads typed times in, instead of the server's (UTC).
"use strict";
{
  const form = () => document.getElementById("alert_form");
  const zoneSelect = () => document.getElementById("id_timezone");

  const showChosenKind = () => {
    const kind = document.getElementById("id_schedule_kind");
    if (!kind) return;
    for (const fieldset of document.querySelectorAll("fieldset.schedule-kind")) {
      // A fieldset holding an error stays visible, or the error could not be seen.
      const keep = fieldset.classList.contains(`kind-${kind.value}`) || fieldset.querySelector(".errorlist");
      fieldset.style.display = keep ? "" : "none";
    }
  };

  // The wall-clock reading of the instant `at` in `zone`, as numbers; null for a zone the browser lacks.
  const wallClock = (zone, at) => {
    let format;
    try {
      format = new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
        hour: "numeric", minute: "numeric", second: "numeric",
      });
    } catch (error) {
      return null;
    }
    const parts = {};
    for (const { type, value } of format.formatToParts(at)) parts[type] = Number(value);
    return parts;
  };

  const alertZone = () => zoneSelect()?.value || "UTC";

  // DateTimeShortcuts formats the Date it gets with its local getters: give it one that reads the alert's zone.
  const nowInAlertZone = () => {
    const wall = wallClock(alertZone(), new Date());
    if (!wall) return new Date();
    return new Date(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  };

  const offsetMinutes = (zone, at) => {
    const wall = wallClock(zone, at);
    if (!wall) return null;
    const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
    return Math.round((asUtc - Math.floor(at.getTime() / 1000) * 1000) / 60000);
  };

  // Django's note compares the browser with the server's clock, which this form does not use: say instead
  // how the alert's zone compares with the browser's.
  const updateZoneNotes = () => {
    const zone = alertZone();
    const now = new Date();
    const offset = offsetMinutes(zone, now);
    const difference = offset === null ? 0 : offset + now.getTimezoneOffset();
    let text = "";
    if (difference) {
      const hours = Math.abs(difference) / 60;
      const amount = `${hours} hour${hours === 1 ? "" : "s"}`;
      text = `Note: times are read in ${zone}, ${amount} ${difference > 0 ? "ahead of" : "behind"} your browser.`;
    }
    for (const input of form().querySelectorAll("input.vDateField, input.vTimeField")) {
      let note = input.parentNode.querySelector(".timezonewarning");
      if (!note) {
        note = document.createElement("div");
        note.classList.add("help", "timezonewarning");
        input.parentNode.appendChild(note);
      }
      note.textContent = text;
    }
  };

  document.addEventListener("DOMContentLoaded", () => {
    if (!form()) return;
    document.getElementById("id_schedule_kind")?.addEventListener("change", showChosenKind);
    zoneSelect()?.addEventListener("change", updateZoneNotes);
    showChosenKind();
  });

  window.addEventListener("load", () => {
    if (!form() || !window.DateTimeShortcuts) return;
    window.DateTimeShortcuts.now = nowInAlertZone;
    // After DateTimeShortcuts' own load handler has added its notes.
    setTimeout(updateZoneNotes);
  });
}
