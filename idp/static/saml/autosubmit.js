// Submits the SAML response form at once (SAML bindings §3.5.4). A static file, so the page's
// Content-Security-Policy needs no inline-script exemption; without JavaScript the visible
// "Continue" button does the same.
"use strict";
(function () {
  var form = document.getElementById("saml-post");
  if (form && form.getAttribute("data-autosubmit") === "1") {
    form.submit();
  }
})();
