/* "Add classification" wizard: keyboard focus after a submit replaces the whole form.
 * (Other re-renders keep input ids, and htmx puts focus back on the same input itself.) */
(function () {
  "use strict";
  document.body.addEventListener("htmx:afterSettle", function (event) {
    const path = (event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
    if (!path.endsWith("/wizard/submit/")) return;
    const submitted = document.getElementById("submitted");
    if (submitted) { submitted.focus(); return; }
    // Validation failed: put the curator on the first field that needs fixing.
    const invalid = document.querySelector("#wizard-form [aria-invalid=true]");
    if (!invalid) return;
    const field = invalid.matches("input, select, textarea") ? invalid : invalid.querySelector("input, select, textarea");
    if (field) field.focus();
  });
})();
