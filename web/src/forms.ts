/** Form fields and the error pattern every form uses (GOV.UK / USWDS): the message at the field, an error
 * summary at the top linking to each field, announced and focused; what was typed stays where it was. */

import type { Failure, InvalidParam } from "./api/client";
import { focus, h } from "./dom";
import { formatNumber, t, type MessageKey } from "./i18n";

export interface FieldError {
  field: string | null; // the id of the input, or null for a problem with no field of its own
  message: string;
  /** The service's own words (English), shown after `message` in parentheses when its code is not one the
   * portal words itself: they are the only place that says what exactly to change. */
  said?: string;
}

/** The message as plain text (for a status line or a sentence it goes into). */
export function errorText(e: FieldError): string {
  return e.said ? `${e.message} (${e.said})` : e.message;
}

/** The message as the page shows it: the service's English words marked as English, so that a screen reader
 * reading a Spanish page pronounces them as English (WCAG 3.1.2). */
export function errorNodes(e: FieldError): (string | Node)[] {
  return e.said ? [`${e.message} (`, h("span", { lang: "en" }, e.said), ")"] : [e.message];
}

interface TextFieldOptions {
  id: string;
  label: string;
  hint?: string;
  value: string;
  onInput: (value: string) => void;
  type?: string;
  autocomplete?: string;
  inputmode?: string;
  width?: string;
  optional?: boolean;
}

export function textField(o: TextFieldOptions): HTMLElement {
  const hintId = o.hint ? `${o.id}-hint` : null;
  const input = h("input", {
    class: `usa-input${o.width ? ` usa-input--${o.width}` : ""}`,
    id: o.id,
    name: o.id,
    type: o.type ?? "text",
    autocomplete: o.autocomplete ?? null,
    inputmode: o.inputmode ?? null,
    spellcheck: o.type === "email" ? "false" : null,
    "aria-describedby": hintId,
  });
  input.value = o.value;
  input.addEventListener("input", () => o.onInput(input.value));
  return h(
    "div",
    { class: "usa-form-group", "data-field": o.id },
    h(
      "label",
      { class: "usa-label", for: o.id },
      o.label,
      o.optional ? h("span", { class: "usa-hint" }, ` ${t("form.optional")}`) : null,
    ),
    o.hint ? h("div", { class: "usa-hint", id: hintId }, o.hint) : null,
    input,
  );
}

/** The longest name the contract takes (ContactIn.name): a longer one is refused at its field before sending. */
export const NAME_MAX = 200;

/** Whether an email as typed has the shape of one: a name, an @ and a domain (the service checks it again). */
export function emailLooksRight(value: string): boolean {
  const v = value.trim();
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v) && v.length <= 254;
}

/** Whether a phone number as typed has the shape of one: 7 to 15 digits and nothing but the signs people write
 * them with, and an extension (the service checks it again). */
export function phoneLooksRight(value: string): boolean {
  const number = value.trim().replace(/\s*(ext\.?|x)\s*\d+$/i, "");
  const digits = number.replace(/\D/g, "").length;
  return /^\+?[\d\s().\-/]+$/.test(number) && digits >= 7 && digits <= 15;
}

/** What is wrong with "an email or a phone" as typed in one field, in the resident's words: by what was meant. */
export function contactProblem(value: string): "register.error_email" | "register.error_phone" | null {
  if (value.includes("@")) return emailLooksRight(value) ? null : "register.error_email";
  return phoneLooksRight(value) ? null : "register.error_phone";
}

/** Clears every error the form shows (before a new attempt). */
export function clearErrors(form: HTMLElement): void {
  form.querySelectorAll(".usa-form-group--error").forEach((g) => g.classList.remove("usa-form-group--error"));
  form.querySelectorAll(".usa-error-message[data-generated]").forEach((m) => m.remove());
  form.querySelectorAll("[aria-invalid]").forEach((i) => {
    i.removeAttribute("aria-invalid");
    const described = (i.getAttribute("aria-describedby") ?? "")
      .split(" ")
      .filter((x) => x && !x.endsWith("-error"))
      .join(" ");
    if (described) i.setAttribute("aria-describedby", described);
    else i.removeAttribute("aria-describedby");
  });
  form.querySelectorAll(".usa-input--error").forEach((i) => i.classList.remove("usa-input--error"));
}

