// Starts asciinema-player on the session page's #player element; the cast
// is streamed by the server from the recording store. The speed selector
// recreates the player at the same position with the new speed. Opened
// from a search hit (data-at, seconds into the session), it starts paused
// at that moment, in the session's own time (no idle time cut), so the
// moment is where the hit says.
(function () {
  function start(el, speed, at, play) {
    var seek = el.dataset.at !== undefined;
    return AsciinemaPlayer.create(el.dataset.cast, el, {
      controls: true, fit: "width", idleTimeLimit: seek ? undefined : 2, speed: speed, startAt: at, autoPlay: play,
      preload: seek, poster: seek ? "npt:" + at : undefined
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("player");
    var speed = document.getElementById("speed");
    if (!el || !window.AsciinemaPlayer) return;
    var at = parseFloat(el.dataset.at) || 0;
    window.sallyportPlayer = start(el, 1, at, false);
    // A hit's moment is when its text arrived: seek just past it, so the
    // screen shows the text rather than the instant before.
    if (at > 0) window.sallyportPlayer.seek(at + 0.05);
    var hit = document.getElementById("hit");
    if (hit) hit.scrollIntoView({ block: "center" });
    if (!speed) return;
    speed.hidden = false;
    speed.querySelector("select").addEventListener("change", function (e) {
      var p = window.sallyportPlayer;
      Promise.resolve(p.getCurrentTime()).then(function (at) {
        p.dispose();
        el.textContent = "";
        window.sallyportPlayer = start(el, parseFloat(e.target.value), at || 0, true);
      });
    });
  });
})();
