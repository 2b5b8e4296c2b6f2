/** Area alerts, opt-in: subscribe an email or phone to an area (a pin and a radius), confirm it with the code sent
 * to it, manage it with the token shown once on confirming, and end it — in the portal, or by the link every
 * alert carries. And each alert's public page (what was said, where, until when; no personal data). */

import { attempt } from "../api/client";
import { agencyChoices, agencyField } from "../agencies";
import { copyButton, focus, h } from "../dom";
import { errorsFromFailure, showErrors, textField } from "../forms";
import { formatDate, language, t } from "../i18n";
import { failureBox } from "../owner";
import { coordinates, placePicker, type Place } from "../place";
import { navigate, onLeave, rerender } from "../router";
import { CATEGORIES, community, type Category } from "./alerts-api";

const draft = {
  agency: "",
  channel: "email" as "email" | "sms",
  contact: "",
  radius: "500",
  categories: new Set<Category>(["crime", "emergency"]),
  // The messages' language: the page's own until the resident picks another (a Spanish page subscribes in Spanish).
  language: null as "en" | "es" | null,
  pending: "",
  code: "",
};
// The area's centre: an address found by the deployment's geocoder, the phone's location, a tap on the map, or typed
// coordinates (the registration's picker, with its own state). Only the point is sent.
const where: Place = { address: "", lat: "", lon: "", agencies: null, chosen: null };
// The manage token: shown once on confirming, kept for this tab only, to open the manage page.
let manageToken = "";
// Whether the manage page follows the confirmation: it then shows the token, once, to keep.
let confirmedNow = false;

const SUBSCRIBE_FIELDS = {
  "/body/agency": "alert-agency",
  "/body/contact": "alert-contact",
  "/body/pin": "alert-lat",
  "/body/radius_m": "alert-radius",
  "/body/categories": "alert-categories",
};

/** Radio buttons; an option may carry the language its label is written in (a language's own name, read out in
 * that language by a screen reader). */
function radios<T extends string>(name: string, legend: string, options: [T, string, string?][], value: T, set: (v: T) => void): HTMLElement {
  return h(
    "fieldset",
    { class: "usa-fieldset usa-form-group", "data-field": name },
    h("legend", { class: "usa-legend" }, legend),
    options.map(([v, label, lang]) => {
      const input = h("input", { class: "usa-radio__input", type: "radio", id: `${name}-${v}`, name, value: v, checked: v === value });
      input.addEventListener("change", () => set(v));
      return h("div", { class: "usa-radio" }, input, h("label", { class: "usa-radio__label", for: `${name}-${v}`, lang: lang ?? null }, label));
    }),
  );
}

