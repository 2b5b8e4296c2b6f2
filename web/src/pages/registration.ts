/** The registration's own page: what is registered, its cameras on the map, and what the resident can do —
 * edit, pause or resume, withdraw, re-confirm, answer footage requests, delete. */

import { attempt, bearer, ifMatch, registry, type Registration } from "../api/client";
import { focus, h } from "../dom";
import { errorsFromFailure, showErrors } from "../forms";
import { formatDate, t, type MessageKey } from "../i18n";
import { createMap } from "../map";
import { failureBox, loadOwned, refused } from "../owner";
import { whenConnected } from "../place";
import { agencyNames } from "../agencies";
import { navigate, onLeave, rerender } from "../router";
import { forget, handover, remember } from "../session";

/** A sentence for the next showing of the page (e.g. "Saved."), announced there. */
export const registrationNotice: { text: string | null } = { text: null };

function row(term: string, value: string): HTMLElement[] {
  return [h("dt", {}, term), h("dd", {}, value)];
}

export async function registrationPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const owned = await loadOwned(main, id);
  if (!owned) return;
  const { credential } = owned;
  let registration: Registration = owned.registration;
  const p = registration.properties;
  const summary = h("div", { class: "error-summary-host" });
  const notice = h("div", { role: "status", class: "portal-notice" });
  // What the last action did (paused, saved…). The page is drawn anew after it and the button pressed is gone:
  // the focus goes to this sentence, so it is read out and the keyboard carries on from here.
  const done = registrationNotice.text
    ? h(
        "div",
        { class: "usa-alert usa-alert--success usa-alert--slim" },
        h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, registrationNotice.text)),
      )
    : null;
  if (done) notice.append(done);
  registrationNotice.text = null;

  const setStatus = async (status: "active" | "paused" | "withdrawn", done: MessageKey) => {
    const outcome = await attempt(() =>
      registry().PATCH("/v1/registrations/{registration_id}", {
        params: { path: { registration_id: id }, header: ifMatch(registration.properties.version) },
        headers: bearer(credential),
        body: { status },
      }),
    );
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      showActionFailure(outcome.failure, () => void setStatus(status, done));
      return;
    }
    registration = outcome.data;
    registrationNotice.text = t(done);
    rerender();
  };
  const reconfirm = async () => {
    const outcome = await attempt(() =>
      registry().POST("/v1/registrations/{registration_id}/confirmation", {
        params: { path: { registration_id: id }, header: ifMatch(registration.properties.version) },
        headers: bearer(credential),
      }),
    );
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      showActionFailure(outcome.failure, () => void reconfirm());
      return;
    }
    registrationNotice.text = t("registration.reconfirmed");
    rerender();
  };
  const rotate = async () => {
    const outcome = await attempt(() =>
      registry().POST("/v1/registrations/{registration_id}/credential", {
        params: { path: { registration_id: id } },
        headers: bearer(credential),
      }),
    );
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      showActionFailure(outcome.failure, () => void rotate());
      return;
    }
    remember(id, outcome.data.credential);
    handover.created = { id, credential: outcome.data.credential, kind: "replaced" };
    navigate("/credential");
  };
  const showActionFailure = (failure: Parameters<typeof failureBox>[0], retry: () => void) => {
    const errors =
      failure.status === 412
        ? [{ field: null, message: t("errors.changed_elsewhere") }]
        : errorsFromFailure(failure, {});
    showErrors(main, summary, errors, failure.retryable ? retry : failure.status === 412 ? rerender : undefined);
  };

  // The program's name and jurisdiction are public: shown beside the cameras.
  const agency = await attempt(() => registry().GET("/v1/agencies/{slug}", { params: { path: { slug: p.agency } } }));
  const program = agency.ok ? agency.data : null;
  const names = await agencyNames(p.shared_with);
  const statusKey = `status.${p.status}` as MessageKey;
  const mapBox = h("div", { class: "portal-map-box" });
  const actions = h(
    "div",
    { class: "portal-actions" },
    h("a", { class: "usa-button", href: `/registrations/${id}/requests` }, t("registration.requests")),
    h("a", { class: "usa-button usa-button--outline", href: `/registrations/${id}/edit` }, t("registration.edit")),
    h("a", { class: "usa-button usa-button--outline", href: `/registrations/${id}/sharing` }, t("registration.sharing")),
    h("a", { class: "usa-button usa-button--outline", href: `/registrations/${id}/live` }, t("registration.live")),
    h("a", { class: "usa-button usa-button--outline", href: `/registrations/${id}/access` }, t("access.link")),
    p.status === "active"
      ? h(
          "button",
          { type: "button", class: "usa-button usa-button--outline", onclick: () => void setStatus("paused", "registration.paused") },
          t("registration.pause"),
        )
      : h(
          "button",
          { type: "button", class: "usa-button usa-button--outline", onclick: () => void setStatus("active", "registration.resumed") },
          t("registration.resume"),
        ),
    p.status !== "withdrawn"
      ? h(
          "button",
          { type: "button", class: "usa-button usa-button--outline", onclick: () => void setStatus("withdrawn", "registration.withdrawn") },
          t("registration.withdraw"),
        )
      : null,
    h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void reconfirm() }, t("registration.reconfirm")),
    h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void rotate() }, t("registration.rotate")),
  );

  main.append(
    h("h1", {}, t("registration.title")),
    summary,
    notice,
    h(
      "p",
      {},
      t("registration.status"),
      " ",
      h("span", { class: `usa-tag portal-status portal-status--${p.status}` }, t(statusKey)),
    ),
    h("p", { class: "usa-hint" }, t(`status.${p.status}_explain` as MessageKey)),
    h(
      "dl",
      { class: "portal-details" },
      row(t("registration.program"), program?.properties.name ?? p.agency),
      row(t("register.name"), p.contact.name ?? "—"),
      row(t("edit.email"), p.contact.email ?? "—"),
      row(t("edit.phone"), p.contact.phone ?? "—"),
      row(t("registration.cameras"), String(p.cameras.length)),
      row(t("registration.shared_with"), p.shared_with.map((slug) => names.get(slug) ?? slug).join(", ")),
      row(t("registration.registered"), formatDate(p.created_at)),
      row(t("registration.reconfirm_due"), formatDate(p.reconfirm_due_at)),
    ),
    mapBox,
    h("h2", {}, t("registration.cameras_title")),
    h(
      "ul",
      { class: "usa-list usa-list--unstyled portal-cameras" },
      p.cameras.map((c, i) => {
        const facts = [
          c.label ?? null,
          c.direction_deg != null ? t("registration.camera_facing", { deg: c.direction_deg, fov: c.fov_deg ?? "—" }) : null,
          c.retention_days != null ? t("registration.camera_days", { days: c.retention_days }) : null,
        ].filter((x): x is string => !!x);
        return h(
          "li",
          {},
          h("strong", {}, t("registration.camera_n", { n: i + 1 })),
          ` — ${facts.length ? facts.join(", ") : t("registration.camera_no_details")} `,
          h(
            "a",
            { href: `/registrations/${id}/cameras/${c.id}`, "aria-label": `${t("registration.camera_change")}: ${t("registration.camera_n", { n: i + 1 })}` },
            t("registration.camera_change"),
          ),
        );
      }),
    ),
    h("a", { class: "usa-button usa-button--outline", href: `/registrations/${id}/cameras/new` }, t("registration.camera_add")),
    h("h2", {}, t("registration.actions")),
    actions,
    h("h2", {}, t("registration.leave_title")),
    h("p", {}, t("registration.leave_text")),
    h(
      "div",
      { class: "portal-actions" },
      h("a", { class: "usa-button usa-button--secondary", href: `/registrations/${id}/delete` }, t("registration.delete")),
      h(
        "button",
        {
          type: "button",
          class: "usa-button usa-button--unstyled",
          onclick: () => {
            forget(id);
            navigate("/");
          },
        },
        t("registration.sign_out"),
      ),
    ),
  );
  if (done) focus(done);
  whenConnected(mapBox, () => {
    const map = createMap(mapBox);
    onLeave(() => map.destroy());
    const [lon, lat] = registration.geometry.coordinates as [number, number];
    if (program) map.showAgencies([program], false);
    map.setPin(lat, lon);
    map.showCameras(registration.properties.cameras);
  });
}
