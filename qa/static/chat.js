/*
 * The Gradio chat page's own script (app.py passes it as the page's js, __QA_CHAT_SETTINGS__ filled in).
 *
 * - qaChat.ask(question, chat) runs in the browser when Enter is pressed: it checks the question (empty, too long,
 *   an answer still pending) and, if it is fine, shows it in the chat at once with a "searching" placeholder, before
 *   the server is reached; otherwise the text stays in the box and the reason shows under the chat.
 * - A marker [n] of an answer opens that answer's own source n in the panel: highlighted, focused, scrolled to, with
 *   a "Back to the answer" button (on a phone the panel is far below the chat).
 * Every text put in the page here is escaped.
 */
(function () {
  "use strict";
  var SETTINGS = __QA_CHAT_SETTINGS__;
  var lang = (navigator.language || "en").slice(0, 2).toLowerCase() === "fr" ? "fr" : "en";
  var T = SETTINGS.text[lang];
  var asking = false;
  var rounds = 0; // questions (accepted or refused) whose round trip to the server is over
  var back = null; // the marker the current source was opened from
  var ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function esc(text) { return String(text).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; }); }
  function alertHtml(message) { return '<div class="qa-alert" role="alert">' + esc(message) + "</div>"; }
  function message(role, html) { return { role: role, content: [{ type: "text", text: html }], metadata: null, options: null }; }

  function ask(question, chat) {
    var text = String(question || "").replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "").trim();
    if (asking) return [question, chat, "", alertHtml(T.wait)];
    if (!text) return [question, chat, "", alertHtml(T.empty)];
    var n = Array.from(text).length;
    if (n > SETTINGS.max_chars) {
      return [question, chat, "", alertHtml(T.too_long.replace("{n}", n).replace("{max}", SETTINGS.max_chars))];
    }
    asking = true;
    var shown = (chat || []).concat([message("user", SETTINGS.user_html.replace("{text}", esc(text))),
                                     message("assistant", T.status_html)]);
    return ["", shown, text, ""];
  }

  function done() {
    asking = false;
    rounds += 1;
    return [];
  }

  function reducedMotion() { return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches; }

  function showSource(aid, n, from) {
    var group = document.querySelector('#qa-sources .qa-group[data-aid="' + aid + '"]');
    var entry = group && group.querySelector('.qa-entry[data-ns~="' + n + '"]');
    if (!entry) return false;
    document.querySelectorAll("#qa-sources .qa-current").forEach(function (el) { el.classList.remove("qa-current"); });
    document.querySelectorAll("#qa-sources .qa-back").forEach(function (b) { b.hidden = true; });
    entry.classList.remove("qa-flash");
    void entry.offsetWidth; // restart the highlight animation
    entry.classList.add("qa-current", "qa-flash");
    var mark = entry.querySelector('mark[data-n~="' + n + '"]');
    if (mark) mark.classList.add("qa-current");
    back = from;
    var button = entry.querySelector(".qa-back");
    if (button) {
      button.hidden = false;
      button.onclick = function () {
        button.hidden = true;
        if (!back || !document.contains(back)) return;
        back.scrollIntoView({ block: "center", behavior: reducedMotion() ? "auto" : "smooth" });
        back.focus({ preventScroll: true });
      };
    }
    entry.scrollIntoView({ block: "nearest", behavior: reducedMotion() ? "auto" : "smooth" });
    entry.focus({ preventScroll: true });
    return true;
  }

  document.addEventListener("click", function (e) {
    var link = e.target && e.target.closest ? e.target.closest("a.qa-cite") : null;
    if (!link) return;
    var m = /^#qa-src-(\d+)-(\d+)$/.exec(link.getAttribute("href") || "");
    if (!m) return;
    e.preventDefault();
    e.stopPropagation();
    showSource(m[1], m[2], link);
  }, true);

  // Gradio's copy button copies a message's HTML source: copy the text as shown instead.
  document.addEventListener("click", function (e) {
    var button = e.target && e.target.closest ? e.target.closest("#qa-chat .message-buttons button") : null;
    if (!button || !/copy|copier/i.test(button.getAttribute("aria-label") || "")) return;
    var row = button.closest(".message-buttons").previousElementSibling;
    var message = row && row.querySelector('[data-testid="user"], [data-testid="bot"]');
    if (!message || !navigator.clipboard) return;
    e.preventDefault();
    e.stopPropagation();
    var copy = message.cloneNode(true);
    copy.querySelectorAll(".qa-visually-hidden").forEach(function (h) { h.remove(); });
    navigator.clipboard.writeText(copy.textContent.replace(/\u00a0/g, " ").trim());
  }, true);

  // Gradio names the conversation and its messages in English, and reads a message's HTML source into its label:
  // give them the page's words and the text as shown.
  function nameTheLog() {
    var log = document.querySelector('#qa-chat [role="log"]');
    if (log && log.getAttribute("aria-label") !== T.chat_label) log.setAttribute("aria-label", T.chat_label);
    document.querySelectorAll('#qa-chat [data-testid="user"], #qa-chat [data-testid="bot"]').forEach(function (m) {
      var label = (m.getAttribute("data-testid") === "user" ? T.you : T.assistant) + " " + m.textContent.trim();
      if (m.getAttribute("aria-label") !== label) m.setAttribute("aria-label", label);
    });
  }
  new MutationObserver(nameTheLog).observe(document.documentElement,
    { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["aria-label"] });
  nameTheLog();

  window.qaChat = { ask: ask, done: done, showSource: showSource, rounds: function () { return rounds; } };
})();
