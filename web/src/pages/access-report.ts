/** The owner's access report: which agencies accessed the registration, when, how (their contact details read,
 * their cameras in a footage request or in a search's contact list, a live window viewed) and whether a case was
 * given — never who at the agency. Each agency's disclosure delay (its public policy) is said, so the resident
 * knows an access may show only days after it happened. */

import { attempt, bearer, registry } from "../api/client";
import type { components } from "../api/registry";
import { h } from "../dom";
import { formatDate, t, type MessageKey } from "../i18n";
import { credentialOrSignIn, failureBox, refused } from "../owner";
import { rerender } from "../router";

type Access = components["schemas"]["Access"];

export async function accessReportPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const credential = credentialOrSignIn(id);
  if (!credential) return;
  main.append(h("h1", {}, t("access.title")));
  const auth = bearer(credential);
  const [report, reg] = await Promise.all([
    attempt(() => registry().GET("/v1/registrations/{registration_id}/access-report", { params: { path: { registration_id: id } }, headers: auth })),
    attempt(() => registry().GET("/v1/registrations/{registration_id}", { params: { path: { registration_id: id } }, headers: auth })),
  ]);
  if (!report.ok) {
    if (refused(id, report.failure)) return;
    main.append(failureBox(report.failure, rerender));
    return;
  }
  main.append(h("p", { class: "usa-intro" }, t("access.intro")), h("p", {}, h("a", { href: `/registrations/${id}` }, t("access.back"))));

  // The delays of the agencies the registration is shared with, and of any agency in the report.
  const slugs = [...new Set([...(reg.ok ? reg.data.properties.shared_with : []), ...report.data.accesses.map((a) => a.agency)])];
  const agencies = await Promise.all(
    slugs.map(async (slug) => {
      const outcome = await attempt(() => registry().GET("/v1/agencies/{slug}", { params: { path: { slug }, query: { skipGeometry: true } } }));
      return outcome.ok ? { name: outcome.data.properties.name, delay: outcome.data.properties.disclosure_delay_days ?? 0 } : null;
    }),
  );
  const delays = agencies.filter((a): a is { name: string; delay: number } => a !== null);

  const accesses = report.data.accesses;
  if (!accesses.length) main.append(h("p", { class: "portal-empty" }, t("access.none")));
  else
    main.append(
      h(
        "ul",
        { class: "usa-list usa-list--unstyled access-list", "aria-label": t("access.list_label") },
        accesses.map((a) => entry(a)),
      ),
    );
  if (delays.length)
    main.append(
      h("h2", {}, t("access.delay_title")),
      h(
        "ul",
        { class: "usa-list" },
        delays.map((d) => h("li", {}, d.delay ? t("access.delay_days", { agency: d.name, days: d.delay }) : t("access.delay_none", { agency: d.name }))),
      ),
    );
  main.append(h("h2", {}, t("access.never_title")), h("p", {}, t("access.never")));
}

function entry(a: Access): HTMLElement {
  return h(
    "li",
    { class: "portal-card access-entry", "data-kind": a.kind },
    h("p", { class: "access-entry__title" }, h("strong", {}, a.agency_name), " · ", formatDate(`${a.date}T12:00:00Z`)),
    h("p", {}, t(`access.kind_${a.kind}` as MessageKey)),
    h("p", { class: "usa-hint" }, a.case_given ? t("access.case_given") : t("access.case_not_given")),
  );
}
