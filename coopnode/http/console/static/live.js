// The live lunch view: each `figures` event of /api/v1/console/live/events replaces the
// figures on the page. The words come from the page (#live-words), in its language.
(function () {
  var words = JSON.parse(document.getElementById("live-words").dataset.words);
  var status = document.getElementById("live-status");

  function declines(found) {
    var parts = Object.keys(found).map(function (reason) {
      return (words.reasons[reason] || reason) + ": " + found[reason];
    });
    return parts.length ? parts.join(", ") : words.none;
  }

  function wait(store) {
    if (store.over_capacity) { return words.over_capacity; }
    if (store.wait_s === null) { return words.no_till; }
    return words.seconds.replace("{s}", String(store.wait_s));
  }

  function cell(row, name, value) {
    var found = row.querySelector("td." + name);
    if (!found) {
      found = document.createElement("td");
      found.className = name;
      row.appendChild(found);
    }
    found.textContent = value;
  }

  function show(figures) {
    document.getElementById("live-tills").textContent = figures.tills_connected;
    document.getElementById("live-taps").textContent = figures.taps_since_start;
    document.getElementById("live-declines").textContent = declines(figures.declines_in_window);
    document.getElementById("live-at").textContent =
      new Date(figures.at_ms).toLocaleTimeString(document.documentElement.lang, {timeZone: "Asia/Tokyo"});
    var body = document.getElementById("live-stores");
    var rows = [];
    figures.stores.forEach(function (store) {
      var row = body.querySelector('tr[data-store="' + CSS.escape(store.store) + '"]');
      if (!row) {
        row = document.createElement("tr");
        row.dataset.store = store.store;
      }
      cell(row, "store", store.store);
      cell(row, "tills", store.tills_connected);
      cell(row, "rate", store.taps_per_min);
      cell(row, "window", store.taps_in_window);
      cell(row, "declines", declines(store.declines_in_window));
      cell(row, "wait", wait(store));
      rows.push(row);
    });
    body.replaceChildren.apply(body, rows);
    status.dataset.version = String(Number(status.dataset.version) + 1);
  }

  var events = new EventSource("/api/v1/console/live/events");
  events.addEventListener("figures", function (event) { show(JSON.parse(event.data)); });
  events.addEventListener("error", function () { status.dataset.lost = "1"; });
  events.addEventListener("open", function () { delete status.dataset.lost; });
})();
