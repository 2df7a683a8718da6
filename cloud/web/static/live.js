// Keeps the page's table fresh: the server says "changed" on /live; the table is fetched again.
(function () {
  "use strict";
  var box = document.getElementById("live-table");
  if (!box || !window.EventSource) { return; }
  var source = new EventSource("/live");
  source.addEventListener("changed", function () {
    fetch(box.getAttribute("data-live"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } });
  });
})();
