// Keeps parts of the page fresh: each element with data-live is fetched again from that address when
// its stream (data-live-stream, /live if none: server-sent events) says "changed". Signed out
// meanwhile (the fetch lands on the sign-in page): reload, to sign in.
(function () {
  "use strict";
  var boxes = document.querySelectorAll("[data-live]");
  if (!boxes.length || !window.EventSource) { return; }
  var streams = {};
  Array.prototype.forEach.call(boxes, function (box) {
    var url = box.getAttribute("data-live-stream") || "/live";
    (streams[url] = streams[url] || []).push(box);
  });
  function refresh(box) {
    fetch(box.getAttribute("data-live"), { credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } });
  }
  Object.keys(streams).forEach(function (url) {
    new EventSource(url).addEventListener("changed", function () { streams[url].forEach(refresh); });
  });
})();
