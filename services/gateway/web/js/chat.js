// The conversation: asking, the streamed answer, [n] markers and their citations.

import { request, settings, streamQuery } from "./api.js";
import { $, el, reportError, showPassage } from "./ui.js";

let sessionId = null;
let busy = false;
let answerCount = 0;
let onSessionChanged = () => {};

export function currentSession() { return sessionId; }

/** Called with the session id after each answer (a new chat gets its id from the first). */
export function setSessionListener(listener) { onSessionChanged = listener; }

function setTitle(title) {
  $("chat-title").textContent = title || "New chat";
}

/** Empty the conversation; the next question starts a new session. */
export function newChat(focus = true) {
  sessionId = null;
  setTitle("New chat");
  $("messages").replaceChildren($("intro") || el("p"));
  $("intro").hidden = false;
  if (focus) $("question").focus();
}

/** Show a stored session's turns and continue it. */
export async function openSession(id, title) {
  try {
    const session = await request("GET", `/sessions/${encodeURIComponent(id)}`);
    sessionId = session.session_id;
    setTitle(title);
    $("intro").hidden = true;
    $("messages").replaceChildren($("intro"));
    for (const turn of session.turns) {
      if (turn.role === "user") addUser(turn.content);
      else addStoredAnswer(turn.content);
    }
    $("question").focus();
  } catch (error) {
    reportError(error, "Could not open the conversation");
  }
}

function addUser(text) {
  const node = el("article", { class: "message user", "aria-label": "Your question" },
    el("p", { class: "text" }, text));
  $("messages").append(node);
  return node;
}

function addStoredAnswer(text) {
  $("messages").append(el("article", { class: "message assistant", "aria-label": "Answer" },
    el("p", { class: "text" }, text)));
}

/** The sentence of `answer` that holds marker [n]: what the citation supports. */
function claimFor(answer, n) {
  const marker = `[${n}]`;
  const at = answer.indexOf(marker);
  if (at < 0) return answer;
  const start = Math.max(answer.lastIndexOf(". ", at), answer.lastIndexOf("\n", at)) + 1;
  return answer.slice(start, at);
}

function citationItem(prefix, n, citation, answer) {
  const where = [citation.source || citation.title];
  if (citation.page) where.push(`page ${citation.page}`);
  if (citation.heading) where.push(citation.heading);
  const button = el("button", {
    type: "button", class: "citation",
    onclick: () => showPassage(citation, claimFor(answer, n)),
  }, el("span", { class: "cite-n" }, `[${n}]`), " ", where.join(" · "),
  el("span", { class: "score" }, ` score ${Number(citation.score).toFixed(2)}`));
  return el("li", { id: `${prefix}-${n}` }, button);
}

/** Answer text with each valid [n] turned into a link to its citation. */
function linkedText(answer, prefix, count) {
  const parts = [];
  let last = 0;
  for (const m of answer.matchAll(/\[(\d+)\]/g)) {
    const n = Number(m[1]);
    if (n < 1 || n > count) continue;
    parts.push(answer.slice(last, m.index));
    parts.push(el("a", {
      href: `#${prefix}-${n}`, class: "marker", "aria-label": `Source ${n}`,
      onclick: (event) => {
        event.preventDefault();
        document.querySelector(`#${prefix}-${n} button`).focus();
      },
    }, `[${n}]`));
    last = m.index + m[0].length;
  }
  parts.push(answer.slice(last));
  return parts;
}

function renderFinal(node, done) {
  const prefix = `cite-${++answerCount}`;
  const text = el("p", { class: "text" }, linkedText(done.answer, prefix, done.citations.length));
  const parts = [];
  if (done.refused) {
    node.classList.add("refusal");
    parts.push(el("p", { class: "label" }, "No answer found in your documents"));
  }
  parts.push(text);
  if (done.citations.length) {
    parts.push(el("h3", { class: "sources-heading" }, "Sources"));
    parts.push(el("ol", { class: "citations" },
      done.citations.map((c, i) => citationItem(prefix, i + 1, c, done.answer))));
  }
  node.replaceChildren(...parts);
}

function queryBody(question) {
  const body = { question };
  if (sessionId) body.session_id = sessionId;
  const { mode, top_k: topK } = settings.retrieval;
  if (mode) body.mode = mode;
  if (topK) body.top_k = topK;
  return body;
}

/** Ask a question: the answer streams in, then gets its links and citations. */
export async function ask(question) {
  if (busy) return;
  busy = true;
  $("send").disabled = true;
  $("intro").hidden = true;
  addUser(question);
  const text = el("p", { class: "text" });
  const node = el("article", { class: "message assistant", "aria-label": "Answer",
    "aria-busy": "true" }, text);
  $("messages").append(node);
  text.textContent = "…";
  let streamed = "";
  try {
    const done = await streamQuery(queryBody(question), (delta) => {
      streamed += delta;
      text.textContent = streamed;
      node.scrollIntoView({ block: "end" });
    });
    renderFinal(node, done);
    const isNew = sessionId !== done.session_id;
    sessionId = done.session_id;
    onSessionChanged(sessionId, isNew);
  } catch (error) {
    node.classList.add("error");
    node.replaceChildren(el("p", { class: "label" }, "The answer failed"),
      el("p", { class: "text" }, error.message || String(error)));
    reportError(error, "The answer failed");
  } finally {
    node.removeAttribute("aria-busy");
    busy = false;
    $("send").disabled = false;
  }
}

export function renameCurrent(id, title) {
  if (id === sessionId) setTitle(title);
}

export function bindComposer() {
  const box = $("question");
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = box.value.trim();
    if (!question || busy) return;
    box.value = "";
    ask(question);
  });
}
