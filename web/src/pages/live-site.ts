/** The owner's side of live video, on their live-sharing page: the edge agent that carries a camera's video to the
 * relay (a one-time code to enrol it, with plain instructions; each enrolled agent, whether it is connected now,
 * and its revocation), and each time an agency watched one of their cameras (the agency, the camera, when and how
 * long — never who). Loaded with the live-sharing page only. */

import { attempt, bearer, registry, type Registration } from "../api/client";
import type { components } from "../api/registry";
import { config } from "../config";
import { focus, h } from "../dom";
import { errorsFromFailure, showErrors } from "../forms";
import { formatDate, formatDuration, t } from "../i18n";
import { failureBox, refused } from "../owner";
import { agentPresence, agentRelayUrl, ownerViewings, type OwnerViewing } from "../relay";
import { rerender } from "../router";
import { agencyNames } from "../agencies";

type EnrolmentCode = components["schemas"]["EnrolmentCode"];
type EdgeAgent = components["schemas"]["EdgeAgentOut"];

// The code is shown until it expires, across the page's redraws (a window opened, an agent revoked); never stored.
const shown = new Map<string, EnrolmentCode>();
const siteNotice: { text: string | null } = { text: null };

export function cameraName(registration: Registration, cameraId: string): string {
  const cameras = registration.properties.cameras;
  const i = cameras.findIndex((c) => c.id === cameraId);
  const c = cameras[i];
  return c?.label || t("registration.camera_n", { n: i >= 0 ? i + 1 : "?" });
}

/** The agent's configuration file, ready but for each camera's local address and password (which only the owner
 * knows, and which never leave the box). */
function configFile(registration: Registration): string {
  const cameras = registration.properties.cameras.filter((c) => c.live_mode && c.live_mode !== "never");
  const lines = [
    `registry_url = "${config().registry_api_url}"`,
    `relay_url = "${agentRelayUrl()}"`,
    "",
  ];
  for (const c of cameras) {
    lines.push(
      `# ${cameraName(registration, c.id).replace(/[\r\n]+/g, " ")}`,
      "[[cameras]]",
      `id = "${c.id}"`,
      `rtsp_url = "rtsp://192.168.1.20:554/stream1"  # ${t("site.config_rtsp_hint")}`,
      `username = "${t("site.config_user")}"`,
      `password = "${t("site.config_password")}"`,
      "",
    );
  }
  return lines.join("\n");
}

/** The agent from this portal (the package of this deployment), or from a copy of the Canvass source. */
function installCommand(): string {
  const pkg = config().edge_package;
  const agent = pkg ? new URL(pkg, window.location.origin).href : "./edge";
  return `sudo apt install ffmpeg pipx && pipx install ${agent}`;
}

function command(text: string): HTMLElement {
  return h("pre", { class: "portal-command" }, h("code", {}, text));
}

function codePanel(code: EnrolmentCode, registration: Registration): HTMLElement {
  const file = "canvass-edge.toml";
  const panel = h(
    "section",
    { class: "portal-card portal-enrol", "aria-labelledby": "enrol-title" },
    h("h3", { id: "enrol-title" }, t("site.code_title")),
    h("p", {}, h("code", { class: "credential-value portal-enrol__code" }, code.code)),
    h("p", { class: "usa-hint" }, t("site.code_expires", { at: formatDate(code.expires_at, true) })),
    h(
      "ol",
      { class: "usa-list portal-steps" },
      h("li", {}, h("p", {}, t("site.step_install")), command(installCommand())),
      h("li", {}, h("p", {}, t("site.step_config", { file })), command(configFile(registration))),
      h("li", {}, h("p", {}, t("site.step_protect")), command(`chmod 600 ${file}`)),
      h("li", {}, h("p", {}, t("site.step_enrol")), command(`canvass-edge enrol --code ${code.code} --config ${file}`)),
      h("li", {}, h("p", {}, t("site.step_run")), command(`canvass-edge run --config ${file}`)),
    ),
  );
  return panel;
}

/** What the agent is, and what it does and does not send, said before anyone installs it: behind a disclosure
 * under the section's essential sentence and first action (on a phone, they come first). */
