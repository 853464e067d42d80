// Starts asciinema-player on the session page's #player element; the cast
// is streamed by the server from the recording store. The speed selector
// recreates the player at the same position with the new speed.
(function () {
  function start(el, speed, at, play) {
    return AsciinemaPlayer.create(el.dataset.cast, el, {
      controls: true, fit: "width", idleTimeLimit: 2, speed: speed, startAt: at, autoPlay: play
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("player");
    var speed = document.getElementById("speed");
    if (!el || !window.AsciinemaPlayer) return;
    window.sallyportPlayer = start(el, 1, 0, false);
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
