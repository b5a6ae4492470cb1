// Live previews while an alert is edited, no build step: its next occurrences (schedule) and its texts as
// a recipient receives them, with the SMS's length, encoding and number of parts.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("alert_form");
  // A page only to look at has no inputs: its previews, of the saved alert, came with the page.
  if (!form || !form.elements.namedItem("message")) return;
  const base = window.location.pathname.replace(/alerts\/alert\/.*$/, "alerts/alert/preview/");
  const previews = [
    { target: document.getElementById("occurrence-preview"), path: base },
    { target: document.getElementById("message-preview"), path: `${base}message/` },
  ].filter((preview) => preview.target);
  if (!previews.length) return;
  let timer = null;
  const refresh = () => {
    const params = new URLSearchParams(new FormData(form));
    params.delete("csrfmiddlewaretoken");
    for (const { target, path } of previews) {
      fetch(`${path}?${params}`, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => { target.innerHTML = html; })
        .catch(() => { target.textContent = "Preview unavailable."; });
    }
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300); });
  form.addEventListener("change", refresh);
  refresh();
});
