// The alert form, no build step. Without JavaScript every schedule field shows and the form works the same.
// Only the chosen schedule kind's fields show (fieldsets marked "schedule-kind kind-<kind>").
"use strict";
{
  const form = () => document.getElementById("alert_form");

  const showChosenKind = () => {
    const kind = document.getElementById("id_schedule_kind");
    if (!kind) return;
    for (const fieldset of document.querySelectorAll("fieldset.schedule-kind")) {
      // A fieldset holding an error stays visible, or the error could not be seen.
      const keep = fieldset.classList.contains(`kind-${kind.value}`) || fieldset.querySelector(".errorlist");
      fieldset.style.display = keep ? "" : "none";
    }
  };

  document.addEventListener("DOMContentLoaded", () => {
    if (!form()) return;
    document.getElementById("id_schedule_kind")?.addEventListener("change", showChosenKind);
    showChosenKind();
  });
}
