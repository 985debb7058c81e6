// Keeps a dashboard page current without reloading it: every few seconds it fetches the same
// page again and, when what it shows has changed, swaps the new content in. It leaves the page
// alone while someone types in one of its forms, and while the tab is hidden. No library, no
// build step; served from the binary (script-src 'self').
(function () {
  "use strict";
  var main = document.querySelector("main");
  var every = Number(document.body.getAttribute("data-live-ms")) || 5000;
  if (!main || !document.body.hasAttribute("data-live-ms")) return;
  // A page whose every load is heavy (the audit log's verification) opts out, and so does
  // one that answers a form (a secret shown once, an error): its address shows another page.
  if (main.querySelector('[data-live="off"]')) return;
  var state = document.getElementById("live");

  function busy() {
    var a = document.activeElement;
    if (a && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) return true;
    var fields = main.querySelectorAll("input, textarea");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type !== "hidden" && f.type !== "submit" && f.value !== f.defaultValue) return true;
    }
    var open = main.querySelectorAll("details[open]");
    return open.length > 0;
  }

  var shown = main.innerHTML;
  function tick() {
    if (document.hidden || busy()) return later();
    var req = new XMLHttpRequest();
    req.open("GET", location.href);
    req.responseType = "document";
    req.onload = function () {
      var fresh = req.status === 200 && req.response && req.response.querySelector("main");
      if (fresh && fresh.innerHTML !== shown && !busy()) {
        main.innerHTML = fresh.innerHTML;
        shown = main.innerHTML;
        if (state) state.textContent = "updated " + new Date().toLocaleTimeString();
      }
      if (req.status === 401 || req.status === 403) {
        if (state) state.textContent = "signed out";
        return;
      }
      later();
    };
    req.onerror = later;
    req.send();
  }
  function later() { setTimeout(tick, every); }
  later();
})();
