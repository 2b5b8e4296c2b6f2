/** Footage requests in the workspace: the agency's list, a supervisor's approval queue, and a new request —
 * an area drawn on the map (corners clicked, or a circle around the incident) or typed, the case, the time
 * window and the message, with the agency's caps shown as it is drawn and a request over them refused here
 * before the API would. */

import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { attempt, bearer, registry, requests } from "../api/client";
import { config } from "../config";
import { h } from "../dom";
import { errorsFromFailure, failureText, showErrors, textField, type FieldError } from "../forms";
import { formatDate, formatNumber, t, type MessageKey } from "../i18n";
import { navigate, onLeave } from "../router";
import {
  agencyUser,
  CATEGORIES,
  circleAreaM2,
  closeRing,
  decodeRoute,
  encodeRoute,
  isoToLocal,
  localToIso,
  parseRing,
  pathLengthM,
  ringAreaM2,
  routeAreaM2,
  routeBody,
  ROUTE_SPEEDS,
  windowHours,
  type RequestCreate,
  type RequestItem,
} from "../workspace";
import { signInNeeded, stateTag, workspaceNav } from "./agency-common";

export async function agencyRequestsPage(main: HTMLElement): Promise<void> {
  await listPage(main, "/agency/requests", "ws.list.title", "ws.list.intro", null);
}

export async function approvalsPage(main: HTMLElement): Promise<void> {
  await listPage(main, "/agency/approvals", "ws.approvals.title", "ws.approvals.intro", "pending_approval");
}

const STATES = ["draft", "pending_approval", "approved", "rejected", "sent", "closed", "cancelled", "expired"] as const;

/** Set when the state filter changed: the list is drawn anew, and the focus stays on the filter (a keyboard user
 * steps through its states with the arrow keys, each a change, and would otherwise be sent to the heading). */
let filterChanged = false;

async function listPage(
  main: HTMLElement,
  path: string,
  title: MessageKey,
  intro: MessageKey,
  fixedState: (typeof STATES)[number] | null,
): Promise<void> {
  const user = agencyUser();
  if (!user) {
    signInNeeded(main);
    return;
  }
  main.classList.add("portal-main--wide");
  main.append(workspaceNav(path), h("h1", {}, t(title)), h("p", { class: "usa-intro" }, t(intro)));
  const chosen = fixedState ?? (new URLSearchParams(location.search).get("state") as (typeof STATES)[number] | null);
  if (!fixedState) {
    const select = h(
      "select",
      { class: "usa-select", id: "ws-state-filter", name: "ws-state-filter" },
      h("option", { value: "" }, t("ws.list.all_states")),
      STATES.map((s) => h("option", { value: s, selected: s === chosen }, t(`ws.state.${s}` as MessageKey))),
    );
    select.addEventListener("change", () => {
      filterChanged = true;
      navigate(select.value ? `${path}?state=${select.value}` : path, true);
    });
    main.append(h("div", { class: "usa-form-group ws-state-filter" }, h("label", { class: "usa-label", for: "ws-state-filter" }, t("ws.list.state_filter")), select));
    if (filterChanged) select.focus();
    filterChanged = false;
  }
  const list = h("div", { class: "ws-request-list" });
  const more = h("div", { class: "portal-actions" });
  main.append(list, more);
  const load = async (cursor: string | null) => {
    const outcome = await attempt(() =>
      requests().GET("/v1/requests", {
        params: { query: { limit: 50, ...(chosen ? { state: chosen } : {}), ...(cursor ? { cursor } : {}) } },
        headers: bearer(user.token),
      }),
    );
    more.replaceChildren();
    if (!outcome.ok) {
      list.append(h("p", { class: "usa-error-message", role: "alert" }, failureText(outcome.failure)));
      return;
    }
    const items = outcome.data.items as RequestItem[];
    if (!items.length && !cursor) list.append(h("p", {}, fixedState ? t("ws.approvals.none") : t("ws.list.none")));
    for (const item of items) list.append(card(item));
    const next = outcome.data.links.find((l) => l.rel === "next")?.href;
    const nextCursor = next ? new URL(next, "http://x").searchParams.get("cursor") : null;
    if (nextCursor) more.append(h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void load(nextCursor) }, t("ws.list.more")));
  };
  await load(null);
}

