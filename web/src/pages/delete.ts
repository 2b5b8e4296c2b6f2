/** Delete, for real: first a page listing exactly what will be erased, then the deletion, then a page saying
 * it is gone (the credential is forgotten with it). */

import { attempt, bearer, ifMatch, registry } from "../api/client";
import { h } from "../dom";
import { errorsFromFailure, showErrors } from "../forms";
import { t } from "../i18n";
import { loadOwned, refused } from "../owner";
import { navigate } from "../router";
import { forget } from "../session";

export async function deletePage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const owned = await loadOwned(main, id);
  if (!owned) return;
  const p = owned.registration.properties;
  const summary = h("div", { class: "error-summary-host" });
  const confirm = h("button", { type: "button", class: "usa-button usa-button--secondary" }, t("delete.confirm"));
  const send = async () => {
    confirm.disabled = true;
    const outcome = await attempt(() =>
      registry().DELETE("/v1/registrations/{registration_id}", {
        params: { path: { registration_id: id }, header: ifMatch(p.version) },
        headers: bearer(owned.credential),
      }),
    );
    confirm.disabled = false;
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      const f = outcome.failure;
      const errors = f.status === 412 ? [{ field: null, message: t("errors.changed_elsewhere") }] : errorsFromFailure(f, {});
      showErrors(main, summary, errors, f.retryable ? () => void send() : undefined);
      return;
    }
    forget(id);
    navigate("/deleted", true);
  };
  confirm.addEventListener("click", () => void send());
  const items = [
    t("delete.item_contact", { name: p.contact.name ?? "—" }),
    t("delete.item_place"),
    t("delete.item_cameras", { count: p.cameras.length }),
    t("delete.item_answers"),
    t("delete.item_credential"),
  ];
  main.append(
    h("h1", {}, t("delete.title")),
    summary,
    h("p", { class: "usa-intro" }, t("delete.intro")),
    h("h2", {}, t("delete.erased_title")),
    h("ul", { class: "usa-list" }, items.map((text) => h("li", {}, text))),
    h("h2", {}, t("delete.kept_title")),
    h("p", {}, t("delete.kept_text")),
    h("p", {}, t("delete.alternative")),
    h(
      "div",
      { class: "portal-actions" },
      confirm,
      h("a", { class: "usa-button usa-button--outline", href: `/registrations/${id}` }, t("delete.cancel")),
    ),
  );
}

export function deletedPage(main: HTMLElement): void {
  main.append(
    h("h1", {}, t("deleted.title")),
    h("p", { class: "usa-intro" }, t("deleted.text")),
    h("p", {}, h("a", { href: "/" }, t("deleted.home"))),
  );
}
