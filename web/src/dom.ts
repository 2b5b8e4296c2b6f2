/** Building the page: elements made from data (never from HTML strings, so nothing typed or received can become
 * markup), and the few DOM moves every page shares. */

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(name.replace(/^on/, "").toLowerCase(), value);
    } else if (name === "class") {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** Moves focus to an element that is not focusable by itself (a heading, an error summary). */
export function focus(el: HTMLElement): void {
  if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "-1");
  el.focus();
}

let unique = 0;
export function uid(prefix: string): string {
  unique += 1;
  return `${prefix}-${unique}`;
}

/** A button that copies `text` to the clipboard and says in `status` (a live region) whether it did: a long code
 * is not selected with a thumb. */
export function copyButton(text: string, label: string, status: HTMLElement, said: { copied: string; failed: string }): HTMLButtonElement {
  return h(
    "button",
    {
      type: "button",
      class: "usa-button",
      onclick: () => {
        navigator.clipboard.writeText(text).then(
          () => {
            status.textContent = said.copied;
          },
          () => {
            status.textContent = said.failed;
          },
        );
      },
    },
    label,
  );
}
