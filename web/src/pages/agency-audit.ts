/** The auditor's page of the agency workspace: the agency's audit trail searched by time, actor, action, case,
 * target and place (a circle, a rectangle or a polygon, drawn on the map or typed), the records as a list and on
 * the map, page by page through the API's `next` links, and the same filters exported as JSON Lines or CSV with
 * the command that verifies the file offline. Every search and export is itself in the trail (the API's rule). */

import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { attempt, bearer, failureOf, registry } from "../api/client";
import type { components } from "../api/registry";
import { config } from "../config";
import { h } from "../dom";
import { errorsFromFailure, errorText, showErrors, textField } from "../forms";
import { formatDate, formatNumber, t, type MessageKey } from "../i18n";
import { en } from "../i18n/en";
import { onLeave } from "../router";
import { auditor, auditQuery, type Shape } from "../audit";
import { parseRing } from "../workspace";
import { roleName } from "./agency";
import { signInNeeded } from "./agency-common";

type TrailRecord = components["schemas"]["TrailRecord"];

export async function auditPage(main: HTMLElement): Promise<void> {
  const user = auditor();
  if (!user) {
    signInNeeded(main);
    return;
  }
  main.classList.add("portal-main--wide");
  main.append(
    h(
      "nav",
      { class: "ws-nav", "aria-label": t("ws.nav.label") },
      h("ul", { class: "usa-list usa-list--unstyled ws-nav__list" }, h("li", { class: "ws-nav__item" }, h("a", { href: "/agency/audit", class: "ws-nav__link", "aria-current": "page" }, t("audit.nav")))),
      h("p", { class: "ws-nav__who" }, t("ws.nav.who", { role: t("role.auditor"), agency: user.agency })),
    ),
    h("h1", {}, t("audit.title")),
    h("p", { class: "usa-intro" }, t("audit.intro")),
  );
  const auth = bearer(user.token);
  const agencyOutcome = await attempt(() => registry().GET("/v1/agencies/{slug}", { params: { path: { slug: user.agency } } }));

  const state = { since: "", until: "", actor: "", action: "", caseNumber: "", target: "", shape: "none" as Shape, lat: "", lon: "", radius: "200", bbox: "", corners: "" };
  let rectangleStart: [number, number] | null = null;

  const field = (id: string, key: Parameters<typeof t>[0], k: keyof typeof state, extra: Partial<Parameters<typeof textField>[0]> = {}) =>
    textField({ id, label: t(key), value: String(state[k]), onInput: (v) => (((state as Record<string, string>)[k] = v), redraw()), ...extra });
  const inputOf = (el: HTMLElement) => el.querySelector("input, textarea") as HTMLInputElement;
  const sinceField = field("au-since", "audit.since", "since", { type: "datetime-local" });
  const untilField = field("au-until", "audit.until", "until", { type: "datetime-local" });
  const latField = field("au-lat", "ws.map.lat", "lat", { inputmode: "decimal" });
  const lonField = field("au-lon", "ws.map.lon", "lon", { inputmode: "decimal" });
  const radiusField = field("au-radius", "audit.radius", "radius", { inputmode: "numeric", width: "small" });
  const bboxField = field("au-bbox", "audit.bbox", "bbox", { hint: t("audit.bbox_hint") });
  const cornersInput = h("textarea", { class: "usa-textarea ws-corners", id: "au-corners", name: "au-corners", rows: 4, "aria-describedby": "au-corners-hint" });
  cornersInput.addEventListener("input", () => ((state.corners = cornersInput.value), redraw()));
  const cornersField = h(
    "div",
    { class: "usa-form-group", "data-field": "au-corners" },
    h("label", { class: "usa-label", for: "au-corners" }, t("ws.new.corners")),
    h("div", { class: "usa-hint", id: "au-corners-hint" }, t("ws.new.corners_hint")),
    cornersInput,
  );
  const circleGroup = h("div", {}, h("div", { class: "place-picker__row" }, latField, lonField), radiusField);
  const groups: Record<Shape, HTMLElement | null> = { none: null, circle: circleGroup, rectangle: bboxField, polygon: cornersField };
  const placeHint = h("p", { class: "usa-hint", id: "au-place-hint" });
  const setShape = (shape: Shape) => {
    state.shape = shape;
    rectangleStart = null;
    for (const [k, el] of Object.entries(groups)) if (el) el.hidden = k !== shape;
    placeHint.textContent = t(`audit.place_hint_${shape}`);
    mapBox.setAttribute("aria-label", t(`audit.map_label_${shape}`));
    redraw();
  };
  const shapeRadio = (value: Shape) =>
    h(
      "div",
      { class: "usa-radio" },
      h("input", { class: "usa-radio__input", type: "radio", id: `au-shape-${value}`, name: "au-shape", value, checked: value === state.shape, onchange: () => setShape(value) }),
      h("label", { class: "usa-radio__label", for: `au-shape-${value}` }, t(`audit.shape_${value}`)),
    );

  const summary = h("div", { class: "error-summary-host" });
  const status = h("p", { class: "au-status", role: "status", "aria-live": "polite" });
  const list = h("ol", { class: "usa-list usa-list--unstyled au-list", "aria-label": t("audit.results") });
  const more = h("div", { class: "portal-actions" });
  const exportStatus = h("p", { role: "status", "aria-live": "polite" });
  const mapBox = h("div", { class: "ws-map ws-map--draw", id: "au-map", role: "region" });

  const form = h(
    "form",
    { class: "usa-form au-form", novalidate: true },
    h(
      "fieldset",
      { class: "usa-fieldset ws-fieldset" },
      h("legend", { class: "usa-legend" }, t("audit.place")),
      (["none", "circle", "rectangle", "polygon"] as Shape[]).map(shapeRadio),
      placeHint,
      circleGroup,
      bboxField,
      cornersField,
    ),
    h("fieldset", { class: "usa-fieldset ws-fieldset" }, h("legend", { class: "usa-legend" }, t("audit.when")), h("div", { class: "place-picker__row" }, sinceField, untilField)),
    field("au-actor", "audit.actor", "actor", { hint: t("audit.actor_hint") }),
    field("au-action", "audit.action", "action", { hint: t("audit.action_hint") }),
    field("au-case", "audit.case", "caseNumber"),
    field("au-target", "audit.target", "target", { hint: t("audit.target_hint") }),
    h("button", { type: "submit", class: "usa-button" }, t("audit.search")),
  );
  const exportBox = h(
    "section",
    { class: "portal-card au-export", "aria-labelledby": "au-export-title" },
    h("h2", { id: "au-export-title" }, t("audit.export_title")),
    h("p", {}, t("audit.export_intro")),
    h(
      "div",
      { class: "portal-actions" },
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void download("jsonl") }, t("audit.export_jsonl")),
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void download("csv") }, t("audit.export_csv")),
    ),
    exportStatus,
    h("p", {}, t("audit.verify_intro")),
    h("pre", { class: "au-command" }, h("code", {}, `make audit-verify-export FILE=audit-${user.agency}.jsonl`)),
    h("p", { class: "usa-hint" }, t("audit.verify_hint")),
  );
  main.append(
    summary,
    h(
      "div",
      { class: "ws-layout" },
      h("div", { class: "ws-layout__map" }, mapBox),
      h("div", { class: "ws-layout__form" }, form),
      h("div", { class: "ws-results" }, status, list, more, exportBox),
    ),
  );

  // ------------------------------------------------------------------ the map: the place and the records
  const map = L.map(mapBox, { zoomAnimation: false, fadeAnimation: false }).setView([39.5, -98.35], 4);
  map.attributionControl.setPrefix(false);
  const { tile_url: tileUrl, tile_attribution: attribution } = config();
  if (tileUrl) L.tileLayer(tileUrl, { attribution: attribution ?? "", maxZoom: 19 }).addTo(map);
  else mapBox.classList.add("portal-map--plain");
  onLeave(() => map.remove());
  if (agencyOutcome.ok) {
    const area = L.geoJSON(agencyOutcome.data as unknown as GeoJSON.Feature, { style: { color: "#005ea2", weight: 2, fillOpacity: 0.03 }, interactive: false }).addTo(map);
    if (area.getBounds().isValid()) map.fitBounds(area.getBounds(), { animate: false });
  }
  const drawn = L.layerGroup().addTo(map);
  const found = L.layerGroup().addTo(map);
  const setInput = (el: HTMLElement, value: string, k: keyof typeof state) => {
    (state as Record<string, string>)[k] = value;
    inputOf(el).value = value;
  };
  map.on("click", (e: L.LeafletMouseEvent) => {
    const lon = e.latlng.lng;
    const lat = e.latlng.lat;
    if (state.shape === "circle") {
      setInput(latField, lat.toFixed(6), "lat");
      setInput(lonField, lon.toFixed(6), "lon");
    } else if (state.shape === "rectangle") {
      if (!rectangleStart) {
        rectangleStart = [lon, lat];
        setInput(bboxField, "", "bbox");
      } else {
        const [x, y] = rectangleStart;
        const box = [Math.min(x, lon), Math.min(y, lat), Math.max(x, lon), Math.max(y, lat)].map((n) => n.toFixed(6));
        setInput(bboxField, box.join(", "), "bbox");
        rectangleStart = null;
      }
    } else if (state.shape === "polygon") {
      state.corners = [state.corners.trim(), `${lon.toFixed(6)}, ${lat.toFixed(6)}`].filter(Boolean).join("\n");
      cornersInput.value = state.corners;
    }
    redraw();
  });
  const redraw = () => {
    drawn.clearLayers();
    const style = { color: "#e66f0e", weight: 2, interactive: false };
    if (state.shape === "circle") {
      const lat = Number(state.lat);
      const lon = Number(state.lon);
      if (state.lat && state.lon && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
        L.circleMarker([lat, lon], { radius: 6, color: "#162e51", fillColor: "#e66f0e", fillOpacity: 1, interactive: false }).addTo(drawn);
        if (Number(state.radius) > 0) L.circle([lat, lon], { radius: Number(state.radius), ...style }).addTo(drawn);
      }
    } else if (state.shape === "rectangle") {
      const p = state.bbox.split(",").map((x) => Number(x.trim()));
      if (p.length === 4 && p.every(Number.isFinite)) L.rectangle([[p[1]!, p[0]!], [p[3]!, p[2]!]], style).addTo(drawn);
      if (rectangleStart) L.circleMarker([rectangleStart[1], rectangleStart[0]], { radius: 4, ...style, fillOpacity: 1 }).addTo(drawn);
    } else if (state.shape === "polygon") {
      const ring = parseRing(state.corners) ?? [];
      const latlngs = ring.map(([lon, lat]) => [lat, lon] as [number, number]);
      if (latlngs.length >= 3) L.polygon(latlngs, style).addTo(drawn);
      else if (latlngs.length) L.polyline(latlngs, style).addTo(drawn);
      for (const p of latlngs) L.circleMarker(p, { radius: 4, ...style, fillOpacity: 1 }).addTo(drawn);
    }
  };

  // ------------------------------------------------------------------ search, page by page
  let current: Record<string, string> = {};
  let shown = 0;
  const item = (r: TrailRecord): HTMLElement => {
    const p = r.properties;
    // What a record concerns, in words (a kind the page does not know yet, as the trail names it).
    const kind = p.subject_type ?? "";
    const kindWords = `audit.subject.${kind}` in en ? t(`audit.subject.${kind}` as MessageKey) : kind;
    const subject = p.subject_id ? t("audit.record_subject", { type: kindWords, id: p.subject_id }) : null;
    return h(
      "li",
      { class: "portal-card au-record", "data-seq": String(p.seq), "data-case": p.case_number ?? "" },
      // The action in words, with the trail's own name for it (what the Action filter takes).
      h(
        "p",
        { class: "au-record__title" },
        h("strong", {}, `audit.action.${p.action}` in en ? t(`audit.action.${p.action}` as MessageKey) : p.action),
        `audit.action.${p.action}` in en ? h("span", { class: "au-record__code" }, ` (${p.action})`) : null,
        " · ",
        formatDate(p.at, true),
      ),
      h("p", {}, t("audit.record_actor", { actor: p.actor, role: roleName(p.actor_role) })),
      h("p", {}, p.case_number ? t("audit.record_case", { case: p.case_number }) : t("audit.record_no_case")),
      subject ? h("p", { class: "au-record__subject" }, subject) : null,
      h("p", { class: "usa-hint" }, r.geometry ? t("audit.record_place") : t("audit.record_no_place"), " · ", t("audit.record_seq", { seq: p.seq })),
    );
  };
  const load = async (cursor: string | null) => {
    more.replaceChildren();
    const outcome = await attempt(() =>
      registry().GET("/v1/audit/records", { params: { query: { limit: 50, ...current, ...(cursor ? { cursor } : {}) } }, headers: auth }),
    );
    if (!outcome.ok) {
      status.textContent = "";
      showErrors(form, summary, errorsFromFailure(outcome.failure, FIELDS), outcome.failure.retryable ? () => void load(cursor) : undefined);
      return;
    }
    const page = outcome.data;
    for (const r of page.features) {
      list.append(item(r));
      if (r.geometry)
        L.geoJSON(r as unknown as GeoJSON.Feature, { style: { color: "#d83933", weight: 2, fillOpacity: 0.1 }, pointToLayer: (_f, ll) => L.circleMarker(ll, { radius: 6, color: "#d83933" }) })
          .bindTooltip(`${r.properties.action} · ${r.properties.case_number ?? ""}`)
          .addTo(found);
    }
    // The first page brings the place searched (or else the records found) into view.
    if (!cursor) {
      const bounds = L.featureGroup([...drawn.getLayers(), ...(drawn.getLayers().length ? [] : found.getLayers())]).getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { animate: false, maxZoom: 16, padding: [24, 24] });
    }
    shown += page.features.length;
    mapBox.dataset.records = String(found.getLayers().length);
    const next = (page.links ?? []).find((l) => l.rel === "next")?.href;
    const nextCursor = next ? new URL(next, "http://x").searchParams.get("cursor") : null;
    status.textContent = shown ? t(nextCursor ? "audit.shown_more" : "audit.shown", { n: formatNumber(shown) }) : t("audit.none");
    if (nextCursor) more.append(h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => void load(nextCursor) }, t("audit.more")));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const { query, errors } = auditQuery(state);
    if (errors.length) {
      showErrors(form, summary, errors);
      return;
    }
    showErrors(form, summary, []);
    current = query;
    shown = 0;
    list.replaceChildren();
    found.clearLayers();
    void load(null);
  });

  // ------------------------------------------------------------------ export, through the API with the token
  const download = async (format: "jsonl" | "csv") => {
    const { query, errors } = auditQuery(state);
    if (errors.length) {
      showErrors(form, summary, errors);
      return;
    }
    exportStatus.textContent = t("audit.exporting");
    const url = new URL(config().registry_api_url.replace(/\/$/, "") + "/v1/audit/export");
    for (const [k, v] of Object.entries({ ...query, format })) url.searchParams.set(k, v);
    let response: Response;
    try {
      response = await fetch(url, { headers: auth });
    } catch {
      exportStatus.textContent = t("errors.network");
      return;
    }
    if (!response.ok) {
      const failure = failureOf(response.status, await response.json().catch(() => null));
      const first = errorsFromFailure(failure, FIELDS)[0];
      exportStatus.textContent = first ? errorText(first) : "";
      return;
    }
    const blob = await response.blob();
    const name = `audit-${user.agency}.${format}`;
    const href = URL.createObjectURL(blob);
    const a = h("a", { href, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
    exportStatus.textContent = t("audit.exported", { name });
  };
  setShape("none");
}

/** The API's query parameters and the fields that typed them, for its errors. */
const FIELDS: Record<string, string> = {
  "/query/since": "au-since",
  "/query/until": "au-until",
  "/query/actor": "au-actor",
  "/query/action": "au-action",
  "/query/case_number": "au-case",
  "/query/target": "au-target",
  "/query/near": "au-lat",
  "/query/radius_m": "au-radius",
  "/query/bbox": "au-bbox",
  "/query/polygon": "au-corners",
};