export async function alertsSubscribePage(main: HTMLElement): Promise<void> {
  main.append(h("h1", {}, t("alerts.title")), h("p", { class: "usa-intro" }, t("alerts.intro")));
  draft.agency ||= new URLSearchParams(location.search).get("agency") ?? "";
  if (draft.pending) {
    confirmForm(main);
    return;
  }
  // Text messages only where the deployment sends them (it says so); if it cannot be asked, both are offered and
  // the service decides.
  const [agencies, channels] = await Promise.all([agencyChoices(), attempt(() => community().GET("/v1/subscriptions/channels"))]);
  const bySms = !channels.ok || channels.data.channels.includes("sms");
  if (!bySms) draft.channel = "email";
  if (!agencies.ok) {
    main.append(failureBox(agencies.failure, rerender));
    return;
  }
  const summary = h("div", { class: "error-summary-host" });
  // The field asks for what the chosen channel takes: an email address, or a mobile number in the form it takes.
  const contact = textField({ id: "alert-contact", label: "", hint: " ", value: draft.contact, onInput: (v) => (draft.contact = v) });
  const askContact = () => {
    const sms = draft.channel === "sms";
    contact.querySelector("label")!.textContent = t(sms ? "alerts.contact_sms" : "alerts.contact_email");
    contact.querySelector(".usa-hint")!.textContent = t(sms ? "alerts.contact_sms_hint" : "alerts.contact_email_hint");
    const input = contact.querySelector("input")!;
    input.type = sms ? "tel" : "email";
    input.autocomplete = sms ? "tel" : "email";
    input.spellcheck = false;
  };
  askContact();
  const button = h("button", { type: "submit", class: "usa-button" }, t("alerts.subscribe"));
  const categories = h(
    "fieldset",
    { class: "usa-fieldset usa-form-group", "data-field": "alert-categories" },
    h("legend", { class: "usa-legend" }, t("alerts.categories")),
    CATEGORIES.map((c, i) => {
      const id = i === 0 ? "alert-categories" : `alert-category-${c}`;
      const box = h("input", { class: "usa-checkbox__input", type: "checkbox", id, value: c, checked: draft.categories.has(c) });
      box.addEventListener("change", () => (box.checked ? draft.categories.add(c) : draft.categories.delete(c)));
      return h("div", { class: "usa-checkbox" }, box, h("label", { class: "usa-checkbox__label", for: id }, t(`alerts.category_${c}` as "alerts.category_crime")));
    }),
  );
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    agencyField({
      id: "alert-agency",
      label: t("tip.agency"),
      hint: t("alerts.agency_hint"),
      choose: t("tip.agency_choose"),
      choices: agencies.choices,
      value: draft.agency,
      onChange: (slug) => (draft.agency = slug),
    }),
    bySms
      ? radios("alert-channel", t("alerts.channel"), [["email", t("alerts.channel_email")], ["sms", t("alerts.channel_sms")]], draft.channel, (v) => {
          draft.channel = v;
          askContact();
        })
      : null,
    contact,
    h(
      "fieldset",
      { class: "usa-fieldset usa-form-group" },
      h("legend", { class: "usa-legend" }, t("alerts.place")),
      placePicker({ idPrefix: "alert", choose: false, state: where, coverage: false }),
      textField({ id: "alert-radius", label: t("alerts.radius"), hint: t("alerts.radius_hint"), value: draft.radius, inputmode: "numeric", onInput: (v) => (draft.radius = v), width: "sm" }),
    ),
    categories,
    radios("alert-language", t("alerts.language"), [["en", "English", "en"], ["es", "Español", "es"]], draft.language ?? language(), (v) => (draft.language = v)),
    button,
  );
  main.append(summary, form);
  const send = async () => {
    const at = coordinates(where);
    const radius = Number(draft.radius);
    const errors = [
      ...(draft.agency.trim() ? [] : [{ field: "alert-agency", message: t("tip.error_agency") }]),
      ...(draft.contact.trim() ? [] : [{ field: "alert-contact", message: t("alerts.error_contact") }]),
      ...(at ? [] : [{ field: "alert-lat", message: t("alerts.error_place") }]),
      ...(Number.isInteger(radius) ? [] : [{ field: "alert-radius", message: t("alerts.error_radius") }]),
      ...(draft.categories.size ? [] : [{ field: "alert-categories", message: t("alerts.error_categories") }]),
    ];
    if (errors.length || !at) {
      showErrors(form, summary, errors);
      return;
    }
    button.disabled = true;
    const outcome = await attempt(() =>
      community().POST("/v1/subscriptions", {
        body: {
          agency: draft.agency,
          channel: draft.channel,
          contact: draft.contact.trim(),
          pin: { type: "Point", coordinates: [at.lon, at.lat] },
          radius_m: radius,
          categories: [...draft.categories],
          language: draft.language ?? language(),
        },
      }),
    );
    button.disabled = false;
    if (!outcome.ok) {
      showErrors(form, summary, errorsFromFailure(outcome.failure, SUBSCRIBE_FIELDS), outcome.failure.retryable ? () => void send() : undefined);
      return;
    }
    draft.pending = outcome.data.id;
    main.replaceChildren();
    void alertsSubscribePage(main);
    // The button pressed is gone with the form: the next step's heading takes the focus and is read out.
    const next = main.querySelector<HTMLElement>("form h2");
    if (next) focus(next);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
}

