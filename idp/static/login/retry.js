// The sign-in button stays disabled while the throttle's delay runs, with the seconds left on
// it, then comes back. A static file, so the page's Content-Security-Policy needs no
// inline-script exemption; without JavaScript, reloading the page after the delay does the same.
"use strict";
(function () {
  var button = document.querySelector("button[data-retry-after]");
  if (!button) {
    return;
  }
  var left = parseInt(button.getAttribute("data-retry-after"), 10) || 0;
  var label = button.textContent;
  function tick() {
    if (left <= 0) {
      button.disabled = false;
      button.removeAttribute("aria-disabled");
      button.textContent = label;
      return;
    }
    button.textContent = label + " (" + left + ")";
    left -= 1;
    window.setTimeout(tick, 1000);
  }
  tick();
})();
