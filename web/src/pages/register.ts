/** Register on one short page: the place (and its program), a name, an email or a phone, how many cameras,
 * consent, "Register". Everything else is optional and comes later, on the registration's own page.
 *
 * Never twice: every send after a lost answer carries the same Idempotency-Key, edited or not, until the outcome
 * is known. The service answers an edited body under a key it already registered with "used for a different
 * body" (without registering): then the registration was made, and the lost request's own body, sent again
 * under its key, brings back its stored answer (the credential). The edits are then offered on the
 * registration's edit page. An edited body whose key registered nothing is simply registered. */

import { attempt, registry, type RegistrationCreate } from "../api/client";
import { config } from "../config";
import { h } from "../dom";
import { contactProblem, errorsFromFailure, NAME_MAX, showErrors, textField, type FieldError } from "../forms";
import { t } from "../i18n";
import { coordinates, place, placePicker } from "../place";
import { navigate, onLeave } from "../router";
import { handover, remember } from "../session";
import { advocate } from "../staff";
import { carryEdits } from "./edit";

const draft = {
  name: "",
  contact: "",
  cameras: "1",
  consent: false,
  key: "",
  // The bodies sent under `key` whose answers never came (lost on the way, or the tab reloaded before): any one
  // of them may have registered.
  lost: [] as RegistrationCreate[],
};

// What was typed survives a reload (a phone reloads a tab it had put aside): kept in this tab's sessionStorage,
// like the credential, until the registration is made. The Idempotency-Key goes with it, so a reload after an
// answer that was lost cannot register twice.
const DRAFT_KEY = "canvass.register-draft";
let restored = false;

function restoreDraft(): void {
  if (restored) return;
  restored = true;
  try {
    const saved = JSON.parse(sessionStorage.getItem(DRAFT_KEY) ?? "null") as {
      draft?: Partial<typeof draft>;
      place?: Partial<Pick<typeof place, "address" | "lat" | "lon" | "chosen">>;
    } | null;
    if (!saved) return;
    const text = (v: unknown, fallback: string) => (typeof v === "string" ? v : fallback);
    draft.name = text(saved.draft?.name, draft.name);
    draft.contact = text(saved.draft?.contact, draft.contact);
    draft.cameras = text(saved.draft?.cameras, draft.cameras);
    draft.key = text(saved.draft?.key, draft.key);
    draft.lost = Array.isArray(saved.draft?.lost) ? saved.draft.lost : [];
    draft.consent = saved.draft?.consent === true;
    // Only where the place is: its programs are asked again when the page shows it.
    place.address = text(saved.place?.address, place.address);
    place.lat = text(saved.place?.lat, place.lat);
    place.lon = text(saved.place?.lon, place.lon);
    place.chosen = typeof saved.place?.chosen === "string" ? saved.place.chosen : place.chosen;
  } catch {
    // A draft that cannot be read is only lost typing: the form starts empty.
  }
}

function saveDraft(): void {
  const { address, lat, lon, chosen } = place;
  sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ draft, place: { address, lat, lon, chosen } }));
}

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

/** The service's answer to a key sent again with another body than the one it registered. */
const KEY_REUSED = "idempotency-key-reused";

function sameBody(a: RegistrationCreate, b: RegistrationCreate): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function registerPage(main: HTMLElement): void {
  restoreDraft();
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
    else if ([...draft.name.trim()].length > NAME_MAX)
      errors.push({ field: "reg-name", message: t("register.error_name_long", { max: NAME_MAX }) });
    const contactError = draft.contact.trim() ? contactProblem(draft.contact) : "register.error_contact";
    if (contactError) errors.push({ field: "reg-contact", message: t(contactError) });
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
    const key = draft.key;
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
    const post = (b: RegistrationCreate) =>
      attempt(() =>
        registry().POST("/v1/registrations", {
          body: b,
          params: { header: { "Idempotency-Key": key } },
          headers: onBehalf ? { Authorization: `Bearer ${onBehalf.token}` } : {},
        }),
      );
    // Kept before it is sent: a tab reloaded before the answer comes must know it may have registered.
    if (!draft.lost.some((b) => sameBody(b, body))) draft.lost.push(body);
    saveDraft();
    let outcome = await post(body);
    // An answer, even a refusal, says this body did not register unseen.
    if (outcome.ok || !outcome.failure.retryable) draft.lost = draft.lost.filter((b) => !sameBody(b, body));
    // The key already registered one of the lost requests (with other details than these): ask for that one's
    // answer again, each lost body in turn under the same key, which the service replays without registering.
    let registeredBefore: RegistrationCreate | null = null;
    if (!outcome.ok && outcome.failure.kind === KEY_REUSED) {
      for (const earlier of draft.lost) {
        outcome = await post(earlier);
        if (outcome.ok) registeredBefore = earlier;
        if (outcome.ok || outcome.failure.kind !== KEY_REUSED) break;
      }
    }
    submit.disabled = false;
    if (!outcome.ok) {
      // A corrected request is a new one with a new key, unless an earlier one's outcome is still unknown.
      if (!outcome.failure.retryable && !draft.lost.length) draft.key = "";
      saveDraft();
      const errors =
        outcome.failure.kind === KEY_REUSED
          ? [{ field: null, message: t("register.error_unknown_outcome") }]
          : errorsFromFailure(outcome.failure, FIELDS, labels);
      showErrors(form, summary, errors, outcome.failure.retryable ? () => void send() : undefined);
      return;
    }
    const created = outcome.data;
    if (registeredBefore) {
      // What the resident changed since is not lost: the edit page shows it filled in, ready to save.
      const then = registeredBefore.contact;
      const now = body.contact;
      carryEdits(created.id, {
        ...(now.name !== then.name ? { name: now.name ?? "" } : {}),
        ...(now.email !== then.email || now.phone !== then.phone ? { email: now.email ?? "", phone: now.phone ?? "" } : {}),
      });
    }
    if (created.credential) {
      if (!onBehalf) remember(created.id, created.credential);
      handover.created = { id: created.id, credential: created.credential, kind: onBehalf ? "advocate" : "registered" };
    } else {
      handover.created = null;
    }
    handover.registeredBefore = !!registeredBefore;
    // A new registration starts from an empty page.
    Object.assign(draft, { name: "", contact: "", cameras: "1", consent: false, key: "", lost: [] });
    Object.assign(place, { address: "", lat: "", lon: "", agencies: null, chosen: null });
    sessionStorage.removeItem(DRAFT_KEY);
    navigate(created.credential ? "/credential" : "/registered-by-email");
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
  // Typing is kept as it happens; a pin placed on the map, when the page is left or reloaded.
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);
  window.addEventListener("pagehide", saveDraft);
  onLeave(() => {
    window.removeEventListener("pagehide", saveDraft);
    if (draft.name || draft.contact || place.lat) saveDraft();
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
