/** Sharing with further agencies: the programs that also cover the registration's place (a county sheriff
 * beside a city's police, say). The program's own agency always sees it; the others only when ticked. */

import { attempt, bearer, ifMatch, registry } from "../api/client";
import { h } from "../dom";
import { errorsFromFailure, showErrors } from "../forms";
import { t } from "../i18n";
import { failureBox, loadOwned, refused } from "../owner";
import { navigate, rerender } from "../router";
import { registrationNotice } from "./registration";

export async function sharingPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const owned = await loadOwned(main, id);
  if (!owned) return;
  const p = owned.registration.properties;
  const [lon, lat] = owned.registration.geometry.coordinates as [number, number];
  const covering = await attempt(() => registry().GET("/v1/agencies/covering", { params: { query: { lat, lon, skipGeometry: true } } }));
  main.append(h("h1", {}, t("sharing.title")));
  if (!covering.ok) {
    main.append(failureBox(covering.failure, rerender));
    return;
  }
  const others = covering.data.features.filter((a) => a.properties.slug !== p.agency);
  const chosen = new Set(p.shared_with.filter((s) => s !== p.agency));
  const summary = h("div", { class: "error-summary-host" });
  const own = covering.data.features.find((a) => a.properties.slug === p.agency)?.properties.name ?? p.agency;
  main.append(h("p", { class: "usa-intro" }, t("sharing.intro", { agency: own })), summary);
  if (!others.length) {
    main.append(h("p", { class: "portal-empty" }, t("sharing.none")), h("a", { href: `/registrations/${id}` }, t("requests.back")));
    return;
  }
  const submit = h("button", { type: "submit", class: "usa-button" }, t("sharing.save"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    h(
      "fieldset",
      { class: "usa-fieldset usa-form-group", "data-field": "share-0" },
      h("legend", { class: "usa-legend" }, t("sharing.legend")),
      others.map((a, i) => {
        const input = h("input", {
          class: "usa-checkbox__input",
          type: "checkbox",
          id: `share-${i}`,
          name: "share",
          value: a.properties.slug,
          onchange: (e: Event) => {
            if ((e.target as HTMLInputElement).checked) chosen.add(a.properties.slug);
            else chosen.delete(a.properties.slug);
          },
        });
        input.checked = chosen.has(a.properties.slug);
        return h("div", { class: "usa-checkbox" }, input, h("label", { class: "usa-checkbox__label", for: `share-${i}` }, a.properties.name));
      }),
    ),
    h(
      "div",
      { class: "portal-actions" },
      submit,
      h("a", { class: "usa-button usa-button--unstyled", href: `/registrations/${id}` }, t("edit.cancel")),
    ),
  );
  const send = async () => {
    submit.disabled = true;
    const outcome = await attempt(() =>
      registry().PATCH("/v1/registrations/{registration_id}", {
        params: { path: { registration_id: id }, header: ifMatch(p.version) },
        headers: bearer(owned.credential),
        body: { share_with: [...chosen] },
      }),
    );
    submit.disabled = false;
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      const f = outcome.failure;
      const errors = f.status === 412 ? [{ field: null, message: t("errors.changed_elsewhere") }] : errorsFromFailure(f, { "/body/share_with": "share-0" });
      showErrors(form, summary, errors, f.retryable ? () => void send() : f.status === 412 ? rerender : undefined);
      return;
    }
    registrationNotice.text = t("sharing.saved");
    navigate(`/registrations/${id}`);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
  main.append(form);
}
