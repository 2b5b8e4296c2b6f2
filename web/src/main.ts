/** The portal's entry: the configuration, the language, the page frame (header, navigation, footer) and the
 * routes of the resident's pages. */

import "@uswds/uswds/css/uswds.min.css";
import "./styles.css";
import { loadConfig } from "./config";
import { h } from "./dom";
import { initLanguage, language, setLanguage, t } from "./i18n";
import { match, rerender, route, settle, startRouter } from "./router";
import { coveredPage } from "./pages/covered";
import { registerPage } from "./pages/register";
import { credentialPage, registeredByEmailPage } from "./pages/credential";
import { staffPage } from "./pages/staff";
import { config } from "./config";
import { signInPage } from "./pages/signin";
import { registrationPage } from "./pages/registration";
import { editPage } from "./pages/edit";
import { deletePage, deletedPage } from "./pages/delete";
import { requestsPage } from "./pages/requests";
import { cameraPage } from "./pages/camera";
import { lostPage } from "./pages/lost";
import { sharingPage } from "./pages/sharing";
import { livePage } from "./pages/live";
import { transparencyPage } from "./pages/transparency";
import { notFoundPage } from "./pages/notfound";
import { agencyUser } from "./workspace";
import { auditor } from "./audit";
import { accessReportPage } from "./pages/access-report";
import { tipFollowUpPage, tipPage } from "./pages/tips";
import { alertPage, alertsManagePage, alertsSubscribePage, alertsUnsubscribedPage, alertsUnsubscribePage } from "./pages/alerts";
import { agencyCallbackPage, agencySignedOutPage, agencySignInPage, agencyStatus } from "./pages/agency";
import { programPage } from "./pages/program";
import { resumeSignIn } from "./oidc";
import { staff } from "./staff";

route("/", coveredPage);
route("/register", registerPage);
route("/credential", credentialPage);
route("/registered-by-email", registeredByEmailPage);
route("/staff", staffPage);
route("/sign-in", signInPage);
route("/registrations/:id", registrationPage);
route("/registrations/:id/edit", editPage);
route("/registrations/:id/delete", deletePage);
route("/registrations/:id/requests", requestsPage);
route("/registrations/:id/cameras/:camera", cameraPage);
route("/deleted", deletedPage);
route("/lost", lostPage);
route("/registrations/:id/sharing", sharingPage);
route("/registrations/:id/live", livePage);
route("/registrations/:id/access", accessReportPage);
route("/transparency", transparencyPage);
// The coverage page draws a map of cells: its script comes only when it is opened.
route("/coverage", async (main) => (await import("./pages/coverage")).coveragePage(main));
// The agency workspace's pages come in a script of their own, fetched only by the staff who open them: a
// resident's first page does not carry them.
route("/agency", async (main) => (await import("./pages/agency-map")).agencyMapPage(main));
route("/agency/requests", async (main) => (await import("./pages/agency-requests")).agencyRequestsPage(main));
route("/agency/requests/new", async (main) => (await import("./pages/agency-requests")).newRequestPage(main));
route("/agency/requests/:id", async (main, params) => (await import("./pages/agency-request")).agencyRequestPage(main, params));
route("/agency/approvals", async (main) => (await import("./pages/agency-requests")).approvalsPage(main));
route("/agency/live", async (main) => (await import("./pages/agency-live")).agencyLivePage(main));
route("/agency/audit", async (main) => (await import("./pages/agency-audit")).auditPage(main));
route("/agency/tips", async (main) => (await import("./pages/agency-community")).tipInboxPage(main));
route("/agency/tips/:id", async (main, params) => (await import("./pages/agency-community")).tipPage(main, params));
route("/agency/alerts", async (main) => (await import("./pages/agency-community")).alertsPage(main));
route("/tips/new", tipPage);
route("/tips/follow-up", tipFollowUpPage);
route("/alerts/subscribe", alertsSubscribePage);
route("/alerts/manage", alertsManagePage);
route("/alerts/unsubscribe", alertsUnsubscribePage);
route("/alerts/unsubscribed", alertsUnsubscribedPage);
route("/alerts/:id", alertPage);
route("/agency/sign-in", agencySignInPage);
route("/agency/callback", agencyCallbackPage);
route("/agency/signed-out", agencySignedOutPage);
route("/agency/program", programPage);

