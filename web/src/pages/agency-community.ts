/** The workspace's community pages: the tip inbox (tips by triage state; one tip with its text, place, media and
 * conversation, the triage actions the API allows the officer, replies, and legal hold for supervisors) and the
 * alert composer (title, message, category, an area drawn on the map as a circle or a polygon, an expiry) with
 * the agency's alerts and their delivery counts. Who may do what is the API's rule: the pages only offer it. */

import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { attempt, bearer } from "../api/client";
import type { components } from "../api/community";
import { config } from "../config";
import { focus, h } from "../dom";
import { errorsFromFailure, failureText, showErrors, textField, type FieldError } from "../forms";
import { formatDate, formatNumber, t, type MessageKey } from "../i18n";
import { navigate } from "../router";
import { agencyUser, isoToLocal, localToIso, parseRing, closeRing } from "../workspace";
import { signInNeeded, workspaceNav } from "./agency-common";
import { CATEGORIES, community, type Category } from "./alerts-api";

type TipDetail = components["schemas"]["TipDetail"];
type TipMessage = components["schemas"]["TipMessage"];
type Action = components["schemas"]["Transition"]["action"];

// The community service's limits on an alert (MAX_ALERT_DAYS, the title's max_length): checked here first, so a
// supervisor reads what is wrong at its field, in their language, before anything is sent.
const ALERT_MAX_DAYS = 30;
const ALERT_TITLE_MAX = 120;

const TIP_STATES = ["new", "reviewing", "actioned", "closed"] as const;
// The triage table of the API (community_api inbox.TRANSITIONS): the actions a state allows, and who may take them.
const ACTIONS: { action: Action; from: string[]; roles: string[] }[] = [
  { action: "review", from: ["new"], roles: ["investigator", "supervisor"] },
  { action: "action", from: ["reviewing"], roles: ["investigator", "supervisor"] },
  { action: "close", from: ["new", "reviewing", "actioned"], roles: ["investigator", "supervisor"] },
  { action: "reopen", from: ["closed"], roles: ["supervisor"] },
];

/** An event handler that awaits: its promise is the handler's own business (failures are shown on the page). */
function on(el: HTMLElement, event: string, handler: (e: Event) => Promise<void>): void {
  el.addEventListener(event, (e) => void handler(e));
}

function tipTag(state: string): HTMLElement {
  return h("span", { class: `ws-state ws-state--tip-${state}` }, t(`wsc.state.${state}` as MessageKey));
}

function smallMap(container: HTMLElement, label: string): L.Map {
  container.classList.add("portal-map", "wsc-map");
  container.setAttribute("role", "region");
  container.setAttribute("aria-label", label);
  const map = L.map(container, { zoomAnimation: false, fadeAnimation: false }).setView([39.5, -98.35], 4);
  map.attributionControl.setPrefix(false);
  const { tile_url: tileUrl, tile_attribution: attribution } = config();
  if (tileUrl) L.tileLayer(tileUrl, { attribution: attribution ?? "", maxZoom: 19 }).addTo(map);
  else container.classList.add("portal-map--plain");
  return map;
}

export async function tipInboxPage(main: HTMLElement): Promise<void> {
  const user = agencyUser();
  if (!user) {
    signInNeeded(main);
    return;
  }
  main.classList.add("portal-main--wide");
  main.append(workspaceNav("/agency/tips"), h("h1", {}, t("wsc.inbox.title")), h("p", { class: "usa-intro" }, t("wsc.inbox.intro")));
  const chosen = new URLSearchParams(location.search).get("state") ?? "new";
  const tabs = h(
    "ul",
    { class: "usa-list usa-list--unstyled wsc-tabs", "aria-label": t("wsc.inbox.states") },
    [...TIP_STATES, "all"].map((s) =>
      h(
        "li",
        {},
        h("a", { href: `/agency/tips?state=${s}`, class: "wsc-tab", "aria-current": s === chosen ? "page" : null }, t(`wsc.state.${s}` as MessageKey)),
      ),
    ),
  );
  const list = h("div", { class: "wsc-tip-list" });
  main.append(h("nav", { "aria-label": t("wsc.inbox.states") }, tabs), list);
  const state = (TIP_STATES as readonly string[]).includes(chosen) ? (chosen as (typeof TIP_STATES)[number]) : undefined;
  const outcome = await attempt(() =>
    community().GET("/v1/agencies/{slug}/tips", {
      params: { path: { slug: user.agency }, query: { limit: 100, ...(state ? { state } : {}) } },
      headers: bearer(user.token),
    }),
  );
  if (!outcome.ok) {
    list.append(h("p", { class: "usa-error-message", role: "alert" }, failureText(outcome.failure)));
    return;
  }
  const tips = outcome.data.features;
  if (!tips.length) {
    list.append(h("p", {}, t("wsc.inbox.none")));
    return;
  }
  list.append(
    h(
      "ul",
      { class: "usa-list usa-list--unstyled" },
      tips.map((tip) => {
        const p = tip.properties as { state: string; created_at: string; messages: number; media: number; legal_hold: boolean };
        return h(
          "li",
          { class: "wsc-tip-item" },
          h("a", { href: `/agency/tips/${tip.id}`, class: "wsc-tip-link" }, t("wsc.inbox.tip_of", { when: formatDate(p.created_at, true) })),
          " ",
          tipTag(p.state),
          h(
            "p",
            { class: "usa-hint" },
            t("wsc.inbox.counts", { messages: p.messages, media: p.media }),
            tip.geometry ? ` · ${t("wsc.inbox.has_place")}` : "",
            p.legal_hold ? ` · ${t("wsc.tip.held")}` : "",
          ),
        );
      }),
    ),
  );
}

