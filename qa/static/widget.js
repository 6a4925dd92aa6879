/*
 * qa embed script: a floating chat button that opens the assistant in a panel.
 *
 * One tag on any page of an allowed site (the app's QA_ALLOWED_ORIGINS):
 *
 *   <script src="https://HOST/widget.js" data-title="Ask OPTITEC" data-greeting="Hello!"
 *           data-lang="en" data-color="#0b5fff" data-position="right"></script>
 *
 *   data-title     panel title (default: "Ask the documents" / "Questions sur les documents")
 *   data-greeting  first message of the assistant
 *   data-lang      "en" or "fr" (default: the visitor's browser language): the labels, and the language a name
 *                  typed alone is answered in
 *   data-color     accent colour, #rgb or #rrggbb (default #0b5fff)
 *   data-position  "right" (default) or "left"
 *
 * Everything (this script, the framed chat page /widget, its script and style) comes from HOST, the origin of this
 * script's src. The button and the panel live in a shadow root, so the page's CSS cannot reach them, and no inline
 * event handler or inline style sheet is added to the page. The page can also call window.QAWidget.open(), .close()
 * and .toggle().
 *
 * The chat page is framed (hidden) as soon as the page loads, and the button appears only once it says it is ready:
 * on a site missing from the assistant's allowed sites the browser refuses the frame (frame-ancestors), so visitors
 * see nothing at all and the site's owner finds the reason in the browser console.
 */