function promises(): HTMLElement {
  return h(
    "details",
    { class: "portal-more portal-promises" },
    h("summary", {}, t("site.more")),
    h("p", {}, t("site.intro")),
    h("h3", {}, t("site.sends_title")),
    h("ul", { class: "usa-list" }, h("li", {}, t("site.sends_1")), h("li", {}, t("site.sends_2"))),
    h("h3", {}, t("site.never_title")),
    h("ul", { class: "usa-list" }, h("li", {}, t("site.never_1")), h("li", {}, t("site.never_2")), h("li", {}, t("site.never_3"))),
  );
}

/** The edge agent section: what it is, its code and instructions, the enrolled agents. True when an agent is
 * enrolled (the section is then set-up done, and goes after the windows). */
export async function agentSection(host: HTMLElement, id: string, credential: string, registration: Registration): Promise<boolean> {
  const summary = h("div", { class: "error-summary-host" });
  const notice = h("div", { role: "status" });
  if (siteNotice.text) {
    notice.append(
      h("div", { class: "usa-alert usa-alert--success usa-alert--slim" }, h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, siteNotice.text))),
    );
    siteNotice.text = null;
  }
  host.append(h("h2", {}, t("site.title")), h("p", {}, t("site.lead")), summary, notice);
  const [agents, presence] = await Promise.all([
    attempt(() =>
      registry().GET("/v1/registrations/{registration_id}/edge-agents", {
        params: { path: { registration_id: id } },
        headers: bearer(credential),
      }),
    ),
    agentPresence(credential, id),
  ]);
  if (!agents.ok) {
    if (refused(id, agents.failure)) return false;
    host.append(failureBox(agents.failure, rerender));
    return false;
  }
  const connected = new Set(presence.ok && presence.data.online && presence.data.agent_id ? [presence.data.agent_id] : []);
  const active = agents.data.filter((a) => !a.revoked_at);

  const codeHost = h("div", {});
  const existing = shown.get(id);
  if (existing && Date.parse(existing.expires_at) > Date.now()) codeHost.append(codePanel(existing, registration));
  const ask = h("button", { type: "button", class: "usa-button" }, t(active.length ? "site.code_another" : "site.code_get"));
  const getCode = async () => {
    ask.disabled = true;
    const outcome = await attempt(() =>
      registry().POST("/v1/registrations/{registration_id}/edge-agents", {
        params: { path: { registration_id: id } },
        headers: bearer(credential),
      }),
    );
    ask.disabled = false;
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      showErrors(host, summary, errorsFromFailure(outcome.failure, {}), outcome.failure.retryable ? () => void getCode() : undefined);
      return;
    }
    shown.set(id, outcome.data);
    const panel = codePanel(outcome.data, registration);
    codeHost.replaceChildren(panel);
    focus(panel.querySelector("h3")!);
  };
  ask.addEventListener("click", () => void getCode());

  const revoke = async (agent: EdgeAgent, button: HTMLButtonElement) => {
    button.disabled = true;
    const outcome = await attempt(() =>
      registry().DELETE("/v1/registrations/{registration_id}/edge-agents/{agent_id}", {
        params: { path: { registration_id: id, agent_id: agent.id } },
        headers: bearer(credential),
      }),
    );
    button.disabled = false;
    if (!outcome.ok) {
      if (refused(id, outcome.failure)) return;
      showErrors(host, summary, errorsFromFailure(outcome.failure, {}), outcome.failure.retryable ? () => void revoke(agent, button) : undefined);
      return;
    }
    siteNotice.text = t("site.revoked");
    rerender();
  };

  const status = (a: EdgeAgent): HTMLElement => {
    if (a.revoked_at) return h("span", { class: "usa-tag portal-tag--off" }, t("site.agent_revoked"));
    if (!presence.ok) return h("span", { class: "usa-tag portal-tag--off" }, t("site.agent_unknown"));
    return connected.has(a.id)
      ? h("span", { class: "usa-tag portal-tag--on" }, t("site.agent_online"))
      : h("span", { class: "usa-tag portal-tag--off" }, t("site.agent_offline"));
  };
  const card = (a: EdgeAgent, n: number): HTMLElement => {
    const confirmHost = h("div", {});
    const start = h("button", { type: "button", class: "usa-button usa-button--secondary" }, t("site.revoke"));
    start.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "usa-button usa-button--secondary" }, t("site.revoke_yes"));
      const no = h("button", { type: "button", class: "usa-button usa-button--outline" }, t("site.revoke_no"));
      yes.addEventListener("click", () => void revoke(a, yes));
      no.addEventListener("click", () => {
        confirmHost.replaceChildren(start);
        start.focus();
      });
      const question = h("p", {}, t("site.revoke_question"));
      confirmHost.replaceChildren(question, h("div", { class: "portal-actions" }, yes, no));
      yes.focus();
    });
    confirmHost.append(start);
    return h(
      "li",
      { class: "portal-card" },
      h("h3", {}, t("site.agent_n", { n }), " ", status(a)),
      h("p", {}, t("site.agent_enrolled", { at: formatDate(a.created_at, true) })),
      h("p", {}, a.last_seen_at ? t("site.agent_seen", { at: formatDate(a.last_seen_at, true) }) : t("site.agent_never_seen")),
      a.revoked_at ? h("p", {}, t("site.agent_revoked_at", { at: formatDate(a.revoked_at, true) })) : confirmHost,
    );
  };
  // Numbered in the order they were enrolled (a number does not change when another is revoked); the revoked
  // ones are only counted.
  const numbered = agents.data.map((a, i) => ({ a, n: i + 1 })).filter(({ a }) => !a.revoked_at);
  if (numbered.length) {
    host.append(h("ul", { class: "usa-list usa-list--unstyled portal-agents" }, numbered.map(({ a, n }) => card(a, n))));
  } else {
    host.append(h("p", { class: "portal-empty" }, t("site.no_agents")));
  }
  const revokedCount = agents.data.length - numbered.length;
  if (revokedCount) host.append(h("p", { class: "usa-hint" }, t("site.revoked_count", { n: revokedCount })));
  // Whether an agent is connected is said only of agents there are.
  if (!presence.ok && numbered.length) host.append(h("p", { class: "usa-hint" }, t("site.presence_unknown")));
  host.append(codeHost, h("p", {}, ask), promises());
  return numbered.length > 0;
}