/** A tip. `after` is what the officer just did on it (the page is drawn anew): the focus goes to what changed —
 * its state in the heading, its hold, the reply sent — not to the page's start. */
export async function tipPage(main: HTMLElement, params: Record<string, string>, after?: "state" | "hold" | "reply"): Promise<void> {
  const user = agencyUser();
  if (!user) {
    signInNeeded(main);
    return;
  }
  const id = params.id ?? "";
  main.classList.add("portal-main--wide");
  main.append(workspaceNav("/agency/tips"), h("p", {}, h("a", { href: "/agency/tips" }, t("wsc.tip.back"))));
  const path = { slug: user.agency, tip_id: id };
  const outcome = await attempt(() =>
    community().GET("/v1/agencies/{slug}/tips/{tip_id}", { params: { path }, headers: bearer(user.token) }),
  );
  if (!outcome.ok) {
    main.append(h("h1", {}, t("wsc.tip.title")), h("p", { class: "usa-error-message", role: "alert" }, failureText(outcome.failure)));
    return;
  }
  const tip: TipDetail = outcome.data;
  const p = tip.properties as { state: string; legal_hold: boolean; created_at: string; occurred_at: string | null; messages: TipMessage[] };
  const status = h("div", { role: "status", class: "wsc-status" });
  const redraw = (what: "state" | "hold" | "reply") => {
    main.replaceChildren();
    void tipPage(main, params, what);
  };
  const heading = h("h1", {}, t("wsc.tip.title"), " ", tipTag(p.state));
  const holdFact = h("dd", { class: "wsc-hold" }, p.legal_hold ? t("wsc.tip.held") : t("wsc.tip.not_held"));
  main.append(
    heading,
    h(
      "dl",
      { class: "wsc-facts" },
      h("dt", {}, t("wsc.tip.received")),
      h("dd", {}, formatDate(p.created_at, true)),
      h("dt", {}, t("wsc.tip.occurred")),
      h("dd", {}, p.occurred_at ? formatDate(p.occurred_at, true) : t("wsc.tip.unknown")),
      h("dt", {}, t("wsc.tip.hold")),
      holdFact,
    ),
    status,
  );
  // The triage actions this state allows this officer, as buttons.
  const actions = ACTIONS.filter((a) => a.from.includes(p.state) && a.roles.includes(user.role));
  const bar = h("div", { class: "portal-actions wsc-actions" });
  for (const a of actions) {
    const button = h("button", { type: "button", class: `usa-button${a.action === "close" ? " usa-button--outline" : ""}` }, t(`wsc.action.${a.action}` as MessageKey));
    on(button, "click", async () => {
      button.disabled = true;
      const done = await attempt(() =>
        community().POST("/v1/agencies/{slug}/tips/{tip_id}/transitions", { params: { path }, body: { action: a.action }, headers: bearer(user.token) }),
      );
      if (!done.ok) {
        button.disabled = false;
        status.replaceChildren(h("p", { class: "usa-error-message" }, failureText(done.failure)));
        return;
      }
      redraw("state");
    });
    bar.append(button);
  }
  if (user.role === "supervisor") {
    const hold = h("button", { type: "button", class: "usa-button usa-button--secondary" }, t(p.legal_hold ? "wsc.tip.lift_hold" : "wsc.tip.put_hold"));
    on(hold, "click", async () => {
      hold.disabled = true;
      const done = await attempt(() =>
        community().PUT("/v1/agencies/{slug}/tips/{tip_id}/legal-hold", { params: { path }, body: { hold: !p.legal_hold }, headers: bearer(user.token) }),
      );
      if (!done.ok) {
        hold.disabled = false;
        status.replaceChildren(h("p", { class: "usa-error-message" }, failureText(done.failure)));
        return;
      }
      redraw("hold");
    });
    bar.append(hold);
  }
  if (bar.childElementCount) main.append(h("h2", {}, t("wsc.tip.triage")), bar);
  if (after === "state") focus(heading);
  if (after === "hold") focus(holdFact);

  if (tip.geometry) {
    const [lon, lat] = tip.geometry.coordinates as [number, number];
    const box = h("div", {});
    main.append(h("h2", {}, t("wsc.tip.place")), h("p", {}, `${formatNumber(lat, 5)}, ${formatNumber(lon, 5)}`), box);
    const map = smallMap(box, t("wsc.tip.map_label"));
    L.circleMarker([lat, lon], { radius: 9, color: "#162e51", weight: 3, fillColor: "#d83933", fillOpacity: 1, interactive: false }).addTo(map);
    map.setView([lat, lon], 16, { animate: false });
  }

  const conversation = h(
      "ol",
      { class: "usa-list usa-list--unstyled portal-conversation" },
      p.messages.map((m) =>
        h(
          "li",
          { class: `portal-message portal-message--${m.author === "agency" ? "agency" : "tipster"}` },
          h("p", { class: "text-bold" }, m.author === "agency" ? t("wsc.tip.from_agency") : t("wsc.tip.from_tipster"), " · ", formatDate(m.created_at, true)),
          h("p", { class: "wsc-message-body" }, m.body),
          m.media.length
            ? h(
                "ul",
                { class: "usa-list wsc-media" },
                m.media.map((d, i) => h("li", {}, mediaButton(user.token, user.agency, id, d, i + 1))),
              )
            : null,
        ),
      ),
    );
  main.append(h("h2", {}, t("wsc.tip.conversation")), conversation);
  const lastReply = [...conversation.querySelectorAll<HTMLElement>(".portal-message--agency")].pop();
  if (after === "reply" && lastReply) focus(lastReply);

  if (p.state === "closed") {
    main.append(h("p", {}, t("wsc.tip.closed_no_reply")));
    return;
  }
  let reply = "";
  const summary = h("div", { class: "error-summary-host" });
  const send = h("button", { type: "submit", class: "usa-button" }, t("wsc.tip.send_reply"));
  const form = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    h("div", { class: "usa-form-group", "data-field": "wsc-reply" },
      h("label", { class: "usa-label", for: "wsc-reply" }, t("wsc.tip.reply")),
      h("span", { class: "usa-hint", id: "wsc-reply-hint" }, t("wsc.tip.reply_hint")),
      (() => {
        const area = h("textarea", { class: "usa-textarea", id: "wsc-reply", name: "wsc-reply", "aria-describedby": "wsc-reply-hint", maxlength: 4000 });
        area.addEventListener("input", () => (reply = area.value));
        return area;
      })(),
    ),
    send,
  );
  main.append(h("h2", {}, t("wsc.tip.reply_title")), summary, form);
  on(form, "submit", async (e) => {
    e.preventDefault();
    if (!reply.trim()) {
      showErrors(form, summary, [{ field: "wsc-reply", message: t("wsc.tip.error_reply") }]);
      return;
    }
    send.disabled = true;
    const done = await attempt(() =>
      community().POST("/v1/agencies/{slug}/tips/{tip_id}/replies", { params: { path }, body: { message: reply.trim() }, headers: bearer(user.token) }),
    );
    send.disabled = false;
    if (!done.ok) {
      showErrors(form, summary, errorsFromFailure(done.failure, { "/body/message": "wsc-reply" }));
      return;
    }
    redraw("reply");
  });
}

