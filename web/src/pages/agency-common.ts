/** What every page of the agency workspace shares: the workspace's own navigation, the page shown to someone
 * not signed in as agency staff, and a request's state as a tag. */

import { config } from "../config";
import { h } from "../dom";
import { t, type MessageKey } from "../i18n";
import { agencyUser, mapUser } from "../workspace";

export function workspaceNav(current: string): HTMLElement {
  // An agency admin opens the cameras map (for its coverage layer) but neither requests nor tips.
  const admin = !agencyUser() ? mapUser() : null;
  const user = agencyUser() ?? admin;
  const link = (href: string, key: MessageKey) =>
    h("li", { class: "ws-nav__item" }, h("a", { href, class: "ws-nav__link", "aria-current": current === href ? "page" : null }, t(key)));
  return h(
    "nav",
    { class: "ws-nav", "aria-label": t("ws.nav.label") },
    h(
      "ul",
      { class: "usa-list usa-list--unstyled ws-nav__list" },
      link("/agency", "ws.nav.map"),
      admin
        ? link("/agency/program", "program.title")
        : [
            link("/agency/live", "ws.nav.live"),
            link("/agency/requests", "ws.nav.requests"),
            link("/agency/requests/new", "ws.nav.new"),
            user?.role === "supervisor" ? link("/agency/approvals", "ws.nav.approvals") : null,
            link("/agency/tips", "wsc.nav.tips"),
            link("/agency/alerts", "wsc.nav.alerts"),
          ],
    ),
    user
      ? h("p", { class: "ws-nav__who" }, t("ws.nav.who", { role: t(`role.${user.role}` as MessageKey), agency: user.agency }))
      : null,
  );
}

export function signInNeeded(main: HTMLElement): void {
  main.append(
    h("h1", {}, t("ws.signin.title")),
    h("p", {}, t("ws.signin.body")),
    config().dev_sign_in ? h("p", {}, h("a", { class: "usa-button", href: "/staff" }, t("ws.signin.link"))) : "",
  );
}

export function stateTag(state: string): HTMLElement {
  return h("span", { class: `ws-state ws-state--${state}` }, t(`ws.state.${state}` as MessageKey));
}
