/** Live video in the agency workspace: the live windows owners have opened to the agency, each with its cameras
 * and the time left, and a player per camera (./live-player). The list is asked again every few seconds: a
 * window the owner closed, or whose time ran out, says so at once, and its players stop. */

import { attempt, bearer, registry } from "../api/client";
import type { components } from "../api/registry";
import { focus, h } from "../dom";
import { formatClock, formatDate, formatRemaining, t, type MessageKey } from "../i18n";
import { LivePlayer } from "../live-player";
import { relayUrl } from "../relay";
import { onLeave, rerender } from "../router";
import { staffToken } from "../staff";
import { agencyUser, compass } from "../workspace";
import { signInNeeded, workspaceNav } from "./agency-common";
import { failureBox } from "../owner";

type WindowSummary = components["schemas"]["LiveWindowSummary"];
type WindowView = components["schemas"]["LiveWindowView"];

// How often the windows open to the agency are asked again (a window closed by its owner ends here within that).
const REFRESH_MS = 5000;

/** Set by "Check again" and "Show it", which draw the page anew: the windows known before, so the page drawn
 * next puts the focus on what the person asked for (the answer, or the first new window) rather than leaving
 * it at the page's start, where a keyboard or screen reader user would hear nothing of it. */
let askedAgain: Set<string> | null = null;

interface Shown {
  view: WindowView;
  players: LivePlayer[];
  left: HTMLElement;
  card: HTMLElement;
  ended: boolean;
}

async function openWindows(): Promise<WindowSummary[] | null> {
  const token = await staffToken();
  if (!token) return null;
  const outcome = await attempt(() => registry().GET("/v1/live-windows", { headers: bearer(token) }));
  return outcome.ok ? outcome.data : null;
}

export async function agencyLivePage(main: HTMLElement): Promise<void> {
  const user = agencyUser();
  if (!user) {
    signInNeeded(main);
    return;
  }
  main.classList.add("portal-main--wide");
  main.append(workspaceNav("/agency/live"), h("h1", {}, t("wsl.title")), h("p", { class: "usa-intro" }, t("wsl.intro")));
  if (!relayUrl()) {
    main.append(h("p", { class: "portal-empty" }, t("wsl.no_relay")));
    return;
  }
  const token = await staffToken();
  const list = await attempt(() => registry().GET("/v1/live-windows", { headers: bearer(token ?? "") }));
  if (!list.ok) {
    main.append(failureBox(list.failure, rerender));
    return;
  }
  // Each window's cameras (reading them is audited, as the agency's view of the window).
  const views = await Promise.all(
    list.data.map((w) =>
      attempt(() =>
        registry().GET("/v1/live-windows/{window_id}", { params: { path: { window_id: w.id } }, headers: bearer(token ?? "") }),
      ),
    ),
  );
  const before = askedAgain;
  askedAgain = null;
  const again = (known: Iterable<string>) => {
    askedAgain = new Set(known);
    rerender();
  };
  const announcer = h("p", { class: "usa-sr-only", role: "status", "aria-live": "polite" });
  const fresh = h("div", {});
  main.append(announcer, fresh);
  const shown: Shown[] = [];
  for (const v of views) if (v.ok) shown.push(windowCard(v.data));
  if (!shown.length) {
    const none = h(
      "p",
      { class: "portal-empty" },
      t("wsl.none"),
      before ? ` ${t("wsl.checked_at", { at: formatClock(new Date().toISOString()) })}` : "",
    );
    main.append(none, h("p", {}, h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => again([]) }, t("wsl.check_again"))));
    if (before) focus(none);
  } else {
    main.append(h("ul", { class: "usa-list usa-list--unstyled ws-live" }, shown.map((s) => s.card)));
    const first = shown.find((s) => !before?.has(s.view.id)) ?? shown[0]!;
    if (before) focus(first.card.querySelector("h2")!);
  }

  const end = (s: Shown) => {
    if (s.ended) return;
    s.ended = true;
    s.left.textContent = t("wsl.window_ended");
    s.card.classList.add("ws-live__window--ended");
    for (const p of s.players) p.windowClosed();
    announcer.textContent = t("wsl.window_ended_named", { reason: t(`live.reason_${s.view.reason}` as MessageKey) });
  };
  // Each second, so that a window ends when it does; but the time left reads in minutes, so its text changes once
  // a minute, and it is no live region: a screen reader is not read a ticking clock. Its last minute is told once.
  const tick = () => {
    const now = Date.now();
    for (const s of shown) {
      if (s.ended) continue;
      const left = (Date.parse(s.view.expires_at) - now) / 1000;
      if (left <= 0) {
        end(s);
        continue;
      }
      const text = t("wsl.time_left", { left: formatRemaining(left) });
      if (s.left.textContent === text) continue;
      if (left < 60 && s.left.textContent) announcer.textContent = t("wsl.window_ends_soon", { reason: t(`live.reason_${s.view.reason}` as MessageKey) });
      s.left.textContent = text;
    }
  };
  tick();
  const clock = window.setInterval(tick, 1000);
  let known = new Set(list.data.map((w) => w.id));
  const refresh = window.setInterval(() => {
    void openWindows().then((now) => {
      if (!now) return;
      const open = new Set(now.map((w) => w.id));
      for (const s of shown) if (!open.has(s.view.id)) end(s);
      if (now.some((w) => !known.has(w.id))) {
        known = new Set([...known, ...open]);
        fresh.replaceChildren(
          h(
            "div",
            { class: "usa-alert usa-alert--info usa-alert--slim" },
            h(
              "div",
              { class: "usa-alert__body" },
              h("p", { class: "usa-alert__text" }, t("wsl.new_window"), " ", h("button", { type: "button", class: "usa-button usa-button--unstyled ws-reveal", onclick: () => again(shown.map((s) => s.view.id)) }, t("wsl.show_new"))),
            ),
          ),
        );
        announcer.textContent = t("wsl.new_window");
      }
    });
  }, REFRESH_MS);
  onLeave(() => {
    window.clearInterval(clock);
    window.clearInterval(refresh);
    for (const s of shown) for (const p of s.players) if (p.state !== "idle") p.halt("stopped");
  });
}

