/*
 * The widget's chat (the page /widget, framed by /widget.js or opened directly).
 *
 * Asks POST api/ask/stream with {"question", "history": [{"role", "content"}], "lang"} and reads its server-sent events
 * (sources, token, answer, error) with fetch and a stream reader. Until text comes, a status says what is happening
 * ("Searching the documents…", then "Writing the answer…"); token events carry only text that stays (their
 * concatenation is the start of the final answer; the server sends none unless stream_tokens is on) and are appended;
 * the answer event is final and replaces them, its markers [n] linked to its own cited passages listed under it.
 * Ratings go to POST api/feedback, one per answer (its id), changeable.
 *
 * Every text from the server or the user goes into the page through text nodes, never as HTML: the documents
 * may contain markup or scripts.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  var browserLang = (navigator.language || "en").slice(0, 2).toLowerCase();
  var lang = ["en", "fr"].indexOf((params.get("lang") || "").toLowerCase()) >= 0
    ? params.get("lang").toLowerCase() : (browserLang === "fr" ? "fr" : "en");

  var STRINGS = {
    en: {
      title: "Ask the documents",
      greeting: "Hello! Ask me a question about the documents: every answer cites its sources.",
      placeholder: "Ask a question…",
      question: "Your question",
      send: "Send",
      you: "You said:",
      assistant: "The assistant said:",
      searching: "Searching the documents…",
      writing: "Writing the answer…",
      sources: "Sources",
      source: "Show source",
      wasHelpful: "Helpful?",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      thanks: "Thanks for your feedback.",
      withdrawn: "Your rating is withdrawn.",
      feedbackError: "Your feedback could not be sent.",
      open: "Open the document at this place",
      network: "The assistant could not be reached. Check your connection and try again.",
      rateLimited: function (s) { return "You have asked many questions in a short time; please wait " + s + " s and try again."; },
      busy: "Many people are asking right now; please retry in a few seconds.",
      loading: "The assistant is starting; please retry in a few seconds.",
      server: "The assistant had a problem answering. Please try again.",
      tooLong: "The question is too long.",
      interrupted: "The answer was interrupted. Please try again.",
      timeout: "The assistant took too long to answer. Please try again.",
      retry: "Try again",
      reset: "New conversation",
      disclaimer: "Answers quote the indexed documents."
    },
    fr: {
      title: "Questions sur les documents",
      greeting: "Bonjour ! Posez-moi une question sur les documents : chaque réponse cite ses sources.",
      placeholder: "Posez une question…",
      question: "Votre question",
      send: "Envoyer",
      you: "Vous avez dit :",
      assistant: "L'assistant a répondu :",
      searching: "Recherche dans les documents…",
      writing: "Rédaction de la réponse…",
      sources: "Sources",
      source: "Afficher la source",
      wasHelpful: "Utile ?",
      helpful: "Utile",
      notHelpful: "Pas utile",
      thanks: "Merci pour votre avis.",
      withdrawn: "Votre avis est retiré.",
      feedbackError: "Votre avis n'a pas pu être envoyé.",
      open: "Ouvrir le document à cet endroit",
      network: "Impossible de joindre l'assistant. Vérifiez votre connexion et réessayez.",
      rateLimited: function (s) { return "Vous avez posé beaucoup de questions en peu de temps ; attendez " + s + " s puis réessayez."; },
      busy: "Beaucoup de questions en ce moment ; réessayez dans quelques secondes.",
      loading: "L'assistant démarre ; réessayez dans quelques secondes.",
      server: "L'assistant a rencontré un problème. Veuillez réessayer.",
      tooLong: "La question est trop longue.",
      interrupted: "La réponse a été interrompue. Veuillez réessayer.",
      timeout: "L'assistant a mis trop de temps à répondre. Veuillez réessayer.",
      retry: "Réessayer",
      reset: "Nouvelle conversation",
      disclaimer: "Les réponses citent les documents indexés."
    }
  };
  var t = STRINGS[lang];
  var ASK_URL = new URL("api/ask/stream", window.location.href).href;
  var FEEDBACK_URL = new URL("api/feedback", window.location.href).href;
  var DOC_URL = new URL("doc", window.location.href).href;
  var CONTEXT_CHARS = 140; // characters of the passage shown before and after the cited sentences (as app.py)
  var TIMEOUT_MS = 120000;
  var embedded = params.get("embed") === "1" && window.parent !== window;

  // --- theme ---
  function luminance(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h[0] + h[0] + h[1] + h[1] + h[2] + h[2];
    var rgb = [0, 2, 4].map(function (k) {
      var c = parseInt(h.slice(k, k + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }
  var color = (params.get("color") || "").trim();
  if (!/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(color)) color = "#0b5fff";
  var light = luminance(color) > 0.45;
  var rootStyle = document.documentElement.style;
  rootStyle.setProperty("--qa-color", color);
  rootStyle.setProperty("--qa-ink", light ? "#111827" : "#ffffff");
  rootStyle.setProperty("--qa-link", luminance(color) > 0.2 ? "#1d4ed8" : color); // links stay readable on white
  document.documentElement.lang = lang;
  if (embedded) document.documentElement.classList.add("qa-embedded");

  // --- helpers ---
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  var SVG = "http://www.w3.org/2000/svg";
  function icon(paths) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    paths.forEach(function (d) {
      var p = document.createElementNS(SVG, "path");
      p.setAttribute("d", d);
      svg.appendChild(p);
    });
    return svg;
  }
  var THUMB_UP = ["M7 10v11H3V10h4z", "M7 10l4-8a3 3 0 0 1 3 3v4h5.5a2 2 0 0 1 2 2.3l-1.3 8A2 2 0 0 1 18.2 21H7"];
  var THUMB_DOWN = ["M17 14V3h4v11h-4z", "M17 14l-4 8a3 3 0 0 1-3-3v-4H4.5a2 2 0 0 1-2-2.3l1.3-8A2 2 0 0 1 5.8 3H17"];

  var log = document.getElementById("qa-log");
  var form = document.getElementById("qa-form");
  var input = document.getElementById("qa-question");
  var sendBtn = document.getElementById("qa-send");
  var resetBtn = document.getElementById("qa-reset");

  var title = (params.get("title") || "").trim() || t.title;
  var greeting = (params.get("greeting") || "").trim() || t.greeting;
  document.title = title;
  document.getElementById("qa-title").textContent = title;
  document.getElementById("qa-question-label").textContent = t.question;
  document.getElementById("qa-disclaimer").textContent = t.disclaimer;
  input.placeholder = t.placeholder;
  sendBtn.setAttribute("aria-label", t.send);
  sendBtn.title = t.send;
  resetBtn.textContent = t.reset;

  var history = []; // the turns sent with every question: [{role, content}]
  var current = null; // {controller, view} while a question is being answered
  var counter = 0; // makes element ids unique across answers

  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function toBottom() { log.scrollTop = log.scrollHeight; }
  function keepBottom(update) {
    var stick = nearBottom();
    update();
    if (stick) toBottom();
  }

  // --- rendering ---
  function addUser(text) {
    var msg = el("div", "qa-msg qa-user");
    msg.appendChild(el("span", "qa-visually-hidden", t.you));
    msg.appendChild(el("div", "qa-bubble", text));
    log.appendChild(msg);
    toBottom();
  }

  function addAssistant(text) {
    var msg = el("div", "qa-msg qa-assistant");
    msg.appendChild(el("span", "qa-visually-hidden", t.assistant));
    var bubble = el("div", "qa-bubble", text);
    msg.appendChild(bubble);
    log.appendChild(msg);
    toBottom();
    return { msg: msg, bubble: bubble };
  }

  function status(view, text) {
    keepBottom(function () {
      view.bubble.className = "qa-bubble qa-pending";
      view.bubble.textContent = "";
      var dots = el("span", "qa-dots");
      dots.setAttribute("aria-hidden", "true");
      dots.appendChild(el("span"));
      dots.appendChild(el("span"));
      dots.appendChild(el("span"));
      view.bubble.appendChild(dots);
      view.bubble.appendChild(el("span", "qa-status", text));
    });
  }

  // Streamed text that stays in the final answer, shown as it will read (bold, markers) but marked as unfinished;
  // an unclosed ** is left out until its pair arrives.
  function draft(view, text) {
    text = text.replace(/^\s+/, "");
    var pairs = text.split("**").length - 1;
    if (pairs % 2) { var i = text.lastIndexOf("**"); text = text.slice(0, i) + text.slice(i + 2); }
    keepBottom(function () {
      view.bubble.className = "qa-bubble qa-draft";
      view.bubble.textContent = "";
      appendRich(view.bubble, text, {}, "");
    });
  }

  // Text with **bold** and markers [n]; a marker with a citation becomes a link to it.
  function appendRich(parent, text, cited, id) {
    text = text.replace(/ (?=\[\d{1,3}\])/g, "\u00a0"); // a marker never starts a line on its own
    var re = /\*\*([^*\n]+?)\*\*|\[(\d{1,3})\]/g;
    var last = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) {
        var strong = el("strong");
        appendRich(strong, m[1], cited, id);
        parent.appendChild(strong);
      } else if (cited[m[2]]) {
        parent.appendChild(marker(Number(m[2]), id));
      } else {
        parent.appendChild(document.createTextNode(m[0]));
      }
      last = re.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function marker(n, id) {
    var sup = el("sup", "qa-cite-sup");
    var a = el("a", "qa-cite", "[" + n + "]");
    a.href = "#" + id + "-src-" + n;
    a.setAttribute("aria-label", t.source + " " + n);
    a.setAttribute("data-n", String(n));
    a.addEventListener("click", function (e) {
      e.preventDefault();
      reveal(id, n);
    });
    sup.appendChild(a);
    return sup;
  }

  function reveal(id, n) {
    var item = document.querySelector('[data-answer="' + id + '"] .qa-source[data-ns~="' + n + '"]');
    if (!item) return;
    item.open = true;
    item.classList.remove("qa-flash");
    void item.offsetWidth; // restart the highlight animation
    item.classList.add("qa-flash");
    item.querySelectorAll("mark").forEach(function (m) {
      m.classList.toggle("qa-current", (" " + m.getAttribute("data-n") + " ").indexOf(" " + n + " ") >= 0);
    });
    item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    var summary = item.querySelector("summary");
    if (summary) summary.focus({ preventScroll: true });
  }

  // text shortened to about limit characters at a word boundary, "…" where it was cut (keepEnd: keep its end)
  function cut(text, limit, keepEnd) {
    if (text.length <= limit) return text;
    var part = keepEnd ? text.slice(-limit) : text.slice(0, limit);
    if (keepEnd) return "\u2026" + (part.indexOf(" ") >= 0 ? part.slice(part.indexOf(" ") + 1) : part);
    return (part.lastIndexOf(" ") > 0 ? part.slice(0, part.lastIndexOf(" ")) : part) + "\u2026";
  }

  // The cited spans of one passage highlighted, with a little of the passage around them (text nodes only).
  function excerpt(parent, passage, spans) {
    var merged = [];
    spans.slice().sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; }).forEach(function (s) {
      var last = merged[merged.length - 1];
      if (last && s[0] < last[1]) { last[1] = Math.max(last[1], s[1]); last[2] = last[2].concat(s[2]); }
      else merged.push([s[0], s[1], s[2].slice()]);
    });
    parent.appendChild(document.createTextNode(cut(passage.slice(0, merged[0][0]), CONTEXT_CHARS, true)));
    merged.forEach(function (m, i) {
      var mark = el("mark", "", passage.slice(m[0], m[1]));
      mark.setAttribute("data-n", m[2].join(" "));
      parent.appendChild(mark);
      var next = merged[i + 1];
      var gap = passage.slice(m[1], next ? next[0] : passage.length);
      if (!next) gap = cut(gap, CONTEXT_CHARS, false);
      else if (gap.length > 2 * CONTEXT_CHARS) gap = cut(gap, CONTEXT_CHARS, false) + " " + cut(gap, CONTEXT_CHARS, true);
      parent.appendChild(document.createTextNode(gap));
    });
  }

  // One entry per cited passage: its document's title, the cited sentences in context, a link to the whole document.
  function sourcesBlock(citations, id) {
    var box = el("div", "qa-sources");
    box.appendChild(el("div", "qa-sources-title", t.sources));
    var list = el("ol", "qa-sources-list");
    var passages = [];
    var byKey = {};
    citations.forEach(function (c) {
      var key = String(c.source) + "\u0000" + String(c.passage_start);
      if (!byKey[key]) { byKey[key] = []; passages.push(byKey[key]); }
      byKey[key].push(c);
    });
    passages.forEach(function (cs) {
      var first = cs[0];
      var ns = cs.map(function (c) { return c.n; });
      var li = el("li");
      var details = el("details", "qa-source");
      details.id = id + "-src-" + first.n;
      details.setAttribute("data-ns", ns.join(" "));
      var summary = el("summary");
      summary.appendChild(el("span", "qa-src-n", ns.map(function (n) { return "[" + n + "]"; }).join(" ")));
      summary.appendChild(el("span", "qa-src-title", first.title || ""));
      details.appendChild(summary);
      var quote = el("blockquote", "qa-src-text");
      var passage = String(first.passage || first.text || "");
      var spans = cs.map(function (c) {
        var a = Math.min(passage.length, Math.max(0, (Number(c.start) - Number(c.passage_start)) || 0));
        return [a, Math.max(a, Math.min(passage.length, (Number(c.end) - Number(c.passage_start)) || 0)), [c.n]];
      });
      excerpt(quote, passage, spans);
      details.appendChild(quote);
      var starts = cs.map(function (c) { return Number(c.start) || 0; });
      var ends = cs.map(function (c) { return Number(c.end) || 0; });
      var q = new URLSearchParams({ source: String(first.source || ""), start: String(Math.min.apply(null, starts)),
                                    end: String(Math.max.apply(null, ends)), lang: lang });
      var open = el("a", "qa-src-open", t.open);
      open.href = DOC_URL + "?" + q.toString() + "#cited";
      open.target = "_blank";
      open.rel = "noopener";
      details.appendChild(open);
      li.appendChild(details);
      list.appendChild(li);
    });
    box.appendChild(list);
    return box;
  }

  function answerId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // One vote per answer, changeable: the other thumb replaces it, the same thumb again withdraws it.
  function feedbackRow(answer) {
    var row = el("div", "qa-feedback");
    row.appendChild(el("span", "qa-feedback-label", t.wasHelpful));
    var up = el("button", "qa-rate qa-rate-up");
    var down = el("button", "qa-rate qa-rate-down");
    var note = el("span", "qa-feedback-note");
    note.setAttribute("role", "status");
    var vote = { id: answerId(), rating: null };
    [[up, "up", t.helpful, THUMB_UP], [down, "down", t.notHelpful, THUMB_DOWN]].forEach(function (b) {
      b[0].type = "button";
      b[0].title = b[2];
      b[0].setAttribute("aria-label", b[2]);
      b[0].setAttribute("aria-pressed", "false");
      b[0].appendChild(icon(b[3]));
      b[0].addEventListener("click", function () {
        rate(vote.rating === b[1] ? "none" : b[1], answer, vote, up, down, note);
      });
      row.appendChild(b[0]);
    });
    row.appendChild(note);
    return row;
  }

  function rate(rating, answer, vote, up, down, note) {
    up.disabled = down.disabled = true;
    var citations = (answer.citations || []).map(function (c) {
      return { n: c.n, source: c.source, chunk_id: c.chunk_id, start: c.start, end: c.end, text: c.text };
    });
    fetch(FEEDBACK_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: vote.id, rating: rating, question: answer.question || "", answer: answer.answer || "",
                             citations: citations, refused: !!answer.refused }),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (res) {
      if (!res.ok) throw new Error(String(res.status));
      vote.rating = rating === "none" ? null : rating;
      up.setAttribute("aria-pressed", String(vote.rating === "up"));
      down.setAttribute("aria-pressed", String(vote.rating === "down"));
      note.className = "qa-feedback-note";
      note.textContent = vote.rating ? t.thanks : t.withdrawn;
    }).catch(function () {
      note.className = "qa-feedback-note qa-feedback-error";
      note.textContent = t.feedbackError;
    }).then(function () {
      up.disabled = down.disabled = false;
    });
  }

  function final(view, answer) {
    var id = "qa-a" + (++counter);
    var citations = Array.isArray(answer.citations) ? answer.citations : [];
    var cited = {};
    citations.forEach(function (c) { cited[c.n] = c; });
    view.msg.setAttribute("data-answer", id);
    keepBottom(function () {
      view.bubble.className = "qa-bubble qa-final" + (answer.refused ? " qa-refused" : "");
      view.bubble.textContent = "";
      appendRich(view.bubble, String(answer.answer || ""), cited, id);
      if (citations.length) view.msg.appendChild(sourcesBlock(citations, id));
      view.msg.appendChild(feedbackRow(answer));
      view.msg.removeAttribute("aria-busy");
    });
  }

  function fail(view, message, question) {
    keepBottom(function () {
      view.bubble.className = "qa-bubble qa-error";
      view.bubble.setAttribute("role", "alert");
      view.bubble.textContent = message;
      view.msg.removeAttribute("aria-busy");
      if (question) {
        var retry = el("button", "qa-link qa-retry", t.retry);
        retry.type = "button";
        retry.addEventListener("click", function () {
          if (current) return;
          retry.remove();
          send(question);
        });
        view.msg.appendChild(retry);
      }
    });
  }

  // --- asking ---
  async function errorMessage(res) {
    var body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    var text = body && typeof body.error === "string" ? body.error : "";
    var wait = parseInt(res.headers.get("Retry-After") || "", 10);
    if (res.status === 429) return t.rateLimited(wait > 0 ? wait : 60);
    if (res.status === 503 && res.headers.get("Retry-After")) return t.busy;
    if (res.status === 413) return text || t.tooLong;
    if (text) return text;
    return res.status === 503 ? t.loading : t.server;
  }

  function parseEvent(block) {
    var event = "message";
    var data = [];
    block.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var i = line.indexOf(":");
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    });
    if (!data.length) return null;
    try {
      return { event: event, data: JSON.parse(data.join("\n")) };
    } catch (e) {
      return null;
    }
  }

  async function send(question) {
    var asked = history.slice(); // the conversation before this question
    var controller = new AbortController();
    var view = addAssistant("");
    view.msg.setAttribute("aria-busy", "true");
    current = { controller: controller, view: view };
    sendBtn.disabled = true;
    status(view, t.searching);
    var timer = setTimeout(function () { controller.abort("timeout"); }, TIMEOUT_MS);
    var done = false;
    try {
      var res = await fetch(ASK_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify({ question: question, history: asked, lang: lang }),
        credentials: "same-origin",
        cache: "no-store",
        signal: controller.signal
      });
      if (!res.ok || !res.body) {
        fail(view, await errorMessage(res), question);
        return;
      }
      var reader = res.body.getReader();
      var decoder = new TextDecoder("utf-8");
      var buffer = "";
      var text = "";
      var handle = function (block) {
        var e = parseEvent(block);
        if (!e || done) return;
        if (e.event === "sources") {
          status(view, t.writing);
        } else if (e.event === "token") {
          text += e.data && typeof e.data.text === "string" ? e.data.text : "";
          if (text.trim()) draft(view, text);
        } else if (e.event === "answer") {
          done = true;
          final(view, e.data || {});
          history = asked.concat([{ role: "user", content: question },
                                  { role: "assistant", content: String((e.data && e.data.answer) || "") }]);
        } else if (e.event === "error") {
          done = true;
          var d = e.data || {};
          fail(view, d.busy ? t.busy : (typeof d.error === "string" && d.error) || t.server, question);
        }
      };
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        buffer = buffer.replace(/\r\n/g, "\n");
        var cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
      buffer += decoder.decode();
      if (buffer.trim()) handle(buffer);
      if (!done) fail(view, t.interrupted, question);
    } catch (err) {
      if (!done && current && current.view === view) { // not a reset, and the answer was not shown yet
        fail(view, controller.signal.aborted ? t.timeout : t.network, question);
      }
    } finally {
      clearTimeout(timer);
      if (current && current.view === view) {
        current = null;
        sendBtn.disabled = false;
      }
    }
  }

  function submit() {
    var question = input.value.trim();
    if (!question || current) return;
    input.value = "";
    grow();
    addUser(question);
    send(question);
  }

  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 132) + "px";
  }

  function reset() {
    if (current) {
      var c = current;
      current = null;
      c.controller.abort("reset");
    }
    sendBtn.disabled = false;
    history = [];
    log.textContent = "";
    addAssistant(greeting);
    input.focus();
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    submit();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", grow);
  resetBtn.addEventListener("click", reset);

  // --- talking with the embedding page (widget.js) ---
  if (embedded) {
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" || e.key === "Esc") window.parent.postMessage({ type: "qa-widget:close" }, "*");
    });
    window.addEventListener("message", function (e) {
      if (e.source === window.parent && e.data && e.data.type === "qa-widget:focus") input.focus({ preventScroll: true });
    });
    window.parent.postMessage({ type: "qa-widget:ready" }, "*"); // carries no data: any origin may hear it
  }

  addAssistant(greeting);
})();
