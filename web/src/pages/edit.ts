/** Edit the registration's details with If-Match: when it changed elsewhere (412) the page says so, keeps what
 * was typed, and offers to reload the latest version before saving again. */

import { attempt, bearer, ifMatch, registry, type Registration, type RegistrationPatch } from "../api/client";
import { h } from "../dom";
import { emailLooksRight, errorsFromFailure, NAME_MAX, phoneLooksRight, showErrors, textField, type FieldError } from "../forms";
import { t } from "../i18n";
import { loadOwned, refused } from "../owner";
import { navigate, rerender } from "../router";
import { registrationNotice } from "./registration";

type Member = "name" | "email" | "phone" | "address" | "notes";

interface Draft {
  version: number;
  values: Record<Member, string>;
  touched: Set<Member>; // only what the resident changed is sent, so a change made elsewhere is not undone
}

/** A sentence for the next showing of the page (the latest version was loaded), announced there. */
const editNotice: { text: string | null } = { text: null };

function valuesOf(p: Registration["properties"]): Record<Member, string> {
  return {
    name: p.contact.name ?? "",
    email: p.contact.email ?? "",
    phone: p.contact.phone ?? "",
    address: p.address ?? "",
    notes: p.notes_for_investigators ?? "",
  };
}

// What was typed, per registration, for as long as the tab lives: a failed save or a language switch keeps it.
const drafts = new Map<string, Draft>();

// Changes the resident made on the registration form that were not sent (the registration had been made by an
// earlier "Register" whose answer was lost): filled in, as changed, when the edit page is first shown.
const carried = new Map<string, Partial<Record<Member, string>>>();

export function carryEdits(id: string, values: Partial<Record<"name" | "email" | "phone", string>>): void {
  if (Object.keys(values).length) carried.set(id, values);
}

export function hasCarriedEdits(id: string): boolean {
  return carried.has(id);
}

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
    draft = { version: p.version, values: valuesOf(p), touched: new Set() };
    const unsent = carried.get(id);
    for (const [member, value] of Object.entries(unsent ?? {}) as [Member, string][]) {
      draft.values[member] = value;
      draft.touched.add(member);
    }
    if (unsent) editNotice.text = t("edit.carried");
    carried.delete(id);
    drafts.set(id, draft);
  }
  const d = draft;
  const set = (member: Member) => (value: string) => {
    d.values[member] = value;
    d.touched.add(member);
  };
  const labels = {
    "edit-name": t("register.name"),
    "edit-email": t("edit.email"),
    "edit-phone": t("edit.phone"),
    "edit-address": t("edit.address"),
    "edit-notes": t("edit.notes"),
  };
  const summary = h("div", { class: "error-summary-host" });
  const notes = h("textarea", { class: "usa-textarea", id: "edit-notes", name: "edit-notes", rows: 3 });
  notes.value = d.values.notes;
  notes.addEventListener("input", () => set("notes")(notes.value));
  const submit = h("button", { type: "submit", class: "usa-button" }, t("edit.save"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    textField({ id: "edit-name", label: labels["edit-name"], value: d.values.name, autocomplete: "name", onInput: set("name") }),
    textField({ id: "edit-email", label: labels["edit-email"], hint: t("edit.contact_hint"), value: d.values.email, type: "email", autocomplete: "email", onInput: set("email") }),
    textField({ id: "edit-phone", label: labels["edit-phone"], value: d.values.phone, type: "tel", autocomplete: "tel", onInput: set("phone") }),
    textField({ id: "edit-address", label: labels["edit-address"], value: d.values.address, autocomplete: "street-address", optional: true, onInput: set("address") }),
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
    // The latest version becomes the one saved over: what the resident typed stays, the rest is the latest.
    d.version = latest.data.properties.version;
    const fresh = valuesOf(latest.data.properties);
    for (const member of Object.keys(fresh) as Member[]) if (!d.touched.has(member)) d.values[member] = fresh[member];
    editNotice.text = t("edit.reloaded");
    rerender();
  };

  const send = async () => {
    const value = (member: Member) => d.values[member].trim() || null;
    const contact: NonNullable<RegistrationPatch["contact"]> = {};
    const body: RegistrationPatch = {};
    if (d.touched.has("name")) contact.name = value("name");
    if (d.touched.has("email")) contact.email = value("email");
    if (d.touched.has("phone")) contact.phone = value("phone");
    if (Object.keys(contact).length) body.contact = contact;
    if (d.touched.has("address")) body.address = value("address");
    if (d.touched.has("notes")) body.notes_for_investigators = value("notes");
    // What a changed name, email or phone is missing, said at its field before anything is sent (the service
    // would answer in its own technical words).
    const errors: FieldError[] = [];
    if (d.touched.has("name")) {
      if (!contact.name) errors.push({ field: "edit-name", message: t("register.error_name") });
      else if ([...contact.name].length > NAME_MAX)
        errors.push({ field: "edit-name", message: t("register.error_name_long", { max: NAME_MAX }) });
    }
    if (contact.email && !emailLooksRight(contact.email)) errors.push({ field: "edit-email", message: t("register.error_email") });
    if (contact.phone && !phoneLooksRight(contact.phone)) errors.push({ field: "edit-phone", message: t("edit.error_phone") });
    if ((d.touched.has("email") || d.touched.has("phone")) && !value("email") && !value("phone"))
      errors.push({ field: "edit-email", message: t("edit.error_contact") });
    if (errors.length) {
      showErrors(form, summary, errors);
      return;
    }
    if (!Object.keys(body).length) {
      drafts.delete(id);
      navigate(`/registrations/${id}`);
      return;
    }
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
  if (editNotice.text) {
    summary.append(
      h(
        "div",
        { class: "usa-alert usa-alert--info usa-alert--slim", role: "status" },
        h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, editNotice.text)),
      ),
    );
    editNotice.text = null;
  }
  main.append(h("h1", {}, t("edit.title")), summary, form);
}
