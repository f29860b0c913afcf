// Small DOM helpers shared by the views: element builder, notices and dialogs.

/** Build an element: el("li", {class: "x", onclick: fn}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

/** "1 chunk", "2 chunks". */
export const count = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

const PANELS = [["toggle-sessions", "sessions-panel"], ["toggle-documents", "documents-panel"]];

/** Open one side panel (narrow screens show one at a time), or close all with null. */
export function showPanel(panelId) {
  for (const [button, panel] of PANELS) {
    const open = panel === panelId;
    $(button).setAttribute("aria-expanded", String(open));
    $(panel).classList.toggle("open", open);
  }
}

/** Panel toggles: each opens its panel (closing the other) or closes it again. */
export function bindPanels() {
  for (const [button, panel] of PANELS) {
    $(button).addEventListener("click", () => {
      const open = $(button).getAttribute("aria-expanded") !== "true";
      showPanel(open ? panel : null);
      if (open) $(panel).querySelector("button, input, a")?.focus();
    });
  }
}

let onUnauthorized = () => {};

/** Called with every 401, so that the key prompt opens wherever it came from. */
export function setUnauthorizedHandler(handler) { onUnauthorized = handler; }

/** Show an error (or other notice) in the page's alert region. */
export function notify(message) {
  $("notice-text").textContent = message;
  $("notice").hidden = false;
}

export function clearNotice() { $("notice").hidden = true; }

/** Report an ApiError (or anything thrown) where the user sees it. */
export function reportError(error, context) {
  const message = error && error.message ? error.message : String(error);
  notify(context ? `${context}: ${message}` : message);
  if (error && error.status === 401) onUnauthorized();
}

/** Open a <dialog> modally; resolves to its returnValue when it closes. */
export function openDialog(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}

/** The app's confirm: resolves true only if the user chose the confirm button. */
export async function confirmAction(title, text, okLabel = "Delete") {
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  return (await openDialog($("confirm-dialog"))) === "ok";
}

function words(text) {
  return new Set((text.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []).filter((w) => w.length > 2));
}

/** Split into sentences, keeping offsets (the span to highlight). */
function sentences(text) {
  const out = [];
  const re = /[^.!?\n]+[.!?]*\s*/g;
  let m;
  while ((m = re.exec(text)) !== null) out.push({ start: m.index, end: m.index + m[0].length });
  return out;
}

/** The passage sentence sharing the most words with `claim`, or null. */
function bestSpan(passage, claim) {
  const wanted = words(claim);
  let best = null;
  let bestScore = 1; // at least two shared words
  for (const s of sentences(passage)) {
    const shared = [...words(passage.slice(s.start, s.end))].filter((w) => wanted.has(w)).length;
    if (shared > bestScore) { best = s; bestScore = shared; }
  }
  return best;
}

/** Show a passage in the dialog, highlighting the sentence that best supports `claim`. */
export function showPassage(citation, claim) {
  const meta = [citation.source || citation.title];
  if (citation.page) meta.push(`page ${citation.page}`);
  if (citation.heading) meta.push(citation.heading);
  meta.push(`score ${Number(citation.score).toFixed(3)}`);
  $("passage-title").textContent = citation.title || citation.source || "Passage";
  $("passage-meta").textContent = meta.join(" · ");
  const box = $("passage-text");
  box.replaceChildren();
  const text = citation.text || "";
  const span = claim ? bestSpan(text, claim) : null;
  if (span) {
    box.append(text.slice(0, span.start), el("mark", {}, text.slice(span.start, span.end)),
      text.slice(span.end));
  } else {
    box.append(text);
  }
  $("passage-dialog").showModal();
  const mark = box.querySelector("mark");
  if (mark) mark.scrollIntoView({ block: "center" });
}
