// The counter's reader on the find page: listens to the reader's events (server-sent
// events, http/api/counter_taps.py) and opens the member's page when a card is laid on
// it, so the clerk types nothing. A card no member holds is said so on the page. Without
// this script the page still finds members by what the clerk types.
(function () {
  var section = document.getElementById("card-reader");
  if (!section || !section.dataset.events) {
    return;
  }
  var unknown = document.getElementById("reader-unknown");
  var source = new EventSource(section.dataset.events);
  source.addEventListener("open", function () {
    section.dataset.listening = "1";
  });
  source.addEventListener("card", function (event) {
    var tap = JSON.parse(event.data);
    if (tap.member_no) {
      source.close();
      window.location.assign(section.dataset.memberPath + tap.member_no);
    } else if (unknown) {
      unknown.hidden = false;
    }
  });
})();
