/** Manage a registration: the resident gives the credential they kept; the registration's id is in it. */

import { attempt, bearer, registry } from "../api/client";
import { h } from "../dom";
import { errorsFromFailure, showErrors, textField } from "../forms";
import { t } from "../i18n";
import { navigate } from "../router";
import { registrationIdOf, remember, rememberedRegistrations } from "../session";

const draft = { credential: "" };
/** A sentence for the sign-in page from the page that sent the resident here (e.g. a credential refused). */
export const signInNotice: { text: string | null } = { text: null };

export function signInPage(main: HTMLElement): void {
  const summary = h("div", { class: "error-summary-host" });
  const submit = h("button", { type: "submit", class: "usa-button" }, t("signin.submit"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    textField({
      id: "signin-credential",
      label: t("signin.credential"),
      hint: t("signin.credential_hint"),
      value: draft.credential,
      autocomplete: "off",
      onInput: (v) => (draft.credential = v),
    }),
    submit,
  );
  const send = async () => {
    const credential = draft.credential.trim();
    const id = registrationIdOf(credential);
    if (!id) {
      showErrors(form, summary, [{ field: "signin-credential", message: t("signin.error_format") }]);
      return;
    }
    submit.disabled = true;
    const outcome = await attempt(() =>
      registry().GET("/v1/registrations/{registration_id}", {
        params: { path: { registration_id: id } },
        headers: bearer(credential),
      }),
    );
    submit.disabled = false;
    if (!outcome.ok) {
      const f = outcome.failure;
      const errors =
        f.status === 401 || f.status === 404
          ? [{ field: "signin-credential", message: t("signin.error_refused") }]
          : errorsFromFailure(f, {});
      showErrors(form, summary, errors, f.retryable ? () => void send() : undefined);
      return;
    }
    remember(id, credential);
    draft.credential = "";
    navigate(`/registrations/${id}`);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
  const notice = signInNotice.text;
  signInNotice.text = null;
  main.append(
    h("h1", {}, t("signin.title")),
    notice
      ? h(
          "div",
          { class: "usa-alert usa-alert--info usa-alert--slim" },
          h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, notice)),
        )
      : "",
    h("p", { class: "usa-intro" }, t("signin.intro")),
    heldBox(),
    summary,
    form,
    h("p", {}, t("signin.lost"), " ", h("a", { href: "/lost" }, t("signin.lost_link"))),
  );
}

/** The way on to the registrations this tab still holds the credential of (the credential itself is not shown). */
function heldBox(): HTMLElement | string {
  const held = rememberedRegistrations();
  if (!held.length) return "";
  return h(
    "div",
    { class: "usa-alert usa-alert--info usa-alert--slim" },
    h(
      "div",
      { class: "usa-alert__body" },
      h("p", { class: "usa-alert__text" }, t("signin.held")),
      h(
        "ul",
        { class: "usa-list usa-list--unstyled" },
        held.map((id, i) =>
          h("li", {}, h("a", { href: `/registrations/${id}` }, t("credential.continue"), held.length > 1 ? ` (${i + 1})` : "")),
        ),
      ),
    ),
  );
}
