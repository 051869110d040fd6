// The only script: keep the ack board live over server-sent events.
(function () {
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) return;
  var source = new EventSource(live.getAttribute("data-live"));
  source.addEventListener("board", function (e) {
    live.innerHTML = JSON.parse(e.data).html;
    live.setAttribute("data-updated", String(Date.now()));
  });
})();
