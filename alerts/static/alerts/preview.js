// Live preview of an alert's next occurrences while its schedule is edited; no build step.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("alert_form");
  const target = document.getElementById("occurrence-preview");
  if (!form || !target) return;
  const previewPath = window.location.pathname.replace(/alerts\/alert\/.*$/, "alerts/alert/preview/");
  let timer = null;
  const refresh = () => {
    const params = new URLSearchParams(new FormData(form));
    params.delete("csrfmiddlewaretoken");
    fetch(`${previewPath}?${params}`, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => { target.innerHTML = html; })
      .catch(() => { target.textContent = "Preview unavailable."; });
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300); });
  form.addEventListener("change", refresh);
  refresh();
});
