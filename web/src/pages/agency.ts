/** The agency's sign-in pages: pick the agency, leave for its own identity provider, come back (the callback),
 * the signed-in state (role and agency, the program as the services show it to its own staff), and signing out
 * everywhere. The header's line saying who is signed in is here too. */

import { attempt, bearer, registry } from "../api/client";
import { config } from "../config";
import { h } from "../dom";
import { formatNumber, t, type MessageKey } from "../i18n";
import { agencyProviders, completeSignIn, signInWith, SignInError } from "../oidc";
import { navigate } from "../router";
import { signOutStaff, staff, staffToken, type Staff } from "../staff";

/** Why the sign-in page shows, when a page sent the person here (their provider's session ended). */
const signInNeeded: { text: string | null } = { text: null };

// The roles a token or a record may name (shared/auth.py's, and the service's own and an owner's in records).
const ROLE_KEYS = new Set(["advocate", "investigator", "supervisor", "agency_admin", "auditor", "integrator", "cad", "service", "system", "owner"]);

export function roleName(role: string): string {
  return ROLE_KEYS.has(role) ? t(`role.${role}` as MessageKey) : role;
}

function alert(kind: "info" | "error" | "success", text: string, role = "status"): HTMLElement {
  return h(
    "div",
    { class: `usa-alert usa-alert--${kind} usa-alert--slim`, role },
    h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, text)),
  );
}

function signOutButton(): HTMLElement {
  return h(
    "button",
    {
      type: "button",
      class: "usa-button usa-button--outline",
      onclick: signOut,
    },
    t("agency.sign_out"),
  );
}

/** Signs out (at the provider too, which then returns to /agency/signed-out); where the provider cannot end its
 * own session, the signed-out page says so. */
function signOut(): void {
  signOutStaff().then(
    () => navigate("/agency/signed-out"),
    () => navigate("/agency/signed-out?provider=open"),
  );
}

/** The header's line: who is signed in (role, agency) and the sign-out button; nothing for residents. */
export function agencyStatus(): HTMLElement | string {
  const s = staff();
  if (!s) return "";
  return h(
    "div",
    { class: "portal-agency-status", id: "portal-agency-status" },
    h("span", {}, t("agency.header_signed_in", { role: roleName(s.role), agency: s.agency })),
    h(
      "button",
      {
        type: "button",
        class: "usa-button usa-button--unstyled portal-agency-status__out",
        onclick: signOut,
      },
      t("agency.sign_out"),
    ),
  );
}

/** The page a signed-out visitor of an agency page sees instead: a link to sign in and come back. */
export function signInFirst(main: HTMLElement, title: string): void {
  const next = encodeURIComponent(location.pathname);
  main.append(
    h("h1", {}, title),
    h("p", {}, t("agency.sign_in_first")),
    h("a", { class: "usa-button", href: `/agency/sign-in?next=${next}` }, t("agency.sign_in")),
  );
}