function confirmForm(main: HTMLElement): void {
  const summary = h("div", { class: "error-summary-host" });
  const button = h("button", { type: "submit", class: "usa-button" }, t("alerts.confirm"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    h("h2", {}, t("alerts.confirm_title")),
    h("p", {}, t(draft.channel === "sms" ? "alerts.code_sent_sms" : "alerts.code_sent_email")),
    // Where it went, so a mistyped address is seen; and the way back to correct it (no code ever comes to it).
    h("p", {}, t("alerts.sent_to"), " ", h("strong", { class: "portal-break" }, draft.contact.trim())),
    textField({ id: "alert-code", label: t("alerts.code"), hint: t("alerts.code_hint"), value: draft.code, inputmode: "numeric", autocomplete: "one-time-code", onInput: (v) => (draft.code = v), width: "sm" }),
    h(
      "div",
      { class: "portal-actions" },
      button,
      h(
        "button",
        {
          type: "button",
          class: "usa-button usa-button--unstyled",
          onclick: () => {
            Object.assign(draft, { pending: "", code: "" });
            main.replaceChildren();
            void alertsSubscribePage(main).then(() => main.querySelector<HTMLInputElement>("#alert-contact")?.focus());
          },
        },
        t("alerts.change_contact"),
      ),
    ),
  );
  main.append(summary, form);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void (async () => {
      if (!/^\d{6}$/.test(draft.code.trim())) {
        showErrors(form, summary, [{ field: "alert-code", message: t("alerts.error_code") }]);
        return;
      }
      button.disabled = true;
      const outcome = await attempt(() =>
        community().POST("/v1/subscriptions/{subscription_id}/confirm", {
          params: { path: { subscription_id: draft.pending } },
          body: { code: draft.code.trim() },
        }),
      );
      button.disabled = false;
      if (!outcome.ok) {
        showErrors(form, summary, outcome.failure.status === 422 ? [{ field: "alert-code", message: t("alerts.error_code_wrong") }] : errorsFromFailure(outcome.failure, {}));
        return;
      }
      manageToken = outcome.data.manage_token;
      confirmedNow = true;
      Object.assign(draft, { pending: "", code: "", contact: "" });
      navigate("/alerts/manage");
    })();
  });
}

