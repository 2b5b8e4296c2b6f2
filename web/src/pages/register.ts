/** Register on one short page: the place (and its program), a name, an email or a phone, how many cameras,
 * consent, "Register". Everything else is optional and comes later, on the registration's own page. A retry
 * after a lost answer sends the same Idempotency-Key, so it can never register twice. */

import { attempt, registry, type RegistrationCreate } from "../api/client";
import { config } from "../config";
import { h } from "../dom";
import { errorsFromFailure, showErrors, textField, type FieldError } from "../forms";
import { t } from "../i18n";
import { coordinates, place, placePicker } from "../place";
import { navigate } from "../router";
import { handover, remember } from "../session";
import { advocate } from "../staff";

const draft = { name: "", contact: "", cameras: "1", consent: false, key: "" };

const FIELDS: Record<string, string> = {
  "/body/location": "reg-lat",
  "/body/agency": "reg-program",
  "/body/contact/name": "reg-name",
  "/body/contact": "reg-contact",
  "/body/cameras": "reg-cameras",
  "/body/terms": "reg-consent",
};

/** The contact as the contract wants it: an email when it has an @, a phone otherwise. */
export function contactOf(name: string, value: string): RegistrationCreate["contact"] {
  const v = value.trim();
  return v.includes("@")
    ? { name: name.trim(), email: v, preferred_method: "email" }
    : { name: name.trim(), phone: v, preferred_method: "phone" };
}

export function registerPage(main: HTMLElement): void {
  const summary = h("div", { class: "error-summary-host" });
  const labels = {
    "reg-lat": t("place.lat"),
    "reg-program": t("place.program"),
    "reg-name": t("register.name"),
    "reg-contact": t("register.contact"),
    "reg-cameras": t("register.cameras"),
    "reg-consent": t("register.consent_label"),
  };
  const consent = h("input", {
    class: "usa-checkbox__input",
    id: "reg-consent",
    type: "checkbox",
    name: "reg-consent",
    onchange: (e: Event) => {
      draft.consent = (e.target as HTMLInputElement).checked;
    },
  });
  consent.checked = draft.consent;
  const submit = h("button", { type: "submit", class: "usa-button usa-button--big" }, t("register.submit"));

  const form = h(
    "form",
    { class: "usa-form usa-form--large portal-form", novalidate: true },
    h(
      "fieldset",
      { class: "usa-fieldset" },
      h("legend", { class: "usa-legend usa-legend--large" }, t("register.where")),
      placePicker({ idPrefix: "reg", choose: true }),
    ),
    textField({
      id: "reg-name",
      label: t("register.name"),
      value: draft.name,
      autocomplete: "name",
      onInput: (v) => (draft.name = v),
    }),
    textField({
      id: "reg-contact",
      label: t("register.contact"),
      hint: t("register.contact_hint"),
      value: draft.contact,
      autocomplete: "email",
      onInput: (v) => (draft.contact = v),
    }),
    textField({
      id: "reg-cameras",
      label: t("register.cameras"),
      hint: t("register.cameras_hint"),
      value: draft.cameras,
      inputmode: "numeric",
      width: "small",
      onInput: (v) => (draft.cameras = v),
    }),
    h(
      "div",
      { class: "usa-form-group", "data-field": "reg-consent" },
      h(
        "div",
        { class: "usa-checkbox" },
        consent,
        h(
          "label",
          { class: "usa-checkbox__label", for: "reg-consent" },
          t("register.consent"),
        ),
      ),
    ),
    submit,
  );

  const send = async () => {
    const errors: FieldError[] = [];
    const c = coordinates();
    if (!c) errors.push({ field: "reg-lat", message: t("register.error_place") });
    else if (place.agencies !== null && !place.agencies.length)
      errors.push({ field: "reg-lat", message: t("place.not_covered") });
    else if (place.agencies !== null && !place.chosen)
      errors.push({ field: "reg-program", message: t("register.error_program") });
    if (!draft.name.trim()) errors.push({ field: "reg-name", message: t("register.error_name") });
    if (!draft.contact.trim()) errors.push({ field: "reg-contact", message: t("register.error_contact") });
    const count = Number(draft.cameras.trim());
    if (!Number.isInteger(count) || count < 1 || count > 50)
      errors.push({ field: "reg-cameras", message: t("register.error_cameras") });
    if (!draft.consent) errors.push({ field: "reg-consent", message: t("register.error_consent") });
    if (c && place.agencies === null) {
      // The place was typed but not checked yet: find its program first.
      const covering = await attempt(() =>
        registry().GET("/v1/agencies/covering", { params: { query: { lat: c.lat, lon: c.lon } } }),
      );
      if (!covering.ok) {
        showErrors(form, summary, errorsFromFailure(covering.failure, FIELDS, labels), covering.failure.retryable ? () => void send() : undefined);
        return;
      }
      place.agencies = covering.data.features;
      if (place.agencies.length === 1) place.chosen = place.agencies[0]!.properties.slug;
      else if (!place.agencies.length) errors.unshift({ field: "reg-lat", message: t("place.not_covered") });
      else errors.unshift({ field: "reg-program", message: t("register.error_program") });
    }
    if (errors.length || !c || !place.chosen) {
      showErrors(form, summary, errors);
      return;
    }
    if (!draft.key) draft.key = crypto.randomUUID();
    const body: RegistrationCreate = {
      agency: place.chosen,
      location: { type: "Point", coordinates: [c.lon, c.lat] },
      contact: contactOf(draft.name, draft.contact),
      cameras: Array.from({ length: count }, () => ({})),
      terms: { version: config().terms_version },
    };
    submit.disabled = true;
    // An advocate registers on the owner's behalf with their own token: the registration is recorded as such.
    const onBehalf = advocate();
    const outcome = await attempt(() =>
      registry().POST("/v1/registrations", {
        body,
        params: { header: { "Idempotency-Key": draft.key } },
        headers: onBehalf ? { Authorization: `Bearer ${onBehalf.token}` } : {},
      }),
    );
    submit.disabled = false;
    if (!outcome.ok) {
      // Only a retry of the very same request may reuse the key; a corrected one is a new request.
      if (!outcome.failure.retryable) draft.key = "";
      showErrors(
        form,
        summary,
        errorsFromFailure(outcome.failure, FIELDS, labels),
        outcome.failure.retryable ? () => void send() : undefined,
      );
      return;
    }
    const created = outcome.data;
    if (created.credential) {
      if (!onBehalf) remember(created.id, created.credential);
      handover.created = { id: created.id, credential: created.credential, kind: onBehalf ? "advocate" : "registered" };
    } else {
      handover.created = null;
    }
    // A new registration starts from an empty page.
    Object.assign(draft, { name: "", contact: "", cameras: "1", consent: false, key: "" });
    Object.assign(place, { address: "", lat: "", lon: "", agencies: null, chosen: null });
    navigate(created.credential ? "/credential" : "/registered-by-email");
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });

  const onBehalf = advocate();
  main.append(
    h("h1", {}, t("register.title")),
    onBehalf
      ? h(
          "div",
          { class: "usa-alert usa-alert--info usa-alert--slim" },
          h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, t("register.advocate", { agency: onBehalf.agency }))),
        )
      : "",
    h("p", { class: "usa-intro" }, t("register.intro")),
    summary,
    form,
  );
}