async function signedIn(main: HTMLElement, s: Staff): Promise<void> {
  main.append(
    h("h1", {}, t("agency.title_signed_in")),
    alert("success", t("agency.signed_in", { role: roleName(s.role), agency: s.agency })),
  );
  // The program as the services show it to the agency's own staff (its policy): the token is accepted.
  const token = await staffToken();
  const program = await attempt(() =>
    registry().GET("/v1/agencies/{slug}", { params: { path: { slug: s.agency }, query: { skipGeometry: true } }, headers: token ? bearer(token) : {} }),
  );
  if (program.ok) {
    const p = program.data.properties;
    const rows: [string, string][] = [[t("agency.program_name"), p.name]];
    if (p.policy) {
      rows.push(
        [t("program.max_request_area_m2"), formatNumber(p.policy.max_request_area_m2)],
        [t("program.max_request_window_hours"), formatNumber(p.policy.max_request_window_hours, 2)],
        [t("program.requires_approval"), p.policy.requires_approval ? t("agency.yes") : t("agency.no")],
      );
    }
    main.append(
      h("h2", {}, t("agency.your_program")),
      h("dl", { class: "portal-details", "data-testid": "agency-program" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    );
  } else {
    main.append(alert("error", program.failure.status === 401 ? t("agency.token_refused") : t("agency.program_failed"), "alert"));
  }
  main.append(
    h(
      "div",
      { class: "portal-actions" },
      s.roles.includes("agency_admin") ? h("a", { class: "usa-button", href: "/agency/program" }, t("program.title")) : "",
      signOutButton(),
    ),
  );
}

export async function agencySignInPage(main: HTMLElement): Promise<void> {
  const current = staff();
  if (current) {
    await signedIn(main, current);
    return;
  }
  main.append(h("h1", {}, t("agency.title")));
  if (signInNeeded.text) main.append(alert("info", signInNeeded.text));
  signInNeeded.text = null;
  main.append(h("p", { class: "usa-intro" }, t("agency.intro")));
  const providers = agencyProviders();
  const slugs = Object.keys(providers);
  if (!slugs.length) {
    main.append(alert("info", t("agency.none_configured")));
  } else {
    // The programs' names, when the registry answers (the slugs alone otherwise).
    const list = await attempt(() => registry().GET("/v1/agencies", { params: { query: { limit: 100, skipGeometry: true } } }));
    const names = new Map(list.ok ? list.data.features.map((a) => [a.properties.slug, a.properties.name] as const) : []);
    const next = new URLSearchParams(location.search).get("next") ?? "/agency/sign-in";
    const summary = h("div", { class: "error-summary-host" });
    const choice = h(
      "select",
      { class: "usa-select", id: "agency-choice", name: "agency-choice" },
      slugs.map((slug) => h("option", { value: slug }, names.get(slug) ?? slug)),
    );
    const button = h("button", { type: "submit", class: "usa-button" }, t("agency.continue"));
    const form = h(
      "form",
      { class: "usa-form usa-form--large", novalidate: true },
      h(
        "div",
        { class: "usa-form-group", "data-field": "agency-choice" },
        h("label", { class: "usa-label", for: "agency-choice" }, t("agency.choose")),
        h("div", { class: "usa-hint", id: "agency-choice-hint" }, t("agency.choose_hint")),
        choice,
      ),
      button,
    );
    choice.setAttribute("aria-describedby", "agency-choice-hint");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      button.disabled = true;
      signInWith(choice.value, next).catch(() => {
        button.disabled = false;
        summary.replaceChildren(alert("error", t("agency.provider_unreachable"), "alert"));
      });
    });
    main.append(summary, form);
  }
  if (config().dev_sign_in) {
    main.append(h("p", {}, h("a", { href: "/staff" }, t("agency.dev_link"))));
  }
}

export async function agencyCallbackPage(main: HTMLElement): Promise<void> {
  const status = h("p", { role: "status" }, t("agency.completing"));
  // Passing through: the page the person is going to comes next (the tests wait for that one's heading).
  main.dataset.signingIn = "";
  main.append(h("h1", {}, t("agency.title")), status);
  try {
    const next = await completeSignIn();
    navigate(next, true);
  } catch (e) {
    const reason = e instanceof SignInError ? e.reason : "failed";
    if (e instanceof SignInError && reason === "sign_in_needed") {
      // The provider's session is over: the sign-in page, then where the person was going.
      signInNeeded.text = t("agency.sign_in_needed");
      navigate(`/agency/sign-in?next=${encodeURIComponent(e.next)}`, true);
      return;
    }
    delete main.dataset.signingIn;
    status.remove();
    main.append(
      alert("error", reason === "no_claims" ? t("agency.no_claims") : t("agency.failed"), "alert"),
      h("p", {}, h("a", { href: "/agency/sign-in" }, t("agency.try_again"))),
    );
  }
}

export function agencySignedOutPage(main: HTMLElement): void {
  const current = staff();
  if (current) {
    // Reached by a link while still signed in: the page does not say otherwise.
    main.append(
      h("h1", {}, t("agency.title_signed_in")),
      alert("info", t("agency.still_signed_in", { role: roleName(current.role), agency: current.agency })),
      signOutButton(),
    );
    return;
  }
  const providerOpen = new URLSearchParams(location.search).get("provider") === "open";
  main.append(
    h("h1", {}, t("agency.signed_out_title")),
    h("p", {}, t("agency.signed_out")),
    providerOpen ? alert("info", t("agency.provider_still_open")) : "",
    h("a", { class: "usa-button", href: "/agency/sign-in" }, t("agency.sign_in")),
  );
}