function card(item: RequestItem): HTMLElement {
  const s = item.summary;
  return h(
    "section",
    { class: "portal-card ws-request-card", "data-request": item.id },
    h(
      "h2",
      { class: "ws-request-card__title" },
      h("a", { href: `/agency/requests/${item.id}` }, t("ws.list.case", { case: item.case_number, category: t(`ws.category.${item.category}` as MessageKey) })),
    ),
    h("p", { class: "ws-request-card__meta" }, stateTag(item.state), " ", t("ws.list.created", { when: formatDate(item.created_at, true), who: item.created_by })),
    h("p", {}, t("ws.list.summary", { targets: s.targets, accepted: s.accepted, uploaded: s.uploaded })),
    h("p", { class: "usa-hint" }, t("ws.list.due", { when: formatDate(item.due_at, true) })),
  );
}

// ------------------------------------------------------------------------------------------ a new request

export async function newRequestPage(main: HTMLElement): Promise<void> {
  const user = agencyUser();
  if (!user) {
    signInNeeded(main);
    return;
  }
  const auth = bearer(user.token);
  main.classList.add("portal-main--wide");
  main.append(workspaceNav("/agency/requests/new"), h("h1", {}, t("ws.new.title")), h("p", { class: "usa-intro" }, t("ws.new.intro")));
  const agencyOutcome = await attempt(() => registry().GET("/v1/agencies/{slug}", { params: { path: { slug: user.agency } }, headers: auth }));
  const agency = agencyOutcome.ok ? (agencyOutcome.data) : null;
  const policy = agency?.properties.policy ?? null;

  const params = new URLSearchParams(location.search);
  const now = Date.now();
  // A route carried from the map's route search: the request's area, its first point the incident, and a
  // window holding the route's times (the minute before it began to the minute after it ended, with the margin).
  const route = decodeRoute(params.get("route"));
  const routeLength = route ? pathLengthM(route.points) : 0;
  const routeStart = route ? Date.parse(route.start) : 0;
  const routeEnd = route ? routeStart + (routeLength / ROUTE_SPEEDS[route.speed]) * 1000 : 0;
  const state = {
    caseNumber: params.get("case") ?? "",
    category: "burglary",
    lon: params.get("lon") ?? (route ? route.points[0]![0].toFixed(6) : ""),
    lat: params.get("lat") ?? (route ? route.points[0]![1].toFixed(6) : ""),
    shape: (route ? "route" : "circle") as "circle" | "polygon" | "route",
    radius: "150",
    corners: "",
    start: isoToLocal(route ? routeStart - route.margin_s * 1000 - 60_000 : now - 3 * 3_600_000),
    end: isoToLocal(route ? routeEnd + route.margin_s * 1000 + 120_000 : now - 2 * 3_600_000),
    message: "",
  };

  const summary = h("div", { class: "error-summary-host" });
  const mapLabel = () =>
    t(state.shape === "polygon" ? "ws.new.map_label_polygon" : state.shape === "route" ? "ws.new.map_label_route" : "ws.new.map_label_circle");
  const caps = h("div", { class: "ws-caps", role: "status", "aria-live": "polite" });
  const mapBox = h("div", { class: "ws-map ws-map--draw", id: "ws-draw-map" });

  const caseField = textField({ id: "rq-case", label: t("ws.new.case"), value: state.caseNumber, onInput: (v) => (state.caseNumber = v) });
  const category = h(
    "select",
    { class: "usa-select", id: "rq-category", name: "rq-category" },
    CATEGORIES.map((c) => h("option", { value: c, selected: c === state.category }, t(`ws.category.${c}` as MessageKey))),
  );
  category.addEventListener("change", () => (state.category = category.value));
  const latField = textField({ id: "rq-lat", label: t("ws.map.lat"), value: state.lat, inputmode: "decimal", onInput: (v) => ((state.lat = v), redraw()) });
  const lonField = textField({ id: "rq-lon", label: t("ws.map.lon"), value: state.lon, inputmode: "decimal", onInput: (v) => ((state.lon = v), redraw()) });
  const radiusField = textField({ id: "rq-radius", label: t("ws.new.radius"), value: state.radius, inputmode: "numeric", width: "small", onInput: (v) => ((state.radius = v), redraw()) });
  radiusField.hidden = state.shape !== "circle";
  const cornersInput = h("textarea", { class: "usa-textarea ws-corners", id: "rq-corners", name: "rq-corners", rows: 5, "aria-describedby": "rq-corners-hint" });
  cornersInput.addEventListener("input", () => {
    state.corners = cornersInput.value;
    redraw();
  });
  const cornersField = h(
    "div",
    { class: "usa-form-group", "data-field": "rq-corners", hidden: true },
    h("label", { class: "usa-label", for: "rq-corners" }, t("ws.new.corners")),
    h("div", { class: "usa-hint", id: "rq-corners-hint" }, t("ws.new.corners_hint")),
    cornersInput,
    h(
      "div",
      { class: "portal-actions ws-draw-actions" },
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => editCorners((c) => c.slice(0, -1)) }, t("ws.new.undo")),
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => editCorners(() => []) }, t("ws.new.clear")),
    ),
  );
  const routeField = route
    ? h(
        "div",
        { class: "usa-form-group", "data-field": "rq-route", hidden: state.shape !== "route" },
        h("p", { class: "usa-label", id: "rq-route-label" }, t("ws.new.route")),
        h(
          "p",
          { id: "rq-route", tabindex: "-1", class: "ws-route-summary" },
          t("ws.new.route_summary", {
            n: route.points.length,
            km: formatNumber(routeLength / 1000, 2),
            m: formatNumber(route.buffer_m),
            from: formatDate(route.start, true),
            speed: t(`ws.route.speed_${route.speed}` as MessageKey),
            margin: formatNumber(route.margin_s / 60, 1),
          }),
        ),
        h(
          "p",
          {},
          h(
            "a",
            { href: `/agency?${new URLSearchParams({ route: encodeRoute(route), ...(params.get("case") ? { case: params.get("case")! } : {}) }).toString()}` },
            t("ws.new.route_change"),
          ),
        ),
      )
    : null;
  const shapeRadio = (value: "circle" | "polygon" | "route", label: string) =>
    h(
      "div",
      { class: "usa-radio" },
      h("input", {
        class: "usa-radio__input",
        type: "radio",
        id: `rq-shape-${value}`,
        name: "rq-shape",
        value,
        checked: value === state.shape,
        onchange: () => {
          state.shape = value;
          radiusField.hidden = value !== "circle";
          cornersField.hidden = value !== "polygon";
          if (routeField) routeField.hidden = value !== "route";
          mapBox.setAttribute("aria-label", mapLabel());
          redraw();
        },
      }),
      h("label", { class: "usa-radio__label", for: `rq-shape-${value}` }, label),
    );
  const startField = textField({ id: "rq-start", label: t("ws.new.start"), type: "datetime-local", value: state.start, onInput: (v) => ((state.start = v), redraw()) });
  const endField = textField({ id: "rq-end", label: t("ws.new.end"), type: "datetime-local", value: state.end, onInput: (v) => ((state.end = v), redraw()) });
  const message = h("textarea", { class: "usa-textarea", id: "rq-message", name: "rq-message", rows: 4, maxlength: 4000, "aria-describedby": "rq-message-hint" });
  message.addEventListener("input", () => (state.message = message.value));

  const form = h(
    "form",
    { class: "usa-form ws-request-form", novalidate: true },
    caseField,
    h("div", { class: "usa-form-group", "data-field": "rq-category" }, h("label", { class: "usa-label", for: "rq-category" }, t("ws.new.category")), category),
    h("fieldset", { class: "usa-fieldset ws-fieldset" }, h("legend", { class: "usa-legend" }, t("ws.new.incident")), h("p", { class: "usa-hint" }, t("ws.new.incident_hint")), h("div", { class: "place-picker__row" }, latField, lonField)),
    h(
      "fieldset",
      { class: "usa-fieldset ws-fieldset" },
      h("legend", { class: "usa-legend" }, t("ws.new.area")),
      route ? shapeRadio("route", t("ws.new.shape_route")) : null,
      shapeRadio("circle", t("ws.new.shape_circle")),
      shapeRadio("polygon", t("ws.new.shape_polygon")),
      routeField,
      radiusField,
      cornersField,
    ),
    h("fieldset", { class: "usa-fieldset ws-fieldset" }, h("legend", { class: "usa-legend" }, t("ws.new.window")), h("div", { class: "place-picker__row" }, startField, endField)),
    h(
      "div",
      { class: "usa-form-group", "data-field": "rq-message" },
      h("label", { class: "usa-label", for: "rq-message" }, t("ws.new.message")),
      h("div", { class: "usa-hint", id: "rq-message-hint" }, t("ws.new.message_hint")),
      message,
    ),
    h("button", { type: "submit", class: "usa-button" }, t("ws.new.create")),
  );
  main.append(summary, h("div", { class: "ws-layout" }, h("div", { class: "ws-layout__map" }, mapBox, caps), h("div", { class: "ws-layout__form" }, form)));

  // ------------------------------------------------------------------ the map: the incident and the area
  const map = L.map(mapBox, { zoomAnimation: false, fadeAnimation: false }).setView([39.5, -98.35], 4);
  map.attributionControl.setPrefix(false);
  mapBox.setAttribute("role", "region");
  mapBox.setAttribute("aria-label", mapLabel());
  const { tile_url: tileUrl, tile_attribution: attribution } = config();
  if (tileUrl) L.tileLayer(tileUrl, { attribution: attribution ?? "", maxZoom: 19 }).addTo(map);
  else mapBox.classList.add("portal-map--plain");
  onLeave(() => map.remove());
  if (agency) {
    const area = L.geoJSON(agency as unknown as GeoJSON.Feature, { style: { color: "#005ea2", weight: 2, fillOpacity: 0.05 }, interactive: false }).addTo(map);
    if (area.getBounds().isValid()) map.fitBounds(area.getBounds(), { animate: false });
  }
  const drawn = L.layerGroup().addTo(map);
  const corners = (): [number, number][] => parseRing(state.corners) ?? [];
  const editCorners = (change: (c: [number, number][]) => [number, number][]) => {
    state.corners = change(corners())
      .map(([lon, lat]) => `${lon.toFixed(6)}, ${lat.toFixed(6)}`)
      .join("\n");
    cornersInput.value = state.corners;
    redraw();
  };
  map.on("click", (e: L.LeafletMouseEvent) => {
    if (state.shape === "route") return; // the route is drawn on the map page
    if (state.shape === "polygon") {
      editCorners((c) => [...c, [e.latlng.lng, e.latlng.lat]]);
    } else {
      state.lat = e.latlng.lat.toFixed(6);
      state.lon = e.latlng.lng.toFixed(6);
      (latField.querySelector("input") as HTMLInputElement).value = state.lat;
      (lonField.querySelector("input") as HTMLInputElement).value = state.lon;
      redraw();
    }
  });

  /** The area as drawn now, its size, and whether the caps allow it: one place for the page's check. */
  const measure = () => {
    const lat = Number(state.lat);
    const lon = Number(state.lon);
    const incident = state.lat && state.lon && Math.abs(lat) <= 90 && Math.abs(lon) <= 180 ? ([lon, lat] as [number, number]) : null;
    const radius = Number(state.radius);
    const ring = corners();
    const area =
      state.shape === "route" && route
        ? routeAreaM2(route.points, route.buffer_m)
        : state.shape === "circle"
          ? radius > 0
            ? circleAreaM2(radius)
            : 0
          : ring.length >= 3
            ? ringAreaM2(ring)
            : 0;
    const start = localToIso(state.start);
    const end = localToIso(state.end);
    const hours = start && end ? windowHours(start, end) : 0;
    return { incident, radius, ring, area, start, end, hours };
  };

  const redraw = () => {
    const m = measure();
    drawn.clearLayers();
    if (m.incident) {
      L.circleMarker([m.incident[1], m.incident[0]], { radius: 8, color: "#162e51", weight: 3, fillColor: "#d83933", fillOpacity: 1, interactive: false }).addTo(drawn);
      if (state.shape === "circle" && m.radius > 0) L.circle([m.incident[1], m.incident[0]], { radius: m.radius, color: "#e66f0e", weight: 2, interactive: false }).addTo(drawn);
    }
    if (state.shape === "route" && route) {
      const latlngs = route.points.map(([lon, lat]) => [lat, lon] as [number, number]);
      L.polyline(latlngs, { color: "#e66f0e", weight: 4, interactive: false }).addTo(drawn);
      for (const p of latlngs) L.circleMarker(p, { radius: 4, color: "#162e51", fillOpacity: 1, interactive: false }).addTo(drawn);
    }
    if (state.shape === "polygon" && m.ring.length) {
      const latlngs = m.ring.map(([lon, lat]) => [lat, lon] as [number, number]);
      (m.ring.length >= 3 ? L.polygon(latlngs, { color: "#e66f0e", weight: 2, interactive: false }) : L.polyline(latlngs, { color: "#e66f0e", weight: 2, interactive: false })).addTo(drawn);
      for (const p of latlngs) L.circleMarker(p, { radius: 4, color: "#e66f0e", fillOpacity: 1, interactive: false }).addTo(drawn);
    }
    mapBox.dataset.corners = String(m.ring.length);
    const areaOver = policy ? m.area > policy.max_request_area_m2 : false;
    const windowOver = policy ? m.hours > policy.max_request_window_hours : false;
    caps.replaceChildren(
      h(
        "p",
        { class: areaOver ? "ws-cap ws-cap--over" : "ws-cap", "data-cap": "area" },
        policy
          ? t(areaOver ? "ws.new.cap_area_over" : "ws.new.cap_area", { area: formatNumber(m.area), max: formatNumber(policy.max_request_area_m2) })
          : t("ws.new.cap_area_unknown", { area: formatNumber(m.area) }),
      ),
      h(
        "p",
        { class: windowOver ? "ws-cap ws-cap--over" : "ws-cap", "data-cap": "window" },
        policy
          ? t(windowOver ? "ws.new.cap_window_over" : "ws.new.cap_window", { hours: formatNumber(m.hours, 1), max: formatNumber(policy.max_request_window_hours, 1) })
          : t("ws.new.cap_window_unknown", { hours: formatNumber(m.hours, 1) }),
      ),
    );
  };
  redraw();
  if (route) {
    map.fitBounds(L.latLngBounds(route.points.map(([lon, lat]) => [lat, lon] as [number, number])).pad(0.3), { maxZoom: 17, animate: false });
  } else if (state.lat && state.lon) {
    const m = measure();
    if (m.incident) map.setView([m.incident[1], m.incident[0]], 16, { animate: false });
  }

  const fields: Record<string, string> = {
    "/body/case_number": "rq-case",
    "/body/category": "rq-category",
    "/body/incident": "rq-lat",
    "/body/radius_m": "rq-radius",
    "/body/area": "rq-corners",
    "/body/route": "rq-route",
    "/body/window": "rq-start",
    "/body/window/start": "rq-start",
    "/body/window/end": "rq-end",
    "/body/message": "rq-message",
  };
  const labels: Record<string, string> = {
    "rq-case": t("ws.new.case"),
    "rq-category": t("ws.new.category"),
    "rq-lat": t("ws.new.incident"),
    "rq-radius": t("ws.new.radius"),
    "rq-corners": t("ws.new.corners"),
    "rq-route": t("ws.new.route"),
    "rq-start": t("ws.new.window"),
    "rq-end": t("ws.new.end"),
    "rq-message": t("ws.new.message"),
  };
  // One key per request the officer means to create: a retry after a lost answer is the same request.
  let idempotencyKey = crypto.randomUUID();
  let sending = false;
  const send = async () => {
    if (sending) return;
    const m = measure();
    const errors: FieldError[] = [];
    if (!/^[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,63}$/.test(state.caseNumber.trim())) errors.push({ field: "rq-case", message: t("ws.map.bad_case") });
    if (!m.incident) errors.push({ field: "rq-lat", message: t("ws.new.bad_incident") });
    if (state.shape === "circle" && !(m.radius > 0)) errors.push({ field: "rq-radius", message: t("ws.map.bad_radius") });
    if (state.shape === "polygon" && (parseRing(state.corners) === null || m.ring.length < 3)) errors.push({ field: "rq-corners", message: t("ws.new.bad_corners") });
    if (policy && m.area > policy.max_request_area_m2) {
      errors.push({ field: { circle: "rq-radius", polygon: "rq-corners", route: "rq-route" }[state.shape], message: t("ws.new.cap_area_over", { area: formatNumber(m.area), max: formatNumber(policy.max_request_area_m2) }) });
    }
    if (!m.start) errors.push({ field: "rq-start", message: t("ws.new.bad_time") });
    if (!m.end) errors.push({ field: "rq-end", message: t("ws.new.bad_time") });
    if (m.start && m.end && m.hours <= 0) errors.push({ field: "rq-end", message: t("ws.new.bad_order") });
    if (policy && m.hours > policy.max_request_window_hours) {
      errors.push({ field: "rq-start", message: t("ws.new.cap_window_over", { hours: formatNumber(m.hours, 1), max: formatNumber(policy.max_request_window_hours, 1) }) });
    }
    if (!state.message.trim()) errors.push({ field: "rq-message", message: t("ws.new.bad_message") });
    if (errors.length) {
      showErrors(form, summary, errors);
      return;
    }
    const body: RequestCreate = {
      case_number: state.caseNumber.trim(),
      category: state.category as RequestCreate["category"],
      incident: { type: "Point", coordinates: m.incident! },
      window: { start: m.start!, end: m.end! },
      message: state.message.trim(),
      ...(state.shape === "route" && route
        ? { route: routeBody(route) }
        : state.shape === "circle"
          ? { radius_m: m.radius }
          : { area: { type: "Polygon", coordinates: [closeRing(m.ring)] } }),
    };
    sending = true;
    const outcome = await attempt(() => requests().POST("/v1/requests", { body, headers: { ...auth, "Idempotency-Key": idempotencyKey } }));
    sending = false;
    if (!outcome.ok) {
      if (!outcome.failure.retryable) idempotencyKey = crypto.randomUUID();
      showErrors(form, summary, errorsFromFailure(outcome.failure, fields, labels), outcome.failure.retryable ? () => void send() : undefined);
      return;
    }
    navigate(`/agency/requests/${outcome.data.id}`);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
}
