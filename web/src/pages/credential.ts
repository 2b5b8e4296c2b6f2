/** The credential, shown once: copy it, download it, and read in plain words why it matters. It is kept for
 * this tab (sessionStorage) so the resident can go on to their registration's page; it is never shown again. */

import { copyButton, h } from "../dom";
import { t } from "../i18n";
import { navigate, onLeave } from "../router";
import { handover } from "../session";
import { hasCarriedEdits } from "./edit";

export function credentialPage(main: HTMLElement): void {
  const created = handover.created;
  if (!created) {
    navigate("/sign-in", true);
    return;
  }
  const registeredBefore = handover.registeredBefore;
  // Leaving this page ends the one showing (drawn again in the other language, it stays).
  onLeave((redrawn) => {
    if (redrawn) return;
    handover.created = null;
    handover.registeredBefore = false;
  });
  const status = h("p", { class: "usa-hint credential-status", role: "status" });
  const copy = copyButton(created.credential, t("credential.copy"), status, {
    copied: t("credential.copied"),
    failed: t("credential.copy_failed"),
  });
  const download = h(
    "button",
    {
      type: "button",
      class: "usa-button usa-button--outline",
      onclick: () => {
        const text = [
          t("credential.file_heading"),
          "",
          `${t("credential.file_id")}: ${created.id}`,
          `${t("credential.file_credential")}: ${created.credential}`,
          "",
          t("credential.file_explain"),
          "",
        ].join("\n");
        const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
        const link = h("a", { href: url, download: "canvass-credential.txt", class: "display-none" });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
        status.textContent = t("credential.downloaded");
      },
    },
    t("credential.download"),
  );
  main.append(
    h(
      "h1",
      {},
      created.kind === "registered" ? t("credential.title") : created.kind === "advocate" ? t("credential.title_advocate") : t("credential.title_new"),
    ),
    registeredBefore ? registeredBeforeNotice(created.kind === "advocate") : "",
    created.kind === "advocate" ? h("p", {}, t("credential.advocate_read")) : "",
    created.kind === "replaced" ? h("p", {}, t("credential.old_stopped")) : "",
    h(
      "div",
      { class: "usa-alert usa-alert--warning" },
      h(
        "div",
        { class: "usa-alert__body" },
        h("h2", { class: "usa-alert__heading" }, t("credential.once_title")),
        h("p", { class: "usa-alert__text" }, t("credential.once_text")),
      ),
    ),
    h("p", {}, t("credential.what")),
    h(
      "div",
      { class: "credential-box" },
      h("p", { class: "usa-label", id: "credential-label" }, t("credential.label")),
      h("code", { class: "credential-value", id: "credential-value", "aria-labelledby": "credential-label" }, created.credential),
    ),
    h("div", { class: "portal-actions" }, copy, download),
    status,
    h("p", {}, t("credential.lost")),
    created.kind === "advocate"
      ? h("a", { class: "usa-button usa-button--big", href: "/register" }, t("credential.advocate_next"))
      : registeredBefore
        ? h(
            "div",
            { class: "portal-actions" },
            // The changes not sent wait on the edit page (name, email, phone), or on the registration's own page
            // (the place, the cameras).
            h(
              "a",
              {
                class: "usa-button usa-button--big",
                href: hasCarriedEdits(created.id) ? `/registrations/${created.id}/edit` : `/registrations/${created.id}`,
              },
              t("register.change_details"),
            ),
            h("a", { class: "usa-button usa-button--outline", href: `/registrations/${created.id}` }, t("credential.continue")),
          )
        : h("a", { class: "usa-button usa-button--big", href: `/registrations/${created.id}` }, t("credential.continue")),
  );
}

/** Why the registration has the details first sent, not the ones on the form when "Register" was pressed. */
function registeredBeforeNotice(advocate: boolean): HTMLElement {
  return h(
    "div",
    { class: "usa-alert usa-alert--info", role: "status" },
    h(
      "div",
      { class: "usa-alert__body" },
      h("h2", { class: "usa-alert__heading" }, t("register.already_title")),
      h("p", { class: "usa-alert__text" }, t(advocate ? "register.already_advocate" : "register.already_text")),
    ),
  );
}

/** An advocate registered an owner who has an email: the credential went to the owner, never to this page. */
export function registeredByEmailPage(main: HTMLElement): void {
  const registeredBefore = handover.registeredBefore;
  onLeave((redrawn) => {
    if (!redrawn) handover.registeredBefore = false;
  });
  main.append(
    h("h1", {}, t("credential.title_advocate")),
    registeredBefore ? registeredBeforeNotice(true) : "",
    h("p", { class: "usa-intro" }, t("credential.emailed")),
    h("a", { class: "usa-button", href: "/register" }, t("credential.advocate_next")),
  );
}
