/** Live sharing: the owner opens a window for chosen agencies and a limited time (at most 24 hours), sees the
 * open and past windows, and closes one now. Only cameras whose live mode allows it join a window. The edge agent
 * that carries the video and the record of each viewing are drawn by ./live-site (loaded with this page only). */

import { attempt, bearer, registry } from "../api/client";
import { h } from "../dom";
import { errorsFromFailure, showErrors } from "../forms";
import { formatDate, t, type MessageKey } from "../i18n";
import { failureBox, loadOwned, refused } from "../owner";
import { rerender } from "../router";
import { agencyNames } from "../agencies";

const DURATIONS = [900, 3600, 4 * 3600, 24 * 3600];
const draft = { reason: "alert" as "alert" | "emergency", duration: 3600, agencies: null as Set<string> | null };
const liveNotice: { text: string | null } = { text: null };

export async function livePage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const owned = await loadOwned(main, id);
  if (!owned) return;
  const { credential } = owned;
  const p = owned.registration.properties;
  main.append(h("h1", {}, t("live.title")), h("p", { class: "usa-intro" }, t("live.intro")));
  const windows = await attempt(() =>
    registry().GET("/v1/registrations/{registration_id}/live-windows", {
      params: { path: { registration_id: id } },
      headers: bearer(credential),
    }),
  );
  if (!windows.ok) {
    if (refused(id, windows.failure)) return;
    main.append(failureBox(windows.failure, rerender));
    return;
  }
  const summary = h("div", { class: "error-summary-host" });
  const notice = h("div", { role: "status" });
  if (liveNotice.text) {
    notice.append(
      h("div", { class: "usa-alert usa-alert--success usa-alert--slim" }, h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, liveNotice.text))),
    );
    liveNotice.text = null;
  }
  const names = await agencyNames(p.shared_with);
  const liveCameras = p.cameras.filter((c) => c.live_mode && c.live_mode !== "never");
  main.append(summary, notice, h("p", {}, h("a", { href: `/registrations/${id}` }, t("requests.back"))));
  if (!liveCameras.length) main.append(h("p", { class: "portal-empty" }, t("live.no_cameras")));
  const site = import("./live-site");
  const agentHost = h("section", { class: "portal-site" });
  const viewingsHost = h("section", { class: "portal-site" });
  main.append(agentHost);

  if (draft.agencies === null) draft.agencies = new Set(p.shared_with);
  const chosen = draft.agencies;
  const radio = (name: string, value: string, label: string, checked: boolean, onchange: () => void, first: boolean) => {
    const inputId = first ? name : `${name}-${value}`;
    const input = h("input", { class: "usa-radio__input", type: "radio", id: inputId, name, value, onchange });
    input.checked = checked;
    return h("div", { class: "usa-radio" }, input, h("label", { class: "usa-radio__label", for: inputId }, label));
  };
  const submit = h("button", { type: "submit", class: "usa-button" }, t("live.open"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    h(
      "fieldset",
      { class: "usa-fieldset usa-form-group", "data-field": "live-reason" },
      h("legend", { class: "usa-legend" }, t("live.reason")),
      radio("live-reason", "alert", t("live.reason_alert"), draft.reason === "alert", () => (draft.reason = "alert"), true),
      radio("live-reason", "emergency", t("live.reason_emergency"), draft.reason === "emergency", () => (draft.reason = "emergency"), false),
    ),
    h(
      "fieldset",
      { class: "usa-fieldset usa-form-group", "data-field": "live-duration" },
      h("legend", { class: "usa-legend" }, t("live.duration")),
      DURATIONS.map((s, i) =>
        radio("live-duration", String(s), t(`live.duration_${s}` as MessageKey), draft.duration === s, () => (draft.duration = s), i === 0),
      ),
    ),
    h(
      "fieldset",
      { class: "usa-fieldset usa-form-group", "data-field": "live-agency-0" },
      h("legend", { class: "usa-legend" }, t("live.agencies")),
      p.shared_with.map((slug, i) => {
        const input = h("input", {
          class: "usa-checkbox__input",
          type: "checkbox",
          id: `live-agency-${i}`,
          value: slug,
          onchange: (e: Event) => ((e.target as HTMLInputElement).checked ? chosen.add(slug) : chosen.delete(slug)),
        });
        input.checked = chosen.has(slug);
        return h("div", { class: "usa-checkbox" }, input, h("label", { class: "usa-checkbox__label", for: input.id }, names.get(slug) ?? slug));
      }),
    ),
    submit,
  );
  const open = async () => {
    if (!chosen.size) {
      showErrors(form, summary, [{ field: "live-agency-0", message: t("live.error_agencies") }]);
      return;
    }
    submit.disabled = true;
    const outcome = await attempt(() =>
      registry().POST("/v1/registrations/{registration_id}/live-windows", {
        params: { path: { registration_id: id } },
        headers: bearer(credential),
        body: { reason: draft.reason, duration_s: draft.duration, agencies: [...chosen] },
      }),
    );
    submit.disabled = false;
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      const f = outcome.failure;
      showErrors(
        form,
        summary,
        errorsFromFailure(f, { "/body/agencies": "live-agency-0", "/body/duration_s": "live-duration", "/body/reason": "live-reason" }),
        f.retryable ? () => void open() : undefined,
      );
      return;
    }
    liveNotice.text = t("live.opened");
    draft.agencies = null;
    rerender();
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void open();
  });
  const close = async (windowId: string) => {
    const outcome = await attempt(() =>
      registry().POST("/v1/registrations/{registration_id}/live-windows/{window_id}/close", {
        params: { path: { registration_id: id, window_id: windowId } },
        headers: bearer(credential),
      }),
    );
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      showErrors(main, summary, errorsFromFailure(outcome.failure, {}), outcome.failure.retryable ? () => void close(windowId) : undefined);
      return;
    }
    liveNotice.text = t("live.closed");
    rerender();
  };
  if (liveCameras.length) main.append(h("h2", {}, t("live.open_title")), h("p", {}, t("live.open_hint")), form);
  main.append(h("h2", {}, t("live.windows")));
  // Before an agent is enrolled, its set-up comes first; once one is, the windows do.
  const filled = site.then(async (m) => {
    if (await m.agentSection(agentHost, id, credential, owned.registration)) viewingsHost.before(agentHost);
    await m.viewingsSection(viewingsHost, id, credential, owned.registration);
  });
  if (!windows.data.length) {
    main.append(h("p", { class: "portal-empty" }, t("live.no_windows")), viewingsHost);
    await filled;
    return;
  }
  main.append(
    h(
      "ul",
      { class: "usa-list usa-list--unstyled portal-windows" },
      windows.data.map((w) =>
        h(
          "li",
          { class: "portal-card" },
          h("p", {}, h("span", { class: "usa-tag" }, t(`live.state_${w.state}` as MessageKey)), " ", t(`live.reason_${w.reason}` as MessageKey)),
          h("p", {}, t("live.window_agencies", { agencies: w.agencies.map((a) => names.get(a) ?? a).join(", ") })),
          h(
            "p",
            {},
            t(w.state === "open" ? "live.window_until" : "live.window_ended", {
              at: formatDate(w.closed_at ?? w.expires_at, true),
            }),
          ),
          w.state === "open"
            ? h("button", { type: "button", class: "usa-button usa-button--secondary", onclick: () => void close(w.id) }, t("live.close"))
            : "",
        ),
      ),
    ),
  );
  main.append(viewingsHost);
  await filled;
}
