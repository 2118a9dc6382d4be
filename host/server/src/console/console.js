// Progressive enhancement: pages work without this script. It reloads a page whose data
// changed (a decision taken in another console, a switch flipped), unless someone is typing.
(function () {
  var source = document.querySelector("[data-live]");
  if (!source) return;
  var url = source.getAttribute("data-live");
  var seen = source.getAttribute("data-version");
  var typing = false;
  document.addEventListener("input", function () { typing = true; });
  setInterval(function () {
    if (typing || document.hidden) return;
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (version) { if (version !== null && version !== seen) location.reload(); })
      .catch(function () {});
  }, 2000);
})();
