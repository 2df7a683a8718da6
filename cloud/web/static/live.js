// Keeps a page's live part fresh: the server says "changed" on its event stream (data-live-source,
// /live by default); the part (data-live) is fetched again. Signed out meanwhile: reload, to sign in.
(function () {
  "use strict";
  var box = document.getElementById("live-table");
  if (!box || !window.EventSource) { return; }
  var source = new EventSource(box.getAttribute("data-live-source") || "/live");
  source.addEventListener("changed", function () {
    fetch(box.getAttribute("data-live"), { credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } });
  });
})();