function frame(): { main: HTMLElement } {
  const app = document.getElementById("app")!;
  const other = language() === "en" ? "es" : "en";
  const main = h("main", { id: "main-content", class: "grid-container portal-main" });
  const nav = (href: string, text: string) =>
    h(
      "li",
      {},
      h("a", { href, class: "portal-nav__link", "aria-current": location.pathname === href ? "page" : null }, text),
    );
  // On a phone the navigation folds behind a menu button (a disclosure: its state is aria-expanded, Escape closes
  // it and gives the focus back), so the header is one line and the page starts on the first screen; the language
  // switch stays beside it, for whoever cannot read the menu's language. A signed-in officer's line (who, Sign out)
  // folds with the navigation, after it. On a wider screen the button is hidden.
  const header = h("header", { class: "portal-header" });
  const status = agencyStatus();
  const menu = h(
    "button",
    {
      type: "button",
      class: "portal-menu",
      "aria-expanded": "false",
      "aria-controls": status ? "portal-nav portal-agency-status" : "portal-nav",
    },
    t("site.menu"),
  );
  const openMenu = (open: boolean) => {
    menu.setAttribute("aria-expanded", String(open));
    header.classList.toggle("portal-header--open", open);
  };
  menu.addEventListener("click", () => openMenu(menu.getAttribute("aria-expanded") !== "true"));
  header.addEventListener("keydown", (e: KeyboardEvent) => {
    if (e.key !== "Escape" || menu.getAttribute("aria-expanded") !== "true") return;
    openMenu(false);
    menu.focus();
  });
  header.append(
    h(
      "div",
      { class: "grid-container portal-header__inner" },
      h("a", { class: "portal-header__title", href: "/" }, t("site.name")),
      menu,
      h(
        "nav",
        { "aria-label": t("site.nav_label"), class: "portal-nav", id: "portal-nav" },
        h(
          "ul",
          { class: "usa-list usa-list--unstyled portal-nav__list" },
          nav("/", t("nav.covered")),
          nav("/sign-in", t("nav.manage")),
          nav("/coverage", t("nav.coverage")),
          nav("/transparency", t("nav.transparency")),
          nav("/tips/new", t("wsc.public.tip")),
          nav("/alerts/subscribe", t("wsc.public.alerts")),
          agencyUser() ? nav("/agency", t("ws.nav.workspace")) : null,
          auditor() ? nav("/agency/audit", t("audit.nav")) : null,
        ),
      ),
      status,
      h(
        "button",
        {
          type: "button",
          class: "usa-button usa-button--unstyled portal-lang",
          lang: other,
          onclick: () => {
            setLanguage(other, true);
            rerender();
          },
        },
        t("site.other_language"),
      ),
    ),
  );
  app.replaceChildren(
    h("a", { class: "usa-skipnav", href: "#main-content" }, t("site.skip")),
    header,
    main,
    h(
      "footer",
      { class: "portal-footer" },
      h(
        "div",
        { class: "grid-container" },
        h("p", {}, t("site.footer")),
        h("p", {}, h("a", { href: "/agency/sign-in" }, t("agency.footer_link"))),
        config().dev_sign_in ? h("p", {}, h("a", { href: "/staff" }, t("staff.title"))) : "",
      ),
    ),
  );
  // The skip link's target takes the focus without scrolling past it.
  main.setAttribute("tabindex", "-1");
  return { main };
}

async function render(path: string, first: boolean): Promise<void> {
  const { main } = frame();
  const found = match(path);
  await (found ? found.page(main, found.params) : notFoundPage(main));
  // A page that sent the reader elsewhere while it was drawn (to sign in first) is gone: the page drawn instead
  // has settled its own title and focus, which this one must not overwrite.
  if (!main.isConnected) return;
  settle(main, first, t("site.name"));
}

async function start(): Promise<void> {
  initLanguage();
  try {
    await loadConfig();
  } catch {
    document.getElementById("app")!.replaceChildren(
      h("main", { class: "grid-container" }, h("h1", {}, t("errors.config")), h("p", {}, t("errors.network"))),
    );
    return;
  }
  // Agency staff's tokens live in memory only: after a reload of an agency page, the tab signed in to an agency
  // asks its provider again, silently, and comes back to the same page.
  const path = location.pathname;
  if (path.startsWith("/agency") && !/^\/agency\/(callback|signed-out|sign-in)\/?$/.test(path) && !staff()) {
    document.getElementById("app")!.replaceChildren(
      h("main", { class: "grid-container portal-main" }, h("p", { role: "status" }, t("agency.resuming"))),
    );
    try {
      if (await resumeSignIn(path + location.search)) return;
    } catch {
      // The provider cannot be reached: the page shows as signed out, with its sign-in link.
    }
  }
  startRouter(render);
}

void start();
