// Building the page: elements from data with textContent only (nothing the API returns is ever parsed as HTML),
// announcements for screen readers, and the confirmation dialog.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An HTML element: h("td", {class: "num"}, "42"). `on<event>` attributes that are functions become listeners. */
export function h(tag, attributes = {}, ...children) {
  return build(document.createElement(tag), attributes, children);
}

/** An SVG element, like h(). */
export function svg(tag, attributes = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attributes, children);
}

function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** The element with this id (the page's own ids only). */
export function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element;
}

/** Show a message in a role=status or role=alert region; an empty text clears it. */
export function say(id, text, tone = "") {
  const region = byId(id);
  region.textContent = text;
  region.dataset.tone = tone;
}

/** A table: columns are [{label, cls}], rows are arrays of cells (text or nodes). */
export function table({caption, columns, rows, empty = "Nothing to show."}) {
  const head = h("tr", {}, columns.map((column) => h("th", {scope: "col", class: column.cls}, column.label)));
  const body = rows.length
    ? rows.map((cells) => h("tr", {}, cells.map((cell, index) => h("td", {class: columns[index].cls}, cell))))
    : [h("tr", {}, h("td", {colspan: columns.length, class: "empty"}, empty))];
  return h("table", {}, h("caption", {}, caption), h("thead", {}, head), h("tbody", {}, body));
}

/** Ask before something that cannot be undone; resolves true when confirmed (Escape or Cancel: false). */
export function confirmAction({title, text, action}) {
  const dialog = byId("confirm-dialog");
  byId("confirm-title").textContent = title;
  byId("confirm-text").textContent = text;
  const ok = byId("confirm-ok");
  const cancel = byId("confirm-cancel");
  ok.textContent = action;
  return new Promise((resolve) => {
    const finish = (answer) => {
      ok.removeEventListener("click", onOk);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onOk = () => finish(true);
    const onCancel = () => finish(false);
    const onClose = () => finish(false);
    ok.addEventListener("click", onOk);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus: Enter alone never deletes
  });
}
