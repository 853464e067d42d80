// Starts asciinema-player on the session page's #player element; the cast
// is streamed by the server from the recording store.
document.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("player");
  if (!el || !window.AsciinemaPlayer) return;
  window.sallyportPlayer = AsciinemaPlayer.create(el.dataset.cast, el, {
    controls: true, fit: "width", idleTimeLimit: 2, speed: 1
  });
});
