/** One footage request as the agency sees it: what it asks, its state and the transitions the role may take
 * now (as buttons), the answers summary (which never says who declined or did not answer), when it expires
 * and when owners are reminded, its history, and its evidence — each item downloaded with its SHA-256
 * checked in the browser as it streams, re-verified, its chain of custody exported, and the legal hold. */

import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { attempt, bearer, failureOf, ifMatch, requests } from "../api/client";
import { config } from "../config";
import { focus, h, uid } from "../dom";
import { failureText } from "../forms";
import { formatDate, formatNumber, formatTime, t, type MessageKey } from "../i18n";
import { en } from "../i18n/en";
import { onLeave, rerender } from "../router";
import {
  agencyUser,
  formatBytes,
  pathLengthM,
  verifiedBody,
  type EvidenceItem,
  type FootageRequest,
  type HistoryEvent,
} from "../workspace";
import { roleName } from "./agency";
import { signInNeeded, stateTag, workspaceNav } from "./agency-common";

/** What an action or the legal hold changed, to take the focus once the page is drawn again: the page is
 * drawn anew after each, and a keyboard or screen reader user would otherwise be left at its start. */
let focusAfterRender: "state" | "hold" | null = null;

/** The notes the service writes itself (in English), in the officer's language. */
const SERVICE_NOTES: Record<string, MessageKey> = {
  "sent on approval": "ws.note.sent_on_approval",
  "due date passed": "ws.note.due_date_passed",
};

/** A message of the page's for `key`, or `fallback` (the service's value) for one it does not know yet. */
function known(key: string, fallback: string): string {
  return key in en ? t(key as MessageKey) : fallback;
}

