// The console's one script, the portal's double-submit guard (http/portal/static/portal.js).
// Send each form once: a second click (or Enter) while the first is on its way does
// nothing. The pressed button's name and value are copied into the form first, because
// a disabled button is not sent. Every page works without this script; the server also
// treats a repeated submit as one (idempotency keys, the engine's double-submit window).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  var submitter = event.submitter;
  if (submitter && submitter.name) {
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = submitter.name;
    hidden.value = submitter.value;
    form.appendChild(hidden);
  }
  window.setTimeout(function () {
    form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
  }, 0);
});
// A page shown again from the back-forward cache may be sent again.
window.addEventListener("pageshow", function () {
  document.querySelectorAll("form").forEach(function (form) {
    delete form.dataset.sent;
    form.querySelectorAll("button").forEach(function (button) { button.disabled = false; });
  });
});
