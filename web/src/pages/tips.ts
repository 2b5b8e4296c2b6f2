/** Anonymous tips: the tip form (text, an optional place and time, optional photos, video or audio) and the
 * tipster's follow-up page, where the tip code — shown once, when the tip is sent — reads the agency's replies and
 * adds information. No account, and nothing about the tipster is asked for or kept by the page. */

import { agencyChoices, agencyField } from "../agencies";
import { copyButton, focus, h } from "../dom";
import { errorsFromFailure, showErrors, textField } from "../forms";
import { formatDate, t, type MessageKey } from "../i18n";
import { config } from "../config";
import { failureBox } from "../owner";
import { placePicker, type Place } from "../place";
import { onLeave, rerender } from "../router";
import { community, postForm, type TipCreated, type TipsterView } from "./alerts-api";

const draft = { agency: "", text: "", when: "" };
// Where it happened: an address found by the deployment's geocoder, a click on the map, or typed coordinates (the
// registration's picker, with its own state: a tip's place is not the resident's). Only the point is sent.
const where: Place = { address: "", lat: "", lon: "", agencies: null, chosen: null };
// The code of the tip just sent: on this page only, until it is left (never stored by the browser).
let justSent: TipCreated | null = null;
let followCode = "";

function fileField(id: string): { group: HTMLElement; input: HTMLInputElement } {
  const input = h("input", {
    class: "usa-file-input",
    id,
    name: id,
    type: "file",
    multiple: true,
    accept: "image/jpeg,image/png,image/webp,video/mp4,video/quicktime,video/webm,audio/mpeg,audio/mp4,audio/ogg",
    "aria-describedby": `${id}-hint`,
  });
  const group = h(
    "div",
    { class: "usa-form-group", "data-field": id },
    h("label", { class: "usa-label", for: id }, t("tip.media"), h("span", { class: "usa-hint" }, ` ${t("form.optional")}`)),
    h("div", { class: "usa-hint", id: `${id}-hint` }, t("tip.media_hint")),
    input,
  );
  return { group, input };
}

function textArea(id: string, label: string, hint: string, value: string, onInput: (v: string) => void): HTMLElement {
  const area = h("textarea", { class: "usa-textarea", id, name: id, rows: 6, "aria-describedby": `${id}-hint` });
  area.value = value;
  area.addEventListener("input", () => onInput(area.value));
  return h(
    "div",
    { class: "usa-form-group", "data-field": id },
    h("label", { class: "usa-label", for: id }, label),
    h("div", { class: "usa-hint", id: `${id}-hint` }, hint),
    area,
  );
}

const TIP_FIELDS = {
  "/body/agency": "tip-agency",
  "/body/text": "tip-text",
  "/body/lat": "tip-lat",
  "/body/lon": "tip-lon",
  "/body/occurred_at": "tip-when",
  "/body/media": "tip-media",
};

const MEDIA_PROBLEMS: Partial<Record<number, MessageKey>> = {
  413: "tip.error_media_too_large",
  415: "tip.error_media_type",
};

