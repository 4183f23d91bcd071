// The dashboard's only script: live updates by short polling of the page's
// main part, and operator actions with a confirmation. No framework.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var result = document.getElementById("result");
  var dialog = document.getElementById("confirm");
  var timer = null;
  var last = null;
  var PERIOD = 1000;

  function liveURL() {
    var u = main.getAttribute("data-live");
    if (!u) return null;
    return u + (u.indexOf("?") >= 0 ? "&" : "?") + "part=main";
  }

  // A field of the main part whose value the user changed (a reason being
  // typed, a box ticked) would be lost if the main part were replaced: an
  // update waits until no field holds an unsent change (the action was sent,
  // which resets its form, or the change was undone), and main's data-held
  // says one is waiting. A field only focused holds nothing, nor does a
  // select that submits its form as soon as it changes.
  function changed(el) {
    if (el.type === "hidden" || el.hasAttribute("data-autosubmit")) return false;
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") {
      // Its default is the last option marked selected, else the first.
      var def = 0;
      for (var i = 0; i < el.options.length; i++) {
        if (el.options[i].defaultSelected) def = i;
      }
      return el.selectedIndex !== def;
    }
    return el.value !== el.defaultValue;
  }

  function editing() {
    var fields = main.querySelectorAll("form input, form select, form textarea");
    for (var i = 0; i < fields.length; i++) {
      if (changed(fields[i])) return true;
    }
    return false;
  }

  function swap(html) {
    if (html === last) { main.removeAttribute("data-held"); return; }
    if (editing()) { main.setAttribute("data-held", "1"); return; }
    main.removeAttribute("data-held");
    last = html;
    var open = [];
    main.querySelectorAll("details[open][id]").forEach(function (d) { open.push(d.id); });
    var focused = document.activeElement && document.activeElement.id;
    var scrolls = [];
    main.querySelectorAll(".gridwrap").forEach(function (w) { scrolls.push(w.scrollLeft); });
    main.innerHTML = html;
    main.querySelectorAll(".gridwrap").forEach(function (w, i) { if (i < scrolls.length) w.scrollLeft = scrolls[i]; });
    open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
    if (focused) { var f = document.getElementById(focused); if (f) f.focus(); }
  }

  function poll() {
    timer = null;
    var u = liveURL();
    if (!u) return;
    if (document.hidden) { schedule(); return; }
    fetch(u, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (resp) {
      if (!resp.ok) { schedule(); return null; }
      var still = resp.headers.get("X-Live") === "1";
      return resp.text().then(function (html) {
        swap(html);
        // A held update is polled for until it is shown, even once the
        // page has nothing live left.
        if (still || main.hasAttribute("data-held")) schedule(); else main.removeAttribute("data-live");
      });
    }).catch(function () { schedule(); });
  }

  function schedule() {
    if (timer === null) timer = setTimeout(poll, PERIOD);
  }

  function startLive() {
    if (!main.getAttribute("data-live")) main.setAttribute("data-live", location.pathname + location.search);
    if (timer !== null) { clearTimeout(timer); timer = null; }
    poll();
  }

  function show(ok, text) {
    result.hidden = false;
    result.className = ok ? "ok" : "fail";
    result.textContent = text;
  }

  function params(text) {
    var out = {};
    text.split(",").forEach(function (kv) {
      kv = kv.trim();
      if (!kv) return;
      var i = kv.indexOf("=");
      if (i <= 0) throw new Error("params: " + JSON.stringify(kv) + " is not key=value");
      out[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
    });
    return out;
  }

  function body(form) {
    var b = {};
    form.querySelectorAll("input, select").forEach(function (el) {
      if (!el.name) return;
      if (el.type === "checkbox") { b[el.name] = el.checked; return; }
      if (el.name === "params") { var p = params(el.value); if (Object.keys(p).length) b.params = p; return; }
      if (el.type === "number") { if (el.value !== "") b[el.name] = parseInt(el.value, 10); return; }
      b[el.name] = el.value;
    });
    return b;
  }

  function question(form, b) {
    var mode = [];
    if (b.force) mode.push("force");
    if (b.only) mode.push("only this step");
    return form.getAttribute("data-confirm").replace(/\{(\w+)\}/g, function (_, k) {
      if (k === "mode") return mode.length ? " (" + mode.join(", ") + ")" : "";
      return b[k] === undefined ? "" : String(b[k]);
    });
  }

  function confirmThen(text, fn) {
    document.getElementById("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.onclose = function () { if (dialog.returnValue === "ok") fn(); };
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("act")) return;
    ev.preventDefault();
    var b;
    try { b = body(form); } catch (e) { show(false, e.message); return; }
    confirmThen(question(form, b), function () {
      fetch(form.getAttribute("data-action"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Pipeline-CSRF": "1" },
        body: JSON.stringify(b)
      }).then(function (resp) {
        return resp.json().then(function (j) {
          if (resp.ok) { form.reset(); show(true, j.message || "Done."); startLive(); }
          else show(false, (j.error || resp.statusText) + " (HTTP " + resp.status + ")");
        });
      }).catch(function (e) { show(false, "Request failed: " + e.message); });
    });
  });

  document.addEventListener("change", function (ev) {
    if (ev.target.hasAttribute && ev.target.hasAttribute("data-autosubmit")) ev.target.form.submit();
  });

  // The newest days are on the right: show them first on a narrow screen.
  main.querySelectorAll(".gridwrap.newest").forEach(function (w) { w.scrollLeft = w.scrollWidth; });
  if (main.getAttribute("data-live")) schedule();
})();
