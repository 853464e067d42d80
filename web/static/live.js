// Live view of a running session: one read-only Server-Sent Events stream
// (GET /sessions/ID/live) feeds asciinema-player through a small driver
// (terminal output, and exec streams for sessions without a terminal) and
// the event list (queries, commands, files). Nothing is ever sent back.
(function () {
  var section, stateEl, table, player = null, sink = null, pending = [], started = 0;

  function setState(text, cls) {
    stateEl.textContent = text;
    stateEl.className = "badge " + (cls || "live");
  }

  // emit hands the player an event, or keeps it until the player is ready.
  function emit(kind, arg) {
    if (sink) sink(kind, arg); else pending.push([kind, arg]);
  }

  // driver is asciinema-player's view of the stream: it only ever outputs.
  function driver(cols, rows) {
    return function (ctx) {
      return {
        play: function () {
          sink = ctx.dispatch;
          sink("play");
          sink("reset", { size: { cols: cols, rows: rows } });
          sink("playing");
          pending.forEach(function (p) { sink(p[0], p[1]); });
          pending = [];
          return true;
        },
        stop: function () {},
        getTiming: function () {
          return { time: (performance.now() - started) / 1000, rate: 1, sampledAt: performance.timeOrigin + performance.now() };
        }
      };
    };
  }

  function ensurePlayer(cols, rows) {
    if (player || !window.AsciinemaPlayer) return;
    started = performance.now();
    player = AsciinemaPlayer.create(driver(cols, rows), document.getElementById("live-player"),
      { autoPlay: true, controls: false, fit: "width", cols: cols, rows: rows });
    window.sallyportLive = player;
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    var code = document.createElement(cls === "code" ? "code" : "span");
    code.textContent = text;
    if (cls && cls !== "code") code.className = cls;
    td.appendChild(code);
    tr.appendChild(td);
  }

  // addRecord lists an event as the session page's timeline does, as text.
  function addRecord(ev) {
    if (ev.type === "data") return;
    var tr = document.createElement("tr");
    var what = ev.sql || ev.command || ev.path || ev.host || ev.text || ev.reason || ev.op || "";
    var o = ev.outcome || {};
    var outcome = o.error_code || o.error ? (o.error_code || "") + " " + (o.error || "") : (o.tag || "");
    cell(tr, (ev.time || "").replace("T", " ").replace(/\.\d+/, ""));
    cell(tr, ev.type);
    cell(tr, what, "code");
    cell(tr, outcome, o.error_code || o.error ? "err" : "");
    table.appendChild(tr);
    table.hidden = false;
    tr.scrollIntoView({ block: "nearest" });
  }

  function on(es, name, fn) {
    es.addEventListener(name, function (e) { fn(JSON.parse(e.data)); });
  }

  function watch(url) {
    var es = new EventSource(url);
    es.onopen = function () { setState("live"); };
    on(es, "term", function (t) { if (t.channel === 0 || !player) ensurePlayer(t.cols, t.rows); });
    on(es, "resize", function (t) { if (t.channel === 0) emit("resize", { cols: t.cols, rows: t.rows }); });
    on(es, "output", function (o) { ensurePlayer(80, 24); emit("output", o.text); });
    on(es, "exec", function (x) {
      ensurePlayer(80, 24);
      var text = x.text.replace(/\r?\n/g, "\r\n");
      emit("output", x.stream === "stdin" ? "\x1b[33m" + text + "\x1b[0m" : x.stream === "stderr" ? "\x1b[31m" + text + "\x1b[0m" : text);
    });
    on(es, "record", addRecord);
    on(es, "lost", function (l) { setState("live: " + l.lost + " records dropped, the screen may be incomplete", "pending"); });
    on(es, "end", function (ev) {
      es.close();
      addRecord(ev);
      setState("ended: reload the page to replay the recording", "intact");
    });
    // A session of another replica is followed in the store; a recording
    // that cannot be read as recorded stops the view.
    on(es, "failed", function (f) {
      es.close();
      setState("stopped: " + f.error, "tampered");
    });
    // EventSource would reconnect, and each connection is a new watch; a
    // lost stream is left for the person to reopen.
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED || stateEl.textContent.indexOf("ended") === 0) return;
      es.close();
      setState("disconnected: reload the page to watch again", "tampered");
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    section = document.getElementById("live");
    if (!section) return;
    stateEl = document.getElementById("live-state");
    table = document.getElementById("live-events");
    watch(section.dataset.stream);
  });
})();