export function alertsManagePage(main: HTMLElement): void {
  main.append(h("h1", {}, t("manage_alerts.title")));
  const summary = h("div", { class: "error-summary-host" });
  const shown = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "usa-button" }, t("manage_alerts.open"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    textField({ id: "manage-token", label: t("manage_alerts.token"), hint: t("manage_alerts.token_hint"), value: manageToken, autocomplete: "off", onInput: (v) => (manageToken = v) }),
    button,
  );
  if (confirmedNow && manageToken) {
    // Just confirmed: the token is shown whole, to copy and keep (in the form's field a phone showed half of it),
    // and the form that asks for it is not needed. Shown once: until the page is left.
    onLeave((redrawn) => {
      if (!redrawn) confirmedNow = false;
    });
    const copied = h("p", { class: "usa-hint", role: "status" });
    main.append(
      h(
        "div",
        { class: "usa-alert usa-alert--success" },
        h(
          "div",
          { class: "usa-alert__body" },
          h("h2", { class: "usa-alert__heading" }, t("manage_alerts.confirmed_title")),
          h("p", { class: "usa-alert__text" }, t("manage_alerts.confirmed_token")),
          h("p", {}, h("code", { class: "credential-value", id: "manage-token-value" }, manageToken)),
          h("p", { class: "usa-alert__text" }, t("manage_alerts.confirmed_keep")),
        ),
      ),
      h("div", { class: "portal-actions" }, copyButton(manageToken, t("manage_alerts.copy"), copied, { copied: t("tip.copied"), failed: t("manage_alerts.copy_failed") })),
      copied,
      summary,
      shown,
    );
  } else {
    main.append(summary, form, shown);
  }
  const headers = () => ({ "X-Subscription-Token": manageToken.trim() });
  const load = async () => {
    if (!manageToken.trim()) {
      showErrors(form, summary, [{ field: "manage-token", message: t("manage_alerts.error_token") }]);
      return;
    }
    const outcome = await attempt(() => community().GET("/v1/subscriptions/mine", { headers: headers() }));
    if (!outcome.ok) {
      if (outcome.failure.status === 401) showErrors(form, summary, [{ field: "manage-token", message: t("manage_alerts.error_unknown") }]);
      else shown.replaceChildren(failureBox(outcome.failure, () => void load()));
      return;
    }
    showErrors(form, summary, []);
    const s = outcome.data;
    const end = h("button", { type: "button", class: "usa-button usa-button--secondary" }, t("manage_alerts.end"));
    end.addEventListener("click", () => {
      void (async () => {
        const ended = await attempt(() => community().DELETE("/v1/subscriptions/mine", { headers: headers() }));
        if (!ended.ok) {
          shown.append(failureBox(ended.failure));
          return;
        }
        manageToken = "";
        navigate("/alerts/unsubscribed");
      })();
    });
    shown.replaceChildren(
      h("h2", {}, t("manage_alerts.yours")),
      h(
        "dl",
        { class: "portal-details" },
        h("dt", {}, t("alerts.contact_shown")),
        h("dd", {}, s.contact_hint),
        h("dt", {}, t("alerts.categories")),
        h("dd", {}, s.categories.map((c) => t(`alerts.category_${c}` as "alerts.category_crime")).join(", ")),
        h("dt", {}, t("alerts.language")),
        h("dd", { lang: s.language === "es" ? "es" : "en" }, s.language === "es" ? "Español" : "English"),
      ),
      end,
    );
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void load();
  });
  if (manageToken) void load();
}

export function alertsUnsubscribePage(main: HTMLElement): void {
  main.append(h("h1", {}, t("unsubscribe.title")));
  const token = location.hash.replace(/^#/, "");
  const shown = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button", class: "usa-button" }, t("unsubscribe.confirm"));
  button.addEventListener("click", () => {
    void (async () => {
      button.disabled = true;
      const outcome = await attempt(() => community().POST("/v1/subscriptions/unsubscribe", { body: { token } }));
      button.disabled = false;
      if (!outcome.ok) {
        shown.replaceChildren(failureBox(outcome.failure));
        return;
      }
      navigate("/alerts/unsubscribed");
    })();
  });
  main.append(h("p", {}, t(token ? "unsubscribe.intro" : "unsubscribe.no_token")), token ? button : "", shown);
}

export function alertsUnsubscribedPage(main: HTMLElement): void {
  main.append(h("h1", {}, t("unsubscribe.done_title")), h("p", {}, t("unsubscribe.done")));
}

export async function alertPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const outcome = await attempt(() => community().GET("/v1/alerts/{alert_id}", { params: { path: { alert_id: params.id ?? "" } } }));
  if (!outcome.ok) {
    main.append(h("h1", {}, t("alert.title")), failureBox(outcome.failure));
    return;
  }
  const a = outcome.data;
  main.append(
    h("h1", {}, a.title),
    h("p", { class: "usa-intro" }, a.message),
    h(
      "dl",
      { class: "portal-details" },
      h("dt", {}, t("alert.sent")),
      h("dd", {}, formatDate(a.created_at, true)),
      h("dt", {}, t("alert.until")),
      h("dd", {}, formatDate(a.expires_at, true)),
      h("dt", {}, t("alerts.categories")),
      h("dd", {}, t(`alerts.category_${a.category}` as "alerts.category_crime")),
    ),
    h("p", {}, h("a", { href: `/alerts/subscribe?agency=${encodeURIComponent(a.agency)}` }, t("alert.subscribe"))),
  );
}