export async function agencyRequestPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const user = agencyUser();
  if (!user) {
    signInNeeded(main);
    return;
  }
  const auth = bearer(user.token);
  const id = params.id ?? "";
  const focusTarget = focusAfterRender;
  focusAfterRender = null;
  main.classList.add("portal-main--wide");
  main.append(workspaceNav(""));
  const outcome = await attempt(() => requests().GET("/v1/requests/{request_id}", { params: { path: { request_id: id } }, headers: auth }));
  if (!outcome.ok) {
    main.append(
      h("h1", {}, t("ws.request.not_found_title")),
      h("p", {}, outcome.failure.status === 404 || outcome.failure.status === 422 ? t("ws.request.not_found") : failureText(outcome.failure)),
      h("p", {}, h("a", { href: "/agency/requests" }, t("ws.request.back"))),
    );
    return;
  }
  const r = outcome.data;
  const category = t(`ws.category.${r.category}` as MessageKey);
  const stateLine = h("p", { class: "ws-request-state", tabindex: "-1" }, t("ws.request.state"), " ", stateTag(r.state));
  main.append(h("h1", {}, t("ws.request.title", { case: r.case_number, category })), stateLine);
  if (focusTarget === "state") focus(stateLine);

  // ------------------------------------------------------------------ actions
  const actionBox = h("div", { class: "ws-actions" });
  const actionStatus = h("div", { role: "status" });
  // The service lets no supervisor approve or reject a request they created (403): not offered, and said why.
  const own = r.created_by === user.sub && r.allowed_actions.some((a) => a === "approve" || a === "reject");
  const offered = r.allowed_actions.filter((a) => !(own && (a === "approve" || a === "reject")));
  if (offered.length) {
    const noteId = uid("ws-note");
    const note = h("textarea", { class: "usa-textarea ws-note", id: noteId, name: "ws-note", rows: 2, maxlength: 2000 });
    const act = async (action: string) => {
      const done = await attempt(() =>
        requests().POST("/v1/requests/{request_id}/transitions", {
          params: { path: { request_id: r.id }, header: ifMatch(r.version) },
          body: { action: action as never, ...(note.value.trim() ? { note: note.value.trim() } : {}) },
          headers: auth,
        }),
      );
      if (!done.ok) {
        // Sending is refused (409) when the due date has passed or the area reaches no owner: the service says
        // so in its own English sentences, of one problem type; the page knows which from the request itself.
        const refused =
          done.failure.status === 409 && (action === "send" || action === "approve")
            ? t(Date.parse(r.due_at) <= Date.now() ? "ws.request.refused_due" : "ws.request.refused_no_owner")
            : failureText(done.failure);
        actionStatus.replaceChildren(h("p", { class: "usa-error-message", role: "alert" }, refused));
        return;
      }
      focusAfterRender = "state";
      rerender();
    };
    actionBox.append(
      h("h2", { class: "ws-h2" }, t("ws.request.actions")),
      h("div", { class: "usa-form-group" }, h("label", { class: "usa-label", for: noteId }, t("ws.request.note"), h("span", { class: "usa-hint" }, ` ${t("form.optional")}`)), note),
      h(
        "div",
        { class: "portal-actions" },
        [...offered].sort((x, y) => Number(x === "reject" || x === "cancel") - Number(y === "reject" || y === "cancel")).map((a) =>
          h(
            "button",
            {
              type: "button",
              class: a === "reject" || a === "cancel" ? "usa-button usa-button--secondary" : a === "close" ? "usa-button usa-button--outline" : "usa-button",
              onclick: () => void act(a),
            },
            t(`ws.action.${a}` as MessageKey),
          ),
        ),
      ),
      actionStatus,
    );
    if (own) actionStatus.before(h("p", { class: "usa-hint" }, t("ws.request.own_approval")));
  } else if (r.state === "pending_approval") {
    actionBox.append(h("p", { class: "usa-hint" }, t("ws.request.awaiting_approval")));
  }
  main.append(actionBox);

  // ------------------------------------------------------------------ what it asks, the answers
  const s = r.summary;
  const earliest = r.targets.map((tg) => tg.footage_until).filter((x): x is string => !!x).sort()[0];
  const dl = (rows: [string, string | Node][]) => h("dl", { class: "portal-details" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const mapBox = h("div", { class: "ws-map ws-map--small" });
  // The investigator's order: the answers and the evidence first, then what was asked, then its history.
  const evidenceHost = h("section", { "aria-labelledby": "ws-evidence" });
  const historyHost = h("section", { "aria-labelledby": "ws-history" });
  main.append(
    h("h2", { class: "ws-h2" }, t("ws.request.answers")),
    dl([
      [t("ws.request.targets"), formatNumber(s.targets)],
      [t("ws.request.notified"), formatNumber(s.notified)],
      [t("ws.request.accepted"), formatNumber(s.accepted)],
      [t("ws.request.uploaded"), formatNumber(s.uploaded)],
      [t("ws.request.not_fulfilled"), formatNumber(s.not_fulfilled)],
    ]),
    h("p", { class: "usa-hint" }, t("ws.request.silent")),
    evidenceHost,
    h("h2", { class: "ws-h2" }, t("ws.request.asks")),
    dl([
      [t("ws.request.case"), r.case_number],
      [t("ws.new.category"), category],
      [t("ws.request.area"), areaText(r)],
      [t("ws.new.window"), `${formatDate(r.window.start, true)} – ${formatDate(r.window.end, true)}`],
      [t("ws.new.message"), r.message],
      [t("ws.request.created"), t("ws.request.created_by", { when: formatDate(r.created_at, true), who: r.created_by })],
      [t("ws.request.approval"), r.requires_approval ? t("ws.request.approval_yes") : t("ws.request.approval_no")],
    ]),
    mapBox,
    routeWindows(r) ?? "",
    h("h2", { class: "ws-h2" }, t("ws.request.timing")),
    dl([
      [t("ws.request.due"), formatDate(r.due_at, true)],
      [t("ws.request.sent"), r.sent_at ? formatDate(r.sent_at, true) : "—"],
      [t("ws.request.earliest_overwrite"), earliest ? formatDate(earliest, true) : "—"],
    ]),
    h("p", { class: "usa-hint" }, t("ws.request.reminders")),
    historyHost,
    h("p", {}, h("a", { href: "/agency/requests" }, t("ws.request.back"))),
  );
  drawArea(mapBox, r);

  // ------------------------------------------------------------------ history
  const history = await attempt(() => requests().GET("/v1/requests/{request_id}/events", { params: { path: { request_id: r.id } }, headers: auth }));
  historyHost.append(h("h2", { class: "ws-h2", id: "ws-history" }, t("ws.request.history")));
  if (history.ok) {
    historyHost.append(
      h(
        "ol",
        { class: "usa-list ws-history" },
        (history.data.events as HistoryEvent[]).map((e) =>
          h(
            "li",
            {},
            h("strong", {}, formatDate(e.at, true)),
            " — ",
            e.subject === "target"
              ? t("ws.request.owner_event", {
                  action: known(`ws.owner_event.${e.action}`, e.action),
                  to: known(`ws.target.${e.to_state}`, e.to_state),
                })
              : t("ws.request.event", {
                  who: e.actor,
                  role: roleName(e.actor_role),
                  action: known(`ws.event.${e.action}`, e.action),
                  to: known(`ws.state.${e.to_state}`, e.to_state),
                }),
            e.note ? h("span", { class: "ws-history__note" }, ` “${SERVICE_NOTES[e.note] ? t(SERVICE_NOTES[e.note]!) : e.note}”`) : null,
          ),
        ),
      ),
    );
  }

  // ------------------------------------------------------------------ evidence and the legal hold
  evidenceHost.append(h("h2", { class: "ws-h2", id: "ws-evidence" }, t("ws.evidence.title")));
  const holdStatus = h("div", { role: "status" });
  const holdLine = h(
    "p",
    { class: "ws-hold__state", tabindex: "-1" },
    r.legal_hold ? t("ws.evidence.held") : t("ws.evidence.not_held", { days: r.evidence_retention_days }),
  );
  evidenceHost.append(
    h(
      "div",
      { class: "ws-hold" },
      holdLine,
      user.role === "supervisor"
        ? h(
            "button",
            {
              type: "button",
              class: "usa-button usa-button--outline",
              onclick: () => void toggleHold(),
            },
            r.legal_hold ? t("ws.evidence.lift_hold") : t("ws.evidence.set_hold"),
          )
        : null,
      holdStatus,
    ),
  );
  if (focusTarget === "hold") focus(holdLine);
  async function toggleHold(): Promise<void> {
    const done = await attempt(() =>
      requests().PUT("/v1/requests/{request_id}/legal-hold", {
        params: { path: { request_id: r.id }, header: ifMatch(r.version) },
        body: { legal_hold: !r.legal_hold },
        headers: auth,
      }),
    );
    if (!done.ok) {
      holdStatus.replaceChildren(h("p", { class: "usa-error-message", role: "alert" }, failureText(done.failure)));
      return;
    }
    focusAfterRender = "hold";
    rerender();
  }
  const evidence = await attempt(() => requests().GET("/v1/requests/{request_id}/evidence", { params: { path: { request_id: r.id } }, headers: auth }));
  if (!evidence.ok) {
    evidenceHost.append(h("p", { class: "usa-error-message", role: "alert" }, failureText(evidence.failure)));
    return;
  }
  const items = evidence.data.items as EvidenceItem[];
  if (!items.length) evidenceHost.append(h("p", {}, t("ws.evidence.none")));
  for (const item of items) evidenceHost.append(evidenceCard(item, user.token));
}

/** The path of a route's request (lon/lat), its parts joined in order; none for a radius or a polygon. */
function routePoints(r: FootageRequest): [number, number][] {
  const path = r.route?.path;
  if (!path) return [];
  return (path.type === "LineString" ? [path.coordinates] : (path.coordinates as unknown[][])).flat() as [number, number][];
}

function areaText(r: FootageRequest): string {
  if (r.area_kind === "route" && r.route) {
    const parts = r.route.path.type === "LineString" ? [r.route.path.coordinates as [number, number][]] : (r.route.path.coordinates as [number, number][][]);
    const km = parts.reduce((sum, part) => sum + pathLengthM(part), 0) / 1000;
    // A path in a CAD's projection is not in degrees: its length is the area's to say, not the page's.
    return r.route.crs
      ? t("ws.request.area_polygon", { m2: formatNumber(r.area_m2) })
      : t("ws.request.area_route", { km: formatNumber(km, 2), m: formatNumber(r.route.buffer_m), m2: formatNumber(r.area_m2) });
  }
  return r.area_kind === "radius"
    ? t("ws.request.area_circle", { m: formatNumber(r.radius_m ?? 0), m2: formatNumber(r.area_m2) })
    : t("ws.request.area_polygon", { m2: formatNumber(r.area_m2) });
}

/** Along a route, the minutes asked of each owner (who they are is not the page's to show: numbered). */
function routeWindows(r: FootageRequest): HTMLElement | null {
  if (r.area_kind !== "route") return null;
  const asked = r.targets.filter((tg) => tg.window).sort((a, b) => Date.parse(a.window!.start) - Date.parse(b.window!.start));
  if (!asked.length) return null;
  const day = (iso: string) => formatDate(iso);
  return h(
    "section",
    { "aria-labelledby": "ws-route-windows" },
    h("h3", { class: "ws-h2", id: "ws-route-windows" }, t("ws.request.route_windows")),
    h("p", { class: "usa-hint" }, t("ws.request.route_windows_hint")),
    h(
      "ol",
      { class: "usa-list usa-list--unstyled ws-route-windows" },
      asked.map((tg, i) =>
        h(
          "li",
          { "data-target": tg.id, "data-window-start": tg.window!.start, "data-window-end": tg.window!.end },
          t("ws.request.route_target", {
            n: i + 1,
            from: `${day(tg.window!.start)} ${formatTime(tg.window!.start)}`,
            to: formatTime(tg.window!.end),
          }),
        ),
      ),
    ),
  );
}

function drawArea(box: HTMLElement, r: FootageRequest): void {
  if (!box.isConnected) return; // the page was left while it loaded
  const map = L.map(box, { zoomAnimation: false, fadeAnimation: false }).setView([39.5, -98.35], 4);
  box.setAttribute("role", "region");
  box.setAttribute("aria-label", t("ws.request.map_label"));
  map.attributionControl.setPrefix(false);
  const { tile_url: tileUrl, tile_attribution: attribution } = config();
  if (tileUrl) L.tileLayer(tileUrl, { attribution: attribution ?? "", maxZoom: 19 }).addTo(map);
  else box.classList.add("portal-map--plain");
  onLeave(() => map.remove());
  const area = L.geoJSON(r.area, { style: { color: "#e66f0e", weight: 2 }, interactive: false }).addTo(map);
  const path = r.route && !r.route.crs ? routePoints(r) : [];
  if (path.length) L.polyline(path.map(([lon, lat]) => [lat, lon] as [number, number]), { color: "#162e51", weight: 3, interactive: false }).addTo(map);
  const [lon, lat] = r.incident.coordinates as [number, number];
  L.circleMarker([lat, lon], { radius: 7, color: "#162e51", weight: 3, fillColor: "#d83933", fillOpacity: 1, interactive: false }).addTo(map);
  if (area.getBounds().isValid()) map.fitBounds(area.getBounds().pad(0.3), { animate: false });
}

function evidenceCard(item: EvidenceItem, token: string): HTMLElement {
  const base = config().requests_api_url.replace(/\/$/, "");
  const status = h("div", { class: "ws-evidence__status", role: "status", "aria-live": "polite" });
  const progress = h("progress", { max: item.size_bytes, value: 0, hidden: true, "aria-label": t("ws.evidence.progress") });
  const saveBox = h("div", {});
  const fmt = (n: number, digits = 0) => formatNumber(n, digits);
  const fail = (message: string) => status.replaceChildren(h("div", { class: "usa-alert usa-alert--error usa-alert--slim ws-verdict", "data-verdict": "failure" }, h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, message))));
  const ok = (message: string) => status.replaceChildren(h("div", { class: "usa-alert usa-alert--success usa-alert--slim ws-verdict", "data-verdict": "ok" }, h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, message))));
  const refused = (statusCode: number, body: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = null; // not a problem document: the status alone speaks
    }
    const failure = failureOf(statusCode, parsed);
    return failureText(failure);
  };

  const download = async () => {
    saveBox.replaceChildren();
    progress.hidden = false;
    progress.value = 0;
    status.replaceChildren(h("p", {}, t("ws.evidence.downloading")));
    let response: Response;
    try {
      response = await fetch(`${base}/v1/evidence/${item.id}/content`, { headers: { Authorization: `Bearer ${token}` } });
    } catch {
      progress.hidden = true;
      fail(t("errors.network"));
      return;
    }
    const outcome = await verifiedBody(response, item.sha256, (n) => (progress.value = n));
    if (!outcome.ok) {
      progress.hidden = true;
      if (outcome.reason === "mismatch") fail(t("ws.evidence.mismatch", { actual: outcome.sha256 }));
      else if (outcome.reason === "refused") fail(t("ws.evidence.refused", { reason: refused(outcome.status, outcome.body) }));
      else fail(t("ws.evidence.broken"));
      return;
    }
    ok(t("ws.evidence.match"));
    const url = URL.createObjectURL(outcome.blob);
    onLeave(() => URL.revokeObjectURL(url));
    saveBox.replaceChildren(h("a", { class: "usa-button", href: url, download: item.filename ?? `${item.id}` }, t("ws.evidence.save", { name: item.filename ?? item.id })));
  };

  const verify = async () => {
    const done = await attempt(() => requests().POST("/v1/evidence/{evidence_id}/verification", { params: { path: { evidence_id: item.id } }, headers: bearer(token) }));
    if (!done.ok) {
      fail(t("ws.evidence.verify_failed", { reason: failureText(done.failure) }));
      return;
    }
    if (done.data.intact) ok(t("ws.evidence.verified"));
    else fail(t("ws.evidence.verify_failed", { reason: "" }));
  };

  const custody = async () => {
    const done = await attempt(() => requests().GET("/v1/evidence/{evidence_id}/custody", { params: { path: { evidence_id: item.id } }, headers: bearer(token) }));
    if (!done.ok) {
      fail(failureText(done.failure));
      return;
    }
    const exported = done.data;
    const url = URL.createObjectURL(new Blob([JSON.stringify(exported, null, 2)], { type: "application/json" }));
    onLeave(() => URL.revokeObjectURL(url));
    (exported.chain_intact ? ok : fail)(t(exported.chain_intact ? "ws.evidence.custody_intact" : "ws.evidence.custody_broken", { n: exported.records.length }));
    saveBox.replaceChildren(h("a", { class: "usa-button usa-button--outline", href: url, download: `custody-${item.id}.json` }, t("ws.evidence.custody_save")));
  };

  return h(
    "section",
    { class: "portal-card ws-evidence", "data-evidence": item.id, "aria-label": item.filename ?? item.id },
    h("h3", { class: "ws-evidence__name" }, item.filename ?? t("ws.evidence.unnamed")),
    h(
      "dl",
      { class: "portal-details" },
      h("dt", {}, t("ws.evidence.size")),
      h("dd", {}, `${formatBytes(item.size_bytes, fmt)} (${fmt(item.size_bytes)} B)`),
      h("dt", {}, t("ws.evidence.type")),
      h("dd", {}, item.media_type),
      h("dt", {}, t("ws.evidence.sha256")),
      h("dd", {}, h("code", { class: "ws-hash", "data-hash": "record" }, item.sha256)),
      h("dt", {}, t("ws.evidence.uploaded")),
      h("dd", {}, formatDate(item.uploaded_at, true)),
      item.description ? [h("dt", {}, t("ws.evidence.description")), h("dd", {}, item.description)] : [],
    ),
    item.deleted_at
      ? h("p", {}, t("ws.evidence.deleted", { when: formatDate(item.deleted_at, true), reason: item.deleted_reason ?? "" }))
      : h(
          "div",
          { class: "portal-actions" },
          h("button", { type: "button", class: "usa-button", onclick: () => void download() }, t("ws.evidence.download")),
          h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void verify() }, t("ws.evidence.verify")),
          h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void custody() }, t("ws.evidence.custody")),
        ),
    progress,
    status,
    saveBox,
  );
}