function mediaButton(token: string, agency: string, tipId: string, media: { id: string; media_type: string; size: number }, n: number): HTMLElement {
  // The file's kind in words (an officer has no use for "image/jpeg"); a button a thumb can hit.
  const kind: MessageKey = media.media_type.startsWith("image/") ? "wsc.tip.media_photo" : media.media_type.startsWith("video/") ? "wsc.tip.media_video" : "wsc.tip.media_file";
  const button = h("button", { type: "button", class: "usa-button usa-button--unstyled ws-reveal" }, t("wsc.tip.media_open", { n, kind: t(kind), size: formatNumber(media.size / 1024, 1) }));
  on(button, "click", async () => {
    const base = config().community_api_url.replace(/\/$/, "");
    const response = await fetch(`${base}/v1/agencies/${agency}/tips/${tipId}/media/${media.id}`, { headers: bearer(token) });
    if (!response.ok) return;
    const url = URL.createObjectURL(await response.blob());
    window.open(url, "_blank", "noopener");
  });
  return button;
}

// --- alerts -----------------------------------------------------------------------------------------------------

const draft = {
  title: "",
  message: "",
  category: "community" as Category,
  shape: "circle" as "circle" | "polygon",
  lat: "",
  lon: "",
  radius: "500",
  corners: "",
  expires: "",
};

