/** A lost credential: the resident asks for a one-time code at the registration's email, then exchanges it
 * for a new credential (shown once, like the first). The page never says whether the email is registered. */

import { attempt, registry } from "../api/client";
import { h } from "../dom";
import { errorsFromFailure, showErrors, textField } from "../forms";
import { t } from "../i18n";
import { navigate } from "../router";
import { handover, remember } from "../session";

const draft = { email: "", code: "", sent: false };

export function lostPage(main: HTMLElement): void {
  const summary = h("div", { class: "error-summary-host" });
  const askButton = h("button", { type: "submit", class: "usa-button" }, t("lost.send"));
  const ask = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    textField({ id: "lost-email", label: t("edit.email"), value: draft.email, type: "email", autocomplete: "email", onInput: (v) => (draft.email = v) }),
    askButton,
  );
  const sent = h("div", { role: "status" });
  const redeemButton = h("button", { type: "submit", class: "usa-button" }, t("lost.redeem"));
  const redeem = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    h("h2", {}, t("lost.code_title")),
    textField({ id: "lost-code", label: t("lost.code"), hint: t("lost.code_hint"), value: draft.code, autocomplete: "one-time-code", onInput: (v) => (draft.code = v) }),
    redeemButton,
  );
  const showSent = () =>
    sent.replaceChildren(
      h(
        "div",
        { class: "usa-alert usa-alert--info usa-alert--slim" },
        h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, t("lost.sent"))),
      ),
    );
  if (draft.sent) showSent();

  const sendCode = async () => {
    if (!draft.email.trim()) {
      showErrors(ask, summary, [{ field: "lost-email", message: t("lost.error_email") }]);
      return;
    }
    askButton.disabled = true;
    const outcome = await attempt(() => registry().POST("/v1/credential-resets", { body: { email: draft.email.trim() } }));
    askButton.disabled = false;
    if (!outcome.ok) {
      showErrors(ask, summary, errorsFromFailure(outcome.failure, { "/body/email": "lost-email" }, { "lost-email": t("edit.email") }), outcome.failure.retryable ? () => void sendCode() : undefined);
      return;
    }
    showErrors(ask, summary, []);
    draft.sent = true;
    showSent();
  };
  const exchange = async () => {
    if (!draft.code.trim()) {
      showErrors(redeem, summary, [{ field: "lost-code", message: t("lost.error_code") }]);
      return;
    }
    redeemButton.disabled = true;
    const outcome = await attempt(() => registry().POST("/v1/credential-resets/redeem", { body: { token: draft.code.trim() } }));
    redeemButton.disabled = false;
    if (!outcome.ok) {
      const f = outcome.failure;
      const errors = f.status === 400 || f.status === 422 ? [{ field: "lost-code", message: t("lost.error_invalid") }] : errorsFromFailure(f, {});
      showErrors(redeem, summary, errors, f.retryable ? () => void exchange() : undefined);
      return;
    }
    const { registration_id: id, credential } = outcome.data;
    remember(id, credential);
    handover.created = { id, credential, kind: "replaced" };
    Object.assign(draft, { email: "", code: "", sent: false });
    navigate("/credential");
  };
  ask.addEventListener("submit", (e) => {
    e.preventDefault();
    void sendCode();
  });
  redeem.addEventListener("submit", (e) => {
    e.preventDefault();
    void exchange();
  });
  main.append(h("h1", {}, t("lost.title")), h("p", { class: "usa-intro" }, t("lost.intro")), summary, ask, sent, redeem);
}