/** Shows each error at its field and in a summary at the top of `summaryHost`, announced and focused. */
export function showErrors(
  form: HTMLElement,
  summaryHost: HTMLElement,
  errors: FieldError[],
  retry?: () => void,
): void {
  clearErrors(form);
  summaryHost.replaceChildren();
  if (!errors.length) return;
  for (const e of errors) {
    if (!e.field) continue;
    const group = form.querySelector<HTMLElement>(`[data-field="${e.field}"]`);
    const input = form.querySelector<HTMLElement>(`#${CSS.escape(e.field)}`);
    if (!group || !input) continue;
    group.classList.add("usa-form-group--error");
    const messageId = `${e.field}-error`;
    const existing = group.querySelector<HTMLElement>(`#${CSS.escape(messageId)}`);
    const message =
      existing ?? h("span", { class: "usa-error-message", id: messageId, "data-generated": "true" });
    if (existing) message.append(" ", ...errorNodes(e));
    else message.replaceChildren(...errorNodes(e));
    if (!existing) {
      const label = group.querySelector("legend, label.usa-label");
      const after = group.querySelector(".usa-hint:not(label .usa-hint)") ?? label;
      if (after) after.after(message);
      else group.prepend(message); // a lone checkbox: the message above it
    }
    if (input.matches("input.usa-input, select, textarea")) input.classList.add("usa-input--error");
    input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
    if (!described.includes(messageId)) input.setAttribute("aria-describedby", [...described, messageId].join(" "));
  }
  const summary = errorSummary(errors, retry);
  summaryHost.append(summary);
  focus(summary);
}

export function errorSummary(errors: FieldError[], retry?: () => void): HTMLElement {
  const headingId = "error-summary-heading";
  return h(
    "div",
    { class: "usa-alert usa-alert--error error-summary", role: "alert", "aria-labelledby": headingId },
    h(
      "div",
      { class: "usa-alert__body" },
      h("h2", { class: "usa-alert__heading", id: headingId }, t("errors.summary_title")),
      h(
        "ul",
        { class: "usa-list" },
        errors.map((e) =>
          h(
            "li",
            {},
            e.field
              ? h(
                  "a",
                  {
                    href: `#${e.field}`,
                    "data-focus": e.field,
                    onclick: (ev: Event) => {
                      ev.preventDefault();
                      const target = document.getElementById(e.field ?? "");
                      target?.focus();
                      target?.scrollIntoView({ block: "center" });
                    },
                  },
                  ...errorNodes(e),
                )
              : errorNodes(e),
          ),
        ),
      ),
      retry
        ? h("button", { type: "button", class: "usa-button usa-button--outline", onclick: retry }, t("errors.retry"))
        : null,
    ),
  );
}

/** Which field a JSON pointer names: the longest pointer prefix the form maps, or none. */
export function fieldForPointer(pointer: string, fields: Record<string, string>): string | null {
  let best: string | null = null;
  let bestLength = -1;
  for (const [prefix, field] of Object.entries(fields)) {
    const matches = pointer === prefix || pointer.startsWith(`${prefix}/`);
    if (matches && prefix.length > bestLength) {
      best = field;
      bestLength = prefix.length;
    }
  }
  return best;
}

// The codes of refused members the portal words itself (pydantic's error types and the services' own, see
// shared/errors.py `InvalidParam.code`), each with the params its sentence needs.
const REFUSALS: Record<string, MessageKey> = {
  missing: "refusal.missing",
  string_too_short: "refusal.string_too_short",
  string_too_long: "refusal.string_too_long",
  too_short: "refusal.too_short",
  too_long: "refusal.too_long",
  greater_than_equal: "refusal.greater_than_equal",
  greater_than: "refusal.greater_than",
  less_than_equal: "refusal.less_than_equal",
  less_than: "refusal.less_than",
  int_type: "refusal.whole_number",
  int_parsing: "refusal.whole_number",
  int_from_float: "refusal.whole_number",
  float_type: "refusal.number",
  float_parsing: "refusal.number",
  finite_number: "refusal.number",
  string_pattern_mismatch: "refusal.pattern",
  literal_error: "refusal.choice",
  enum: "refusal.choice",
  datetime_type: "refusal.datetime",
  datetime_parsing: "refusal.datetime",
  datetime_from_date_parsing: "refusal.datetime",
  timezone_aware: "refusal.datetime",
  url_type: "refusal.url",
  url_parsing: "refusal.url",
  url_scheme: "refusal.url",
  email_invalid: "refusal.email_invalid",
  phone_invalid: "refusal.phone_invalid",
  text_invalid: "refusal.text_invalid",
  contact_required: "refusal.contact_required",
  unknown_agency: "refusal.unknown_agency",
  outside_jurisdiction: "refusal.outside_jurisdiction",
  not_shared: "refusal.not_shared",
  cursor_invalid: "refusal.cursor_invalid",
  in_future: "refusal.in_future",
  too_old: "refusal.too_old",
};