/** A circle as a polygon of 48 corners (the API takes polygons). */
function circleRing(lat: number, lon: number, radiusM: number): [number, number][] {
  const ring: [number, number][] = [];
  const dLat = radiusM / 111_320;
  const dLon = radiusM / (111_320 * Math.cos((lat * Math.PI) / 180));
  for (let i = 0; i < 48; i++) {
    const a = (i / 48) * 2 * Math.PI;
    ring.push([lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)]);
  }
  return closeRing(ring);
}

function alertArea(): [number, number][] | null {
  if (draft.shape === "circle") {
    const lat = Number(draft.lat);
    const lon = Number(draft.lon);
    const radius = Number(draft.radius);
    if (!draft.lat.trim() || !draft.lon.trim() || !Number.isFinite(lat) || !Number.isFinite(lon) || !(radius > 0)) return null;
    return circleRing(lat, lon, radius);
  }
  const points = parseRing(draft.corners);
  return points && points.length >= 3 ? closeRing(points) : null;
}

export async function alertsPage(main: HTMLElement): Promise<void> {
  const user = agencyUser();
  if (!user) {
    signInNeeded(main);
    return;
  }
  main.classList.add("portal-main--wide");
  main.append(workspaceNav("/agency/alerts"), h("h1", {}, t("wsc.alerts.title")), h("p", { class: "usa-intro" }, t("wsc.alerts.intro")));
  const sent = new URLSearchParams(location.search).get("sent");
  if (sent) main.append(h("div", { class: "usa-alert usa-alert--success usa-alert--slim", role: "status" }, h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, t("wsc.alerts.sent_ok")))));
  if (user.role === "supervisor") composer(main, user.token, user.agency);
  else main.append(h("p", { class: "usa-alert__text wsc-note" }, t("wsc.alerts.supervisors_only")));
  const list = h("div", {});
  main.append(h("h2", {}, t("wsc.alerts.sent_title")), list);
  const outcome = await attempt(() =>
    community().GET("/v1/agencies/{slug}/alerts", { params: { path: { slug: user.agency } }, headers: bearer(user.token) }),
  );
  if (!outcome.ok) {
    list.append(h("p", { class: "usa-error-message", role: "alert" }, failureText(outcome.failure)));
    return;
  }
  if (!outcome.data.alerts.length) {
    list.append(h("p", {}, t("wsc.alerts.none")));
    return;
  }
  list.append(
    h(
      "div",
      { class: "usa-table-container--scrollable", tabindex: "0", role: "region", "aria-label": t("wsc.alerts.sent_title") },
      h(
        "table",
        { class: "usa-table usa-table--compact wsc-alert-table" },
        h("thead", {}, h("tr", {}, ["wsc.alerts.col_title", "wsc.alerts.col_sent", "wsc.alerts.col_until", "wsc.alerts.queued", "wsc.alerts.sent", "wsc.alerts.failed", "wsc.alerts.cancelled"].map((k) => h("th", { scope: "col" }, t(k as MessageKey))))),
        h(
          "tbody",
          {},
          outcome.data.alerts.map((a) =>
            h(
              "tr",
              { "data-alert": a.id },
              h("th", { scope: "row" }, h("a", { href: `/alerts/${a.id}` }, a.title), h("br"), h("span", { class: "wsc-alert-category" }, t(`alerts.category_${a.category}` as MessageKey))),
              h("td", {}, formatDate(a.created_at, true)),
              h("td", {}, formatDate(a.expires_at, true)),
              h("td", {}, formatNumber(a.deliveries?.queued ?? 0)),
              h("td", {}, formatNumber(a.deliveries?.sent ?? 0)),
              h("td", {}, formatNumber(a.deliveries?.failed ?? 0)),
              h("td", {}, formatNumber(a.deliveries?.cancelled ?? 0)),
            ),
          ),
        ),
      ),
    ),
  );
}