export async function tipPage(main: HTMLElement): Promise<void> {
  main.append(h("h1", {}, t("tip.title")), h("p", { class: "usa-intro" }, t("tip.intro")));
  if (justSent) {
    const sent = justSent;
    const copied = h("p", { class: "usa-hint", role: "status" });
    main.append(
      h(
        "div",
        { class: "usa-alert usa-alert--success", role: "status" },
        h(
          "div",
          { class: "usa-alert__body" },
          h("h2", { class: "usa-alert__heading" }, t("tip.sent_title")),
          h("p", { class: "usa-alert__text" }, t("tip.sent_code")),
          // Wrapped at any character: a phone's screen is narrower than the code.
          h("p", {}, h("code", { class: "credential-value", id: "tip-code" }, sent.code)),
          h("p", { class: "usa-alert__text" }, t("tip.sent_keep")),
        ),
      ),
      h(
        "div",
        { class: "portal-actions" },
        copyButton(sent.code, t("tip.copy"), copied, { copied: t("tip.copied"), failed: t("tip.copy_failed") }),
        h("a", { href: "/tips/follow-up", class: "usa-button usa-button--outline" }, t("tip.follow_link")),
      ),
      copied,
    );
    followCode = sent.code;
    // Shown once: gone when the page is left, not when it is drawn again in the other language.
    onLeave((redrawn) => {
      if (!redrawn) justSent = null;
    });
    return;
  }
  draft.agency ||= new URLSearchParams(location.search).get("agency") ?? "";
  const agencies = await agencyChoices();
  if (!agencies.ok) {
    main.append(failureBox(agencies.failure, rerender));
    return;
  }
  const summary = h("div", { class: "error-summary-host" });
  const media = fileField("tip-media");
  const button = h("button", { type: "submit", class: "usa-button" }, t("tip.send"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    agencyField({
      id: "tip-agency",
      label: t("tip.agency"),
      hint: t("tip.agency_hint"),
      choose: t("tip.agency_choose"),
      choices: agencies.choices,
      value: draft.agency,
      onChange: (slug) => (draft.agency = slug),
    }),
    textArea("tip-text", t("tip.text"), t("tip.text_hint"), draft.text, (v) => (draft.text = v)),
    h(
      "fieldset",
      { class: "usa-fieldset usa-form-group" },
      h("legend", { class: "usa-legend" }, t("tip.place"), h("span", { class: "usa-hint" }, ` ${t("form.optional")}`)),
      placePicker({
        idPrefix: "tip",
        choose: false,
        state: where,
        coverage: false,
        locate: false, // the tipster's own location is not asked for
        hint: config().geocoder_url ? t("tip.place_hint_address") : t("tip.place_hint"),
      }),
    ),
    textField({ id: "tip-when", label: t("tip.when"), hint: t("tip.when_hint"), type: "datetime-local", value: draft.when, onInput: (v) => (draft.when = v), optional: true }),
    media.group,
    h("p", { class: "usa-hint" }, t("tip.privacy")),
    button,
  );
  main.append(summary, form);
  const send = async () => {
    if (!draft.text.trim() || !draft.agency.trim()) {
      showErrors(form, summary, [
        ...(draft.agency.trim() ? [] : [{ field: "tip-agency", message: t("tip.error_agency") }]),
        ...(draft.text.trim() ? [] : [{ field: "tip-text", message: t("tip.error_text") }]),
      ]);
      return;
    }
    const body = new FormData();
    body.append("agency", draft.agency);
    body.append("text", draft.text);
    if (where.lat.trim() || where.lon.trim()) {
      body.append("lat", where.lat.trim().replace(",", "."));
      body.append("lon", where.lon.trim().replace(",", "."));
    }
    if (draft.when) body.append("occurred_at", new Date(draft.when).toISOString());
    for (const file of Array.from(media.input.files ?? [])) body.append("media", file);
    button.disabled = true;
    const outcome = await postForm<TipCreated>("/v1/tips", body);
    button.disabled = false;
    if (!outcome.ok) {
      const errors = errorsFromFailure(outcome.failure, TIP_FIELDS, { "tip-text": t("tip.text"), "tip-media": t("tip.media") });
      // A file of a type not taken, or too much to send: said of the files, in the tipster's words (the service's
      // own sentence lists media types, in English).
      const ofTheFiles = MEDIA_PROBLEMS[outcome.failure.status];
      showErrors(form, summary, ofTheFiles && !outcome.failure.errors.length ? [{ field: "tip-media", message: t(ofTheFiles) }] : errors, outcome.failure.retryable ? () => void send() : undefined);
      return;
    }
    Object.assign(draft, { text: "", when: "" });
    Object.assign(where, { address: "", lat: "", lon: "" });
    justSent = outcome.data;
    main.replaceChildren();
    void tipPage(main);
    // The form is gone: the sentence saying it was sent, with its code, takes the focus and is read out.
    const sentTitle = main.querySelector<HTMLElement>(".usa-alert__heading");
    if (sentTitle) focus(sentTitle);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
}

function conversation(tip: TipsterView): HTMLElement {
  return h(
    "ol",
    { class: "usa-list usa-list--unstyled portal-conversation", "aria-label": t("follow.conversation") },
    tip.messages.map((m) =>
      h(
        "li",
        { class: `portal-message portal-message--${m.author}` },
        h("p", { class: "text-bold" }, m.author === "agency" ? t("follow.from_agency") : t("follow.from_you"), " · ", formatDate(m.created_at, true)),
        h("p", {}, m.body),
        m.media.length ? h("p", { class: "usa-hint" }, t("follow.media", { n: m.media.length })) : null,
      ),
    ),
  );
}

export function tipFollowUpPage(main: HTMLElement): void {
  main.append(h("h1", {}, t("follow.title")), h("p", { class: "usa-intro" }, t("follow.intro")));
  const summary = h("div", { class: "error-summary-host" });
  const shown = h("div", { "aria-live": "polite" });
  const read = h("button", { type: "submit", class: "usa-button" }, t("follow.read"));
  const codeForm = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    textField({ id: "follow-code", label: t("follow.code"), hint: t("follow.code_hint"), value: followCode, autocomplete: "off", onInput: (v) => (followCode = v) }),
    read,
  );
  main.append(summary, codeForm, shown);
  const headers = () => ({ "X-Tip-Code": followCode.trim() });

  const load = async () => {
    if (!followCode.trim()) {
      showErrors(codeForm, summary, [{ field: "follow-code", message: t("follow.error_code") }]);
      return;
    }
    read.disabled = true;
    const outcome = await community().GET("/v1/tips/mine", { headers: headers() }).then(
      (r) => (r.response.ok ? { ok: true as const, data: r.data as TipsterView } : { ok: false as const, status: r.response.status, error: r.error }),
      () => ({ ok: false as const, status: 0, error: null }),
    );
    read.disabled = false;
    if (!outcome.ok) {
      if (outcome.status === 401) showErrors(codeForm, summary, [{ field: "follow-code", message: t("follow.error_unknown") }]);
      else shown.replaceChildren(failureBox({ status: outcome.status, title: "", detail: null, kind: null, errors: [], retryable: outcome.status === 0 || outcome.status >= 500 }, () => void load()));
      return;
    }
    showErrors(codeForm, summary, []);
    const tip = outcome.data;
    const more = { text: "" };
    const addSummary = h("div", { class: "error-summary-host" });
    const media = fileField("follow-media");
    const add = h("button", { type: "submit", class: "usa-button" }, t("follow.add"));
    const addForm = h(
      "form",
      { class: "usa-form usa-form--large", novalidate: true },
      h("h2", {}, t("follow.add_title")),
      textArea("follow-text", t("follow.add_text"), t("tip.text_hint"), "", (v) => (more.text = v)),
      media.group,
      add,
    );
    shown.replaceChildren(
      h("h2", {}, t("follow.state_title")),
      h("p", {}, t(`follow.state_${tip.state}` as "follow.state_new")),
      conversation(tip),
      tip.state === "closed" ? h("p", {}, t("follow.closed")) : h("div", {}, addSummary, addForm),
    );
    addForm.addEventListener("submit", (e) => {
      e.preventDefault();
      void (async () => {
        if (!more.text.trim()) {
          showErrors(addForm, addSummary, [{ field: "follow-text", message: t("tip.error_text") }]);
          return;
        }
        const body = new FormData();
        body.append("text", more.text);
        for (const file of Array.from(media.input.files ?? [])) body.append("media", file);
        add.disabled = true;
        const sent = await postForm("/v1/tips/mine/messages", body, headers());
        add.disabled = false;
        if (!sent.ok) {
          showErrors(addForm, addSummary, errorsFromFailure(sent.failure, { "/body/text": "follow-text", "/body/media": "follow-media" }));
          return;
        }
        await load();
      })();
    });
  };
  codeForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void load();
  });
  if (followCode) void load();
}