/** "Opened at 9:48 AM" for a time of today, to the minute; with its date for another day (a window lasts 24
 * hours at most), which Spanish says with another preposition ("a las 9:48", "el 6 de diciembre, 9:48"). */
function when(iso: string, key: "wsl.opened" | "wsl.until"): string {
  if (new Date(iso).toDateString() !== new Date().toDateString()) return t(key, { at: formatDate(iso, true) });
  return t(key === "wsl.opened" ? "wsl.opened_today" : "wsl.until_today", { at: formatClock(iso) });
}

function windowCard(view: WindowView): Shown {
  const windowOpen = async (): Promise<boolean | null> => {
    const now = await openWindows();
    return now === null ? null : now.some((w) => w.id === view.id);
  };
  const players = view.cameras.map(
    (c, i) => new LivePlayer({ cameraId: c.id, name: c.label || t("registration.camera_n", { n: i + 1 }), windowOpen }),
  );
  const left = h("p", { class: "ws-live__left" });
  const headingId = `window-${view.id}`;
  const card = h(
    "li",
    { class: "portal-card ws-live__window", "aria-labelledby": headingId, "data-window": view.id },
    h("h2", { id: headingId }, t(`wsl.window_${view.reason}` as MessageKey)),
    h("p", {}, when(view.opened_at, "wsl.opened"), " · ", when(view.expires_at, "wsl.until")),
    left,
    h(
      "ul",
      { class: "usa-list usa-list--unstyled ws-live__cameras" },
      view.cameras.map((c, i) =>
        h(
          "li",
          { class: "ws-live__camera" },
          h("h3", {}, c.label || t("registration.camera_n", { n: i + 1 })),
          typeof c.direction_deg === "number" ? h("p", { class: "usa-hint" }, t("wsl.facing", { direction: compass(c.direction_deg, t("ws.map.compass")) })) : "",
          players[i]!.element,
        ),
      ),
    ),
  );
  return { view, players, left, card, ended: false };
}
