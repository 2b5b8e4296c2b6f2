/** The development sign-in: a role and an agency picked from lists, exchanged by the portal's server for a
 * development token. It exists only where such tokens are accepted (never in production). */

import { attempt, registry } from "../api/client";
import { config } from "../config";
import { h } from "../dom";
import { showErrors } from "../forms";
import { t, type MessageKey } from "../i18n";
import { rerender } from "../router";
import { signInStaff, signOutStaff, staff } from "../staff";
import { notFoundPage } from "./notfound";

const ROLES = ["advocate", "investigator", "supervisor", "agency_admin", "auditor"];

export async function staffPage(main: HTMLElement): Promise<void> {
  if (!config().dev_sign_in) {
    notFoundPage(main);
    return;
  }
  main.append(h("h1", {}, t("staff.title")), h("p", { class: "usa-intro" }, t("staff.intro")));
  const current = staff();
  if (current) {
    main.append(
      h(
        "div",
        { class: "usa-alert usa-alert--info usa-alert--slim", role: "status" },
        h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, t("staff.signed_in", { role: t(`role.${current.role}` as MessageKey), agency: current.agency }))),
      ),
      h(
        "div",
        { class: "portal-actions" },
        current.role === "advocate" ? h("a", { class: "usa-button", href: "/register" }, t("staff.register_owner")) : "",
        h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void signOutStaff().then(rerender) }, t("staff.sign_out")),
      ),
    );
    return;
  }
  const agencies = await attempt(() => registry().GET("/v1/agencies", { params: { query: { limit: 100, skipGeometry: true } } }));
  const summary = h("div", { class: "error-summary-host" });
  const role = h("select", { class: "usa-select", id: "staff-role", name: "staff-role" }, ROLES.map((r) => h("option", { value: r }, t(`role.${r}` as MessageKey))));
  const agency = h(
    "select",
    { class: "usa-select", id: "staff-agency", name: "staff-agency" },
    agencies.ok ? agencies.data.features.map((a) => h("option", { value: a.properties.slug }, `${a.properties.name} (${a.properties.slug})`)) : [],
  );
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    h("div", { class: "usa-form-group", "data-field": "staff-role" }, h("label", { class: "usa-label", for: "staff-role" }, t("staff.role")), role),
    h("div", { class: "usa-form-group", "data-field": "staff-agency" }, h("label", { class: "usa-label", for: "staff-agency" }, t("staff.agency")), agency),
    h("button", { type: "submit", class: "usa-button" }, t("staff.sign_in")),
  );
  const send = async () => {
    try {
      const response = await fetch("/dev/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ role: role.value, agency: agency.value }),
      });
      if (!response.ok) throw new Error(String(response.status));
      const body = (await response.json()) as { token: string; role: string; agency: string };
      signInStaff(body);
      rerender();
    } catch {
      showErrors(form, summary, [{ field: "staff-agency", message: t("staff.error") }]);
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
  main.append(summary, form);
}