/** Each viewing of the owner's cameras, newest first. */
export async function viewingsSection(host: HTMLElement, id: string, credential: string, registration: Registration): Promise<void> {
  host.append(h("h2", { id: "viewings-title" }, t("viewings.title")), h("p", {}, t("viewings.intro")));
  const outcome = await ownerViewings(credential, id);
  if (!outcome.ok) {
    if (refused(id, outcome.failure)) return;
    host.append(failureBox(outcome.failure, rerender));
    return;
  }
  if (!outcome.data.length) {
    host.append(h("p", { class: "portal-empty" }, t("viewings.none")));
    return;
  }
  const names = await agencyNames([...new Set(outcome.data.map((v) => v.agency))]);
  const row = (v: OwnerViewing) =>
    h(
      "tr",
      {},
      h("th", { scope: "row", "data-label": t("viewings.agency") }, names.get(v.agency) ?? v.agency),
      h("td", { "data-label": t("viewings.camera") }, cameraName(registration, v.camera_id)),
      h("td", { "data-label": t("viewings.started") }, formatDate(v.started_at, true)),
      h(
        "td",
        { "data-label": t("viewings.length") },
        v.ended_at === null || v.seconds === null || v.seconds === undefined ? t("viewings.watching_now") : formatDuration(v.seconds),
      ),
    );
  host.append(
    h(
      "table",
      { class: "usa-table usa-table--borderless usa-table--stacked portal-viewings", "aria-labelledby": "viewings-title" },
      h(
        "thead",
        {},
        h("tr", {}, [t("viewings.agency"), t("viewings.camera"), t("viewings.started"), t("viewings.length")].map((c) => h("th", { scope: "col" }, c))),
      ),
      h("tbody", {}, outcome.data.map(row)),
    ),
  );
}
