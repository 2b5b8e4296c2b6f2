/** Which page a path shows, and moving between pages without reloading: the new page's heading gets the
 * focus and the title, as a screen reader user expects after following a link. */

import { focus } from "./dom";

export type Page = (main: HTMLElement, params: Record<string, string>) => Promise<void> | void;

interface Route {
  pattern: RegExp;
  names: string[];
  page: Page;
}

const routes: Route[] = [];
let cleanups: ((redrawn: boolean) => void)[] = [];
let renderPage: ((path: string, first: boolean) => Promise<void>) | null = null;

export function route(path: string, page: Page): void {
  const names: string[] = [];
  const pattern = new RegExp(
    `^${path.replace(/:(\w+)/g, (_, name: string) => {
      names.push(name);
      return "([^/]+)";
    })}/?$`,
  );
  routes.push({ pattern, names, page });
}

export function match(path: string): { page: Page; params: Record<string, string> } | null {
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (m) {
      const params: Record<string, string> = {};
      r.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1] ?? "")));
      return { page: r.page, params };
    }
  }
  return null;
}

/** Runs when the page is left (a map to remove, a timer to stop), and before it is drawn again in place
 * (`redrawn`: another language, the result of an action), when what is shown only once must stay. */
export function onLeave(cleanup: (redrawn: boolean) => void): void {
  cleanups.push(cleanup);
}

export function startRouter(render: (path: string, first: boolean) => Promise<void>): void {
  renderPage = render;
  window.addEventListener("popstate", () => void run(location.pathname, false));
  document.addEventListener("click", (event) => {
    const link = (event.target as Element | null)?.closest?.("a");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const href = link.getAttribute("href");
    if (!href || !href.startsWith("/") || link.hasAttribute("download") || link.target) return;
    event.preventDefault();
    navigate(href);
  });
  void run(location.pathname, true);
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void run(path, false);
}

/** Shows the current page again (after the language changes). */
export function rerender(): void {
  void run(location.pathname, true, true);
}

async function run(path: string, first: boolean, redrawn = false): Promise<void> {
  for (const c of cleanups) c(redrawn);
  cleanups = [];
  // A page is chosen by its path alone; its query (?lon=…) is the page's to read.
  if (renderPage) await renderPage(path.split(/[?#]/)[0] ?? path, first);
}

/** After a page is drawn: its title, and the focus on its heading unless something else took it. */
export function settle(main: HTMLElement, first: boolean, siteName: string): void {
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} — ${siteName}` : siteName;
  if (!first && heading && !main.contains(document.activeElement)) focus(heading);
}
