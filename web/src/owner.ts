/** What every page of a registration shares: the credential from this tab, the registration read with it, and
 * what to do when either is missing (back to sign-in) or the service does not answer (say so, offer a retry). */

import { attempt, bearer, registry, type Failure, type Registration } from "./api/client";
import { h } from "./dom";
import { errorNodes, errorsFromFailure } from "./forms";
import { t } from "./i18n";
import { navigate, rerender } from "./router";
import { credentialFor, forget } from "./session";
import { signInNotice } from "./pages/signin";

export interface Owned {
  id: string;
  credential: string;
  registration: Registration;
}

export function credentialOrSignIn(id: string): string | null {
  const credential = credentialFor(id);
  if (!credential) {
    signInNotice.text = t("signin.needed");
    navigate("/sign-in", true);
  }
  return credential;
}

/** Sends the resident to sign in again when the credential was refused; true when it did. */
export function refused(id: string, failure: Failure): boolean {
  if (failure.status !== 401) return false;
  forget(id);
  signInNotice.text = t("signin.refused");
  navigate("/sign-in", true);
  return true;
}

export async function loadOwned(main: HTMLElement, id: string): Promise<Owned | null> {
  const credential = credentialOrSignIn(id);
  if (!credential) return null;
  const outcome = await attempt(() =>
    registry().GET("/v1/registrations/{registration_id}", {
      params: { path: { registration_id: id } },
      headers: bearer(credential),
    }),
  );
  if (!outcome.ok) {
    if (refused(id, outcome.failure)) return null;
    main.append(h("h1", {}, t("registration.title")), failureBox(outcome.failure, rerender));
    return null;
  }
  return { id, credential, registration: outcome.data };
}

/** A failure that belongs to no field: plain words, and a retry when trying again may help. */
export function failureBox(failure: Failure, retry?: () => void): HTMLElement {
  return h(
    "div",
    { class: "usa-alert usa-alert--error", role: "alert" },
    h(
      "div",
      { class: "usa-alert__body" },
      errorsFromFailure(failure, {}).map((e) => h("p", { class: "usa-alert__text" }, ...errorNodes(e))),
      failure.retryable && retry
        ? h("button", { type: "button", class: "usa-button usa-button--outline", onclick: retry }, t("errors.retry"))
        : null,
    ),
  );
}
