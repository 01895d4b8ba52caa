// Behaviour every page shares, kept out of the HTML so the Content-Security-Policy can
// forbid inline script and style attributes:
// - <select data-autosubmit> submits its form when changed;
// - [data-width="42"] gets width 42% (progress bars), [data-colour] its background.
(function () {
  function paint(root) {
    root.querySelectorAll("[data-width]").forEach((el) => {
      el.style.width = `${Number(el.dataset.width) || 0}%`;
    });
    root.querySelectorAll("[data-colour]").forEach((el) => {
      el.style.background = el.dataset.colour;
    });
  }
  document.addEventListener("change", (event) => {
    const el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.submit();
  });
  // htmx:load fires for the page and for every fragment htmx swaps in.
  document.addEventListener("htmx:load", (event) => paint(event.target));
  document.addEventListener("DOMContentLoaded", () => paint(document));
})();
