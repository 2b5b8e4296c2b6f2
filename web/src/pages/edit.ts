/** Edit the registration's details with If-Match: when it changed elsewhere (412) the page says so, keeps what
 * was typed, and offers to reload the latest version before saving again. */

import { attempt, bearer, ifMatch, registry, type RegistrationPatch } from "../api/client";
import { h } from "../dom";
import { errorsFromFailure, showErrors, textField } from "../forms";
import { t } from "../i18n";
import { loadOwned, refused } from "../owner";
import { navigate } from "../router";
import { registrationNotice } from "./registration";

interface Draft {
  version: number;
  name: string;
  email: string;
  phone: string;
  address: string;
  notes: string;
}

// What was typed, per registration, for as long as the tab lives: a failed save or a language switch keeps it.
const drafts = new Map<string, Draft>();

const FIELDS: Record<string, string> = {
  "/body/contact/name": "edit-name",
  "/body/contact/email": "edit-email",
  "/body/contact/phone": "edit-phone",
  "/body/contact": "edit-email",
  "/body/address": "edit-address",
  "/body/notes_for_investigators": "edit-notes",
};

export async function editPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const owned = await loadOwned(main, id);
  if (!owned) return;
  const p = owned.registration.properties;
  let draft = drafts.get(id);
  if (!draft) {
    draft = {
      version: p.version,
      name: p.contact.name ?? "",
      email: p.contact.email ?? "",
      phone: p.contact.phone ?? "",
      address: p.address ?? "",
      notes: p.notes_for_investigators ?? "",
    };
    drafts.set(id, draft);
  }
  const d = draft;
  const labels = {
    "edit-name": t("register.name"),
    "edit-email": t("edit.email"),
    "edit-phone": t("edit.phone"),
    "edit-address": t("edit.address"),
    "edit-notes": t("edit.notes"),
  };
  const summary = h("div", { class: "error-summary-host" });
  const notes = h("textarea", { class: "usa-textarea", id: "edit-notes", name: "edit-notes", rows: 3 });
  notes.value = d.notes;
  notes.addEventListener("input", () => (d.notes = notes.value));
  const submit = h("button", { type: "submit", class: "usa-button" }, t("edit.save"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    textField({ id: "edit-name", label: labels["edit-name"], value: d.name, autocomplete: "name", onInput: (v) => (d.name = v) }),
    textField({ id: "edit-email", label: labels["edit-email"], hint: t("edit.contact_hint"), value: d.email, type: "email", autocomplete: "email", onInput: (v) => (d.email = v) }),
    textField({ id: "edit-phone", label: labels["edit-phone"], value: d.phone, type: "tel", autocomplete: "tel", onInput: (v) => (d.phone = v) }),
    textField({ id: "edit-address", label: labels["edit-address"], value: d.address, autocomplete: "street-address", optional: true, onInput: (v) => (d.address = v) }),
    h(
      "div",
      { class: "usa-form-group", "data-field": "edit-notes" },
      h("label", { class: "usa-label", for: "edit-notes" }, labels["edit-notes"], h("span", { class: "usa-hint" }, ` ${t("form.optional")}`)),
      notes,
    ),
    h(
      "div",
      { class: "portal-actions" },
      submit,
      h("a", { class: "usa-button usa-button--unstyled", href: `/registrations/${id}` }, t("edit.cancel")),
    ),
  );

  const reload = async () => {
    const latest = await attempt(() =>
      registry().GET("/v1/registrations/{registration_id}", {
        params: { path: { registration_id: id } },
        headers: bearer(owned.credential),
      }),
    );
    if (!latest.ok) {
      if (refused(id, latest.failure)) return;
      showErrors(form, summary, errorsFromFailure(latest.failure, {}), () => void reload());
      return;
    }
    // The latest version becomes the one saved over; what was typed stays in the fields.
    d.version = latest.data.properties.version;
    showErrors(form, summary, []);
    summary.replaceChildren(
      h(
        "div",
        { class: "usa-alert usa-alert--info usa-alert--slim", role: "status" },
        h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, t("edit.reloaded"))),
      ),
    );
  };

  const send = async () => {
    const contact: NonNullable<RegistrationPatch["contact"]> = {
      name: d.name.trim() || null,
      email: d.email.trim() || null,
      phone: d.phone.trim() || null,
    };
    const body: RegistrationPatch = {
      contact,
      address: d.address.trim() || null,
      notes_for_investigators: d.notes.trim() || null,
    };
    submit.disabled = true;
    const outcome = await attempt(() =>
      registry().PATCH("/v1/registrations/{registration_id}", {
        params: { path: { registration_id: id }, header: ifMatch(d.version) },
        headers: bearer(owned.credential),
        body,
      }),
    );
    submit.disabled = false;
    if (!outcome.ok) {
      const f = outcome.failure;
      if (refused(id, f)) return;
      if (f.status === 412) {
        showErrors(form, summary, [{ field: null, message: t("errors.changed_elsewhere") }]);
        summary.querySelector(".usa-alert__body")?.append(
          h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void reload() }, t("edit.reload")),
        );
        return;
      }
      showErrors(form, summary, errorsFromFailure(f, FIELDS, labels), f.retryable ? () => void send() : undefined);
      return;
    }
    drafts.delete(id);
    registrationNotice.text = t("edit.saved");
    navigate(`/registrations/${id}`);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
  main.append(h("h1", {}, t("edit.title")), summary, form);
}