// Problems with no member of their own, by their type (the last segment of the problem's `type` URI).
const PROBLEM_KINDS: Record<string, MessageKey> = {
  "approval-required": "refusal.kind_approval_required",
  "payload-too-large": "refusal.kind_too_large",
  "unsupported-media-type": "refusal.kind_media_type",
  "media-type-not-accepted": "refusal.kind_media_type",
  "media-type-not-cleanable": "refusal.kind_media_type",
  "media-unreadable": "refusal.kind_media_unreadable",
  "invalid-reset-code": "refusal.kind_code_invalid",
  "invalid-enrolment-code": "refusal.kind_code_invalid",
  gone: "refusal.kind_gone",
  "no-email": "refusal.kind_no_email",
  "subscription-contact-unreadable": "refusal.kind_subscription_unreadable",
  "evidence-integrity": "refusal.kind_evidence_integrity",
};

const PROBLEM_STATUSES: Partial<Record<number, MessageKey>> = {
  401: "errors.unauthorized",
  403: "errors.forbidden",
  404: "errors.not_found",
  412: "errors.changed_elsewhere",
  429: "errors.too_many",
};

/** One refused member in the reader's language, from its code and params, after the field's label. A code the
 * portal does not know is said plainly in the reader's language with the service's own words kept after it
 * (`said`): they alone say what exactly to change, and a Spanish reader is never left with English alone. */
export function refusalMessage(e: InvalidParam, label?: string): Pick<FieldError, "message" | "said"> {
  const key = e.code && Object.hasOwn(REFUSALS, e.code) ? REFUSALS[e.code] : undefined;
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(e.params ?? {})) {
    params[name] = typeof value === "number" ? formatNumber(value, 6) : String(value);
  }
  // A sentence whose limit did not come with the code would show its placeholder: said plainly instead. Asked of
  // the sentence's own placeholders, not of the worded text, which may hold braces of the params' (a name).
  const needs = key ? [...t(key).matchAll(/\{(\w+)\}/g)].map((m) => m[1]!) : [];
  const known = key !== undefined && needs.every((name) => Object.hasOwn(params, name));
  const sentence = known ? t(key, params) : t("refusal.other");
  return { message: label ? `${label}: ${sentence}` : sentence, ...(known ? {} : { said: e.reason }) };
}

/** The errors to show for a failed call: each invalid member at its field, or one plain sentence; always in the
 * reader's language (see `refusalMessage`). */
export function errorsFromFailure(
  failure: Failure,
  fields: Record<string, string>,
  labels: Record<string, string> = {},
): FieldError[] {
  if (failure.status === 0) return [{ field: null, message: t("errors.network") }];
  if (failure.status === 503) return [{ field: null, message: t("errors.unavailable") }];
  // An id in the page's own address that is not even of an id's form (a link cut short or mistyped, in an SMS):
  // for the person, the same as one that does not exist, not the service's words about UUIDs.
  if (failure.errors.length && failure.errors.every((e) => e.pointer.startsWith("/path/")))
    return [{ field: null, message: t("errors.not_found") }];
  if (failure.errors.length) {
    return failure.errors.map((e) => {
      const field = fieldForPointer(e.pointer, fields);
      return { field, ...refusalMessage(e, field ? labels[field] : undefined) };
    });
  }
  const key = (failure.kind && Object.hasOwn(PROBLEM_KINDS, failure.kind) ? PROBLEM_KINDS[failure.kind] : undefined) ?? PROBLEM_STATUSES[failure.status];
  if (key) return [{ field: null, message: t(key) }];
  if (!failure.detail) return [{ field: null, message: t("errors.generic") }];
  return [{ field: null, message: t(failure.status === 409 ? "refusal.conflict" : "refusal.problem"), said: failure.detail }];
}

/** The first error of a failed call as plain text, for a status line (see `errorsFromFailure`). */
export function failureText(failure: Failure): string {
  const first = errorsFromFailure(failure, {})[0];
  return first ? errorText(first) : t("errors.generic");
}