function composer(main: HTMLElement, token: string, agency: string): void {
  draft.expires ||= isoToLocal(Date.now() + 4 * 3_600_000);
  const summary = h("div", { class: "error-summary-host" });
  const send = h("button", { type: "submit", class: "usa-button" }, t("wsc.alerts.send"));
  const mapBox = h("div", {});
  const category = h(
    "select",
    { class: "usa-select", id: "wsc-category", name: "wsc-category" },
    CATEGORIES.map((c) => h("option", { value: c, selected: c === draft.category }, t(`alerts.category_${c}` as MessageKey))),
  );
  category.addEventListener("change", () => (draft.category = category.value as Category));
  const message = h("textarea", { class: "usa-textarea", id: "wsc-message", name: "wsc-message", maxlength: 1000 });
  message.value = draft.message;
  message.addEventListener("input", () => (draft.message = message.value));
  const corners = h("textarea", { class: "usa-textarea", id: "wsc-corners", name: "wsc-corners", "aria-describedby": "wsc-corners-hint" });
  corners.value = draft.corners;
  const circleFields = h(
    "div",
    { class: "wsc-circle" },
    textField({ id: "wsc-lat", label: t("tip.lat"), value: draft.lat, inputmode: "decimal", width: "md", onInput: (v) => { draft.lat = v; drawn(); } }),
    textField({ id: "wsc-lon", label: t("tip.lon"), value: draft.lon, inputmode: "decimal", width: "md", onInput: (v) => { draft.lon = v; drawn(); } }),
    textField({ id: "wsc-radius", label: t("alerts.radius"), value: draft.radius, inputmode: "numeric", width: "sm", onInput: (v) => { draft.radius = v; drawn(); } }),
  );
  const polygonFields = h(
    "div",
    { class: "usa-form-group wsc-polygon", "data-field": "wsc-corners" },
    h("label", { class: "usa-label", for: "wsc-corners" }, t("wsc.alerts.corners")),
    h("span", { class: "usa-hint", id: "wsc-corners-hint" }, t("wsc.alerts.corners_hint")),
    corners,
  );
  const shapeRadios = h(
    "fieldset",
    { class: "usa-fieldset usa-form-group" },
    h("legend", { class: "usa-legend" }, t("wsc.alerts.shape")),
    (["circle", "polygon"] as const).map((s) => {
      const input = h("input", { class: "usa-radio__input", type: "radio", id: `wsc-shape-${s}`, name: "wsc-shape", value: s, checked: draft.shape === s });
      input.addEventListener("change", () => {
        draft.shape = s;
        shown();
        drawn();
      });
      return h("div", { class: "usa-radio" }, input, h("label", { class: "usa-radio__label", for: `wsc-shape-${s}` }, t(`wsc.alerts.shape_${s}` as MessageKey)));
    }),
  );
  const form = h(
    "form",
    { class: "usa-form usa-form--large wsc-composer", novalidate: true },
    textField({ id: "wsc-title", label: t("wsc.alerts.alert_title"), value: draft.title, onInput: (v) => (draft.title = v) }),
    h("div", { class: "usa-form-group", "data-field": "wsc-message" }, h("label", { class: "usa-label", for: "wsc-message" }, t("wsc.alerts.message")), message),
    h("div", { class: "usa-form-group" }, h("label", { class: "usa-label", for: "wsc-category" }, t("wsc.alerts.category")), category),
    shapeRadios,
    h("p", { class: "usa-hint" }, t("wsc.alerts.map_hint")),
    mapBox,
    circleFields,
    polygonFields,
    textField({ id: "wsc-expires", label: t("wsc.alerts.expires"), hint: t("wsc.alerts.expires_hint"), type: "datetime-local", value: draft.expires, onInput: (v) => (draft.expires = v) }),
    send,
  );
  main.append(h("h2", {}, t("wsc.alerts.compose")), summary, form);
  const map = smallMap(mapBox, t("wsc.alerts.map_label"));
  const shapes = L.featureGroup().addTo(map);
  const shown = () => {
    circleFields.hidden = draft.shape !== "circle";
    polygonFields.hidden = draft.shape !== "polygon";
  };
  function drawn(): void {
    shapes.clearLayers();
    const ring = alertArea();
    if (ring) {
      L.polygon(ring.map(([lon, lat]) => [lat, lon] as [number, number]), { color: "#d83933", weight: 2, fillOpacity: 0.2, interactive: false }).addTo(shapes);
    } else if (draft.shape === "polygon") {
      for (const [lon, lat] of parseRing(draft.corners) ?? []) L.circleMarker([lat, lon], { radius: 5, color: "#d83933", interactive: false }).addTo(shapes);
    }
  }
  corners.addEventListener("input", () => {
    draft.corners = corners.value;
    drawn();
  });
  map.on("click", (e: L.LeafletMouseEvent) => {
    const lat = e.latlng.lat.toFixed(6);
    const lon = e.latlng.lng.toFixed(6);
    if (draft.shape === "circle") {
      draft.lat = lat;
      draft.lon = lon;
      (form.querySelector("#wsc-lat") as HTMLInputElement).value = lat;
      (form.querySelector("#wsc-lon") as HTMLInputElement).value = lon;
    } else {
      draft.corners = `${draft.corners.trim()}\n${lon}, ${lat}`.trim();
      corners.value = draft.corners;
    }
    drawn();
  });
  shown();
  drawn();
  // The jurisdiction, to draw inside it.
  void fetch(`${config().registry_api_url.replace(/\/$/, "")}/v1/agencies/${agency}`)
    .then(async (r) => {
      if (!r.ok) return;
      const feature = (await r.json()) as GeoJSON.Feature;
      const layer = L.geoJSON(feature, { style: { color: "#005ea2", weight: 2, fillColor: "#73b3e7", fillOpacity: 0.1 }, interactive: false }).addTo(map);
      if (layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), { animate: false });
    })
    .catch(() => {});

  on(form, "submit", async (e) => {
    e.preventDefault();
    const ring = alertArea();
    const expires = localToIso(draft.expires);
    const areaField = draft.shape === "circle" ? "wsc-lat" : "wsc-corners";
    const expiresWithin = expires !== null && Date.parse(expires) > Date.now() && Date.parse(expires) <= Date.now() + ALERT_MAX_DAYS * 86_400_000;
    const errors: FieldError[] = [
      ...(!draft.title.trim()
        ? [{ field: "wsc-title", message: t("wsc.alerts.error_title") }]
        : [...draft.title.trim()].length > ALERT_TITLE_MAX
          ? [{ field: "wsc-title", message: t("wsc.alerts.error_title_long", { n: ALERT_TITLE_MAX }) }]
          : []),
      ...(draft.message.trim() ? [] : [{ field: "wsc-message", message: t("wsc.alerts.error_message") }]),
      ...(ring ? [] : [{ field: areaField, message: t("wsc.alerts.error_area") }]),
      ...(!expires
        ? [{ field: "wsc-expires", message: t("wsc.alerts.error_expires") }]
        : expiresWithin
          ? []
          : [{ field: "wsc-expires", message: t("wsc.alerts.error_expires_range", { days: ALERT_MAX_DAYS }) }]),
    ];
    if (errors.length || !ring || !expires) {
      showErrors(form, summary, errors);
      return;
    }
    send.disabled = true;
    // One key per composed alert: a retried send replays the first answer instead of sending twice.
    const key = crypto.randomUUID();
    const outcome = await attempt(() =>
      community().POST("/v1/agencies/{slug}/alerts", {
        params: { path: { slug: agency } },
        body: { title: draft.title.trim(), message: draft.message.trim(), category: draft.category, area: { type: "Polygon", coordinates: [ring] }, expires_at: expires },
        headers: { ...bearer(token), "Idempotency-Key": key },
      }),
    );
    send.disabled = false;
    if (!outcome.ok) {
      // A field whose rule the page knows is named in the supervisor's words, more precisely than its code says.
      const plain: Record<string, string> = {
        [areaField]: t("wsc.alerts.error_outside"),
        "wsc-expires": t("wsc.alerts.error_expires_range", { days: ALERT_MAX_DAYS }),
      };
      const refused = errorsFromFailure(outcome.failure, { "/body/title": "wsc-title", "/body/message": "wsc-message", "/body/area": areaField, "/body/expires_at": "wsc-expires" });
      showErrors(form, summary, refused.map((e) => (e.field && plain[e.field] ? { field: e.field, message: plain[e.field]! } : e)));
      return;
    }
    Object.assign(draft, { title: "", message: "", corners: "", lat: "", lon: "", expires: "" });
    navigate(`/agency/alerts?sent=${outcome.data.id}`, true);
  });
}
