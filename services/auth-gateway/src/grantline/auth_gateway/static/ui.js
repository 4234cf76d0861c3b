// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // The page an OAuth flow returns to carries no session cookie (SameSite=Strict, cross-site
  // redirect); a navigation started here does, so continue to the list by ourselves.
  var next = document.querySelector("[data-auto-continue]");
  if (next) {
    window.setTimeout(function () { window.location.assign(next.getAttribute("href")); }, 600);
  }

  // "Who is this connection for?": the user id field only matters for a user connection.
  var userField = document.querySelector("[data-enabled-by]");
  if (userField) {
    var userChoice = document.getElementById(userField.getAttribute("data-enabled-by"));
    var sync = function () { userField.disabled = !userChoice.checked; };
    document.querySelectorAll("input[name=owner]").forEach(function (radio) {
      radio.addEventListener("change", sync);
    });
    sync();
  }

  // Move focus to the status or error message after a redirect, so screen readers announce it.
  var message = document.querySelector(".alert") || document.querySelector(".status:not(:empty)");
  if (message) {
    message.setAttribute("tabindex", "-1");
    message.focus({ preventScroll: true });
  }
})();