(function () {
  "use strict";
  if (window.QAWidget) return; // included twice: keep the first one

  var script = document.currentScript;
  if (!script) { // loaded in an unusual way (e.g. injected as a module): find our own tag
    var tags = document.getElementsByTagName("script");
    for (var i = tags.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(tags[i].src)) { script = tags[i]; break; }
    }
  }
  if (!script || !script.src) return;

  var src = new URL(script.src, document.baseURI);
  var HOST = src.origin;
  var BASE = src.href.replace(/widget\.js([?#].*)?$/, ""); // the app's root (works behind a path prefix too)
  var data = script.dataset || {};

  function pick(value, allowed, fallback) {
    value = (value || "").toLowerCase().trim();
    return allowed.indexOf(value) >= 0 ? value : fallback;
  }
  var browserLang = (navigator.language || "en").slice(0, 2).toLowerCase();
  var lang = pick(data.lang, ["en", "fr"], browserLang === "fr" ? "fr" : "en");
  var position = pick(data.position, ["right", "left"], "right");
  var color = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test((data.color || "").trim()) ? data.color.trim() : "#0b5fff";
  var STRINGS = {
    en: { title: "Ask the documents", open: "Open the assistant", close: "Close the assistant", frame: "Chat assistant" },
    fr: { title: "Questions sur les documents", open: "Ouvrir l'assistant", close: "Fermer l'assistant", frame: "Assistant de discussion" }
  };
  var t = STRINGS[lang];
  var title = (data.title || "").trim() || t.title;
  var greeting = (data.greeting || "").trim();

  function luminance(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h[0] + h[0] + h[1] + h[1] + h[2] + h[2];
    var rgb = [0, 2, 4].map(function (k) {
      var c = parseInt(h.slice(k, k + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }
  var ink = luminance(color) > 0.45 ? "#111827" : "#ffffff";

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    ".launcher{position:fixed;bottom:20px;" + position + ":20px;z-index:2147483000;width:60px;height:60px;border-radius:50%;",
    "  border:0;padding:0;margin:0;cursor:pointer;background:var(--qa-color);color:var(--qa-ink);display:flex;align-items:center;",
    "  justify-content:center;box-shadow:0 6px 20px rgba(0,0,0,.28);transition:transform .15s ease}",
    ".launcher:hover{transform:scale(1.06)}",
    ".launcher:focus-visible{outline:3px solid var(--qa-color);outline-offset:3px}",
    ".launcher svg{width:28px;height:28px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}",
    ".launcher .icon-close{display:none}",
    ".launcher[aria-expanded=true] .icon-chat{display:none}",
    ".launcher[aria-expanded=true] .icon-close{display:block}",
    ".panel{position:fixed;bottom:92px;" + position + ":20px;z-index:2147483001;width:380px;height:600px;",
    "  max-height:calc(100vh - 112px);max-width:calc(100vw - 40px);display:flex;flex-direction:column;overflow:hidden;",
    "  background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.3);",
    "  font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#111827}",
    ".panel[hidden]{display:none}",
    ".head{flex:none;display:flex;align-items:center;gap:8px;padding:10px 8px 10px 16px;background:var(--qa-color);color:var(--qa-ink)}",
    ".head h2{flex:1;margin:0;font-size:16px;font-weight:600;line-height:1.3;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
    ".x{flex:none;width:36px;height:36px;border:0;border-radius:8px;background:transparent;color:inherit;cursor:pointer;",
    "  display:flex;align-items:center;justify-content:center;padding:0}",
    ".x:hover{background:rgba(127,127,127,.25)}",
    ".x:focus-visible{outline:2px solid currentColor;outline-offset:-2px}",
    ".x svg{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2.2;stroke-linecap:round}",
    ".body{position:relative;flex:1;min-height:0}",
    "iframe{display:block;width:100%;height:100%;border:0;background:#fff}",
    ".launcher[hidden]{display:none}",
    "@media (max-width:640px),(max-height:520px){",
    "  .panel{inset:0;width:100%;height:100%;max-width:none;max-height:none;border-radius:0}",
    "  .launcher[aria-expanded=true]{display:none}",
    "}",
    "@media (prefers-reduced-motion:reduce){.launcher{transition:none}}"
  ].join("\n");

  var SVG = "http://www.w3.org/2000/svg";
  function icon(cls, paths) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (cls) svg.setAttribute("class", cls);
    paths.forEach(function (d) {
      var p = document.createElementNS(SVG, "path");
      p.setAttribute("d", d);
      svg.appendChild(p);
    });
    return svg;
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  var CHAT = ["M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1 1 21 12z"];
  var CROSS = ["M6 6l12 12", "M18 6L6 18"];

  var host = document.createElement("qa-chat-widget");
  host.style.setProperty("all", "initial", "important");
  host.style.setProperty("display", "block", "important");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = null;
  try { // a constructed sheet is not subject to the page's style-src CSP
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    style = el("style", {}, [CSS]);
  }

  var panelId = "qa-widget-panel";
  var launcher = el("button", { type: "button", "class": "launcher", "aria-expanded": "false", "aria-controls": panelId,
                                "aria-label": t.open, title: t.open, hidden: "" },
                    [icon("icon-chat", CHAT), icon("icon-close", CROSS)]);
  var closeBtn = el("button", { type: "button", "class": "x", "aria-label": t.close, title: t.close }, [icon("", CROSS)]);
  var heading = el("h2", {}, [title]);
  var body = el("div", { "class": "body" });
  var panel = el("div", { "class": "panel", id: panelId, role: "dialog", "aria-label": title, hidden: "" },
                 [el("div", { "class": "head" }, [heading, closeBtn]), body]);
  panel.style.setProperty("--qa-color", color);
  panel.style.setProperty("--qa-ink", ink);
  launcher.style.setProperty("--qa-color", color);
  launcher.style.setProperty("--qa-ink", ink);
  if (style) root.appendChild(style);
  root.appendChild(panel);
  root.appendChild(launcher);

  var frame = null;
  var ready = false;
  var refused = false;
  var isOpen = false;
  var wantOpen = false; // open() was called before the chat said it was ready

  function frameUrl() {
    var q = new URLSearchParams({ title: title, lang: lang, color: color, embed: "1" });
    if (greeting) q.set("greeting", greeting);
    return BASE + "widget?" + q.toString();
  }

  function refuse() {
    if (ready || refused) return;
    refused = true;
    host.remove(); // the visitors of this site see nothing
    if (window.console) {
      console.error("qa widget: the assistant at " + HOST + " did not load on this site (" + window.location.origin + "). " +
                    "Either this site is not in its allowed sites (add " + window.location.origin + " to QA_ALLOWED_ORIGINS " +
                    "where the assistant runs), or " + HOST + " cannot be reached.");
    }
  }

  function createFrame() {
    frame = el("iframe", { src: frameUrl(), title: t.frame, referrerpolicy: "strict-origin-when-cross-origin",
                           sandbox: "allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox" });
    frame.addEventListener("load", function () {
      // The chat page says "ready" as soon as its script runs, before its load event. A page that loaded without
      // saying so is the browser's error page: this site is not allowed to frame the chat (frame-ancestors).
      setTimeout(function () { if (!ready) refuse(); }, 1500);
    });
    setTimeout(function () { if (!ready) refuse(); }, 60000); // nothing at all came back
    body.appendChild(frame);
  }

  function post(message) {
    if (frame && frame.contentWindow && ready) frame.contentWindow.postMessage(message, HOST);
  }

  function focusChat() {
    if (!frame || !ready) return;
    try { frame.focus(); } catch (e) { /* ignore */ }
    post({ type: "qa-widget:focus" });
  }

  function open() {
    if (isOpen) return;
    if (!ready) { wantOpen = true; return; }
    isOpen = true;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", t.close);
    launcher.title = t.close;
    focusChat();
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", t.open);
    launcher.title = t.open;
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen) close(); else open(); });
  closeBtn.addEventListener("click", close);
  document.addEventListener("keydown", function (e) {
    if (isOpen && (e.key === "Escape" || e.key === "Esc")) close();
  });
  window.addEventListener("message", function (e) {
    // Only the chat page we framed may talk to us.
    if (!frame || e.source !== frame.contentWindow || e.origin !== HOST || !e.data || typeof e.data !== "object") return;
    if (e.data.type === "qa-widget:ready") {
      if (ready || refused) return;
      ready = true;
      launcher.hidden = false;
      if (wantOpen) open();
    } else if (e.data.type === "qa-widget:close") {
      close();
    }
  });

  function mount() {
    (document.body || document.documentElement).appendChild(host);
    createFrame();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  window.QAWidget = { open: open, close: close, toggle: function () { if (isOpen) close(); else open(); } };
})();
