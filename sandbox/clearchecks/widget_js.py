"""The browser side of the widgets: `accounts.js` (account creation) and `report.js` (report viewer).

Stable hooks for tests and platforms (documented in docs/providers/clearchecks.md):
modal `#cc-widget`, inputs `#cc-company`, `#cc-first-name`, `#cc-last-name`, `#cc-email`,
submit button `#cc-submit` ("Create account"), close button `#cc-close` ("Close"),
message line `#cc-error`.
"""

from __future__ import annotations

ACCOUNTS_JS = r"""/* ClearChecks sandbox: account creation widget (demo, not the real ClearChecks script). */
(function () {
  "use strict";
  var BASE = "__BASE__";
  function make(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }
  function field(form, id, label, type) {
    var wrap = make("div", {"class": "cc-field"});
    wrap.appendChild(make("label", {"for": id}, label));
    wrap.appendChild(make("input", {"id": id, "name": id, "type": type, "required": "required"}));
    form.appendChild(wrap);
  }
  function init(options) {
    var opts = options || {};
    var overlay = null;
    function call(name, arg) {
      if (typeof opts[name] === "function") {
        try { opts[name](arg); } catch (e) { if (window.console) { console.error(e); } }
      }
    }
    function remove() { if (overlay) { overlay.parentNode.removeChild(overlay); overlay = null; } }
    function fail(error) { remove(); call("onError", error); }
    function show() {
      overlay = make("div", {"id": "cc-widget", "role": "dialog", "aria-label": "Create a ClearChecks account",
        "style": "position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center;z-index:2147483647"});
      var box = make("div", {"style": "background:#fff;padding:24px;border-radius:8px;min-width:320px;font-family:sans-serif"});
      box.appendChild(make("h2", {}, "Create your ClearChecks account"));
      var form = make("form", {"id": "cc-form", "novalidate": "novalidate"});
      field(form, "cc-company", "Company name", "text");
      field(form, "cc-first-name", "First name", "text");
      field(form, "cc-last-name", "Last name", "text");
      field(form, "cc-email", "Email", "email");
      form.appendChild(make("p", {"id": "cc-error", "role": "alert", "style": "color:#b00020"}));
      form.appendChild(make("button", {"id": "cc-submit", "type": "submit"}, "Create account"));
      var closer = make("button", {"id": "cc-close", "type": "button"}, "Close");
      closer.addEventListener("click", function () { remove(); call("onClose"); });
      form.appendChild(closer);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var submit = document.getElementById("cc-submit");
        submit.disabled = true;
        var payload = {
          source_token: opts.sourceToken || "",
          company_name: document.getElementById("cc-company").value,
          first_name: document.getElementById("cc-first-name").value,
          last_name: document.getElementById("cc-last-name").value,
          email: document.getElementById("cc-email").value
        };
        fetch(BASE + "/widgets/accounts", {method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify(payload)})
          .then(function (r) { return r.json().then(function (b) { return {status: r.status, body: b}; }); })
          .then(function (res) {
            submit.disabled = false;
            if (res.status === 201) { remove(); call("onSuccess", res.body.token); }
            else if (res.status === 422) { document.getElementById("cc-error").textContent = res.body.error; }
            else { fail({status: res.status, error: res.body.error}); }
          })
          .catch(function (e) { submit.disabled = false; fail({status: 0, error: String(e)}); });
      });
      box.appendChild(form);
      overlay.appendChild(box);
      document.body.appendChild(overlay);
    }
    function open() {
      if (overlay) { return; }
      fetch(BASE + "/widgets/accounts/session?source_token=" + encodeURIComponent(opts.sourceToken || ""))
        .then(function (r) { return r.json().then(function (b) { return {ok: r.ok, status: r.status, body: b}; }); })
        .then(function (res) { if (res.ok) { show(); } else { fail({status: res.status, error: res.body.error}); } })
        .catch(function (e) { fail({status: 0, error: String(e)}); });
    }
    return {open: open, close: function () { if (overlay) { remove(); call("onClose"); } }};
  }
  window.ClearChecksWidget = {init: init};
})();
"""

REPORT_JS = r"""/* ClearChecks sandbox: report viewer widget (demo). */
(function () {
  "use strict";
  var BASE = "__BASE__";
  window.ClearChecksReportWidget = {
    init: function (options) {
      var frame = document.createElement("iframe");
      frame.id = "cc-report-frame";
      frame.src = BASE + "/widgets/report?token=" + encodeURIComponent((options || {}).token || "");
      frame.style.cssText = "width:100%;min-height:480px;border:1px solid #ccc";
      ((options || {}).container || document.body).appendChild(frame);
      return {close: function () { frame.parentNode && frame.parentNode.removeChild(frame); }};
    }
  };
})();
"""
