/** The workspace map's route canvass: the path a suspect took, drawn point by point on the map (or typed, one
 * "longitude, latitude" a line), with how far either side of it to look, when it was travelled (a start and
 * walking or driving) and the margin around each camera's minute; the answer (geo_query's route search) drawn as
 * the path and its buffer, and listed in the order the path passed the cameras, each with the footage to ask
 * for. From there a footage request along the same route asks each owner only for their minutes. */

import L from "leaflet";
import { attempt, bearer, geo } from "../api/client";
import { config } from "../config";
import { h, uid } from "../dom";
import { geocode } from "../geocoder";
import { clearErrors, errorsFromFailure, showErrors, textField, type FieldError } from "../forms";
import { formatDate, formatNumber, formatTime, t, type MessageKey } from "../i18n";
import {
  encodeRoute,
  isoToLocal,
  localToIso,
  parseRing,
  pathLengthM,
  routeBody,
  type DrawnRoute,
  type RouteCameraFeature,
  type RouteCollection,
} from "../workspace";

const PATH_STYLE = { color: "#162e51", weight: 4, interactive: false };
const MAX_MARGIN_MIN = 60;

/** Why the service refused a path, in the officer's words: its reasons are its own English sentences, and which
 * one it was is known from the path itself (too few distinct points, across the antimeridian, or too long). */
function pathRefusal(points: [number, number][]): string {
  if (new Set(points.map(([lon, lat]) => `${lon},${lat}`)).size < 2) return t("ws.route.too_few");
  const lons = points.map(([lon]) => lon);
  if (Math.max(...lons) - Math.min(...lons) > 180) return t("ws.route.antimeridian");
  return t("ws.route.too_long", { km: formatNumber(pathLengthM(points) / 1000, 1) });
}

export interface RouteModeContext {
  map: L.Map;
  mapBox: HTMLElement;
  form: HTMLFormElement;
  summary: HTMLElement;
  results: HTMLElement;
  found: L.LayerGroup;
  token: string;
  policyRadius: number | null;
  caseNumber: () => string;
  casePattern: RegExp;
  /** The filters' query, as the other searches send it. */
  query: () => Record<string, string | boolean>;
  left: () => boolean;
  /** A route to start from (carried back from a new request's page). */
  initial: DrawnRoute | null;
}

export interface RouteMode {
  fieldset: HTMLElement;
  addPoint(lat: number, lon: number): void;
  search(): Promise<void>;
  /** Shows the path being drawn (route mode chosen) or hides it. */
  setActive(active: boolean): void;
}

export function routeMode(ctx: RouteModeContext): RouteMode {
  const init = ctx.initial;
  const state = {
    points: init ? init.points.map(([lon, lat]) => `${lon.toFixed(6)}, ${lat.toFixed(6)}`).join("\n") : "",
    buffer: init ? String(init.buffer_m) : "50",
    start: isoToLocal(init ? Date.parse(init.start) : Date.now() - 3_600_000),
    speed: init?.speed ?? ("driving"),
    margin: init ? String(init.margin_s / 60) : "2",
  };
  const drawing = L.layerGroup();

  const pointsInput = h("textarea", {
    class: "usa-textarea ws-corners",
    id: "rt-points",
    name: "rt-points",
    rows: 4,
    spellcheck: "false",
    "aria-describedby": "rt-points-hint",
  });
  pointsInput.value = state.points;
  pointsInput.addEventListener("input", () => {
    state.points = pointsInput.value;
    redraw();
  });
  const count = h("p", { class: "usa-hint ws-route-count", "aria-live": "polite" });
  const pointsField = h(
    "div",
    { class: "usa-form-group", "data-field": "rt-points" },
    h("label", { class: "usa-label", for: "rt-points" }, t("ws.route.points")),
    h("div", { class: "usa-hint", id: "rt-points-hint" }, t("ws.route.points_hint")),
    pointsInput,
    count,
    h(
      "div",
      { class: "portal-actions ws-draw-actions" },
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => edit((p) => p.slice(0, -1)) }, t("ws.route.undo")),
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => edit(() => []) }, t("ws.route.clear")),
    ),
  );
  // A point by its address too (where the deployment has a geocoder): the first place found, named so the
  // investigator sees which it was (and can take it back with "Remove the last point").
  const addressField = config().geocoder_url
    ? textField({ id: "rt-address", label: t("ws.route.address"), hint: t("ws.route.address_hint"), value: "", optional: true, onInput: () => {} })
    : null;
  const addressStatus = h("p", { class: "usa-hint", role: "status" });
  const addAddress = async () => {
    const input = addressField?.querySelector("input");
    const query = input?.value.trim() ?? "";
    clearErrors(ctx.form);
    ctx.summary.replaceChildren();
    addressStatus.textContent = "";
    if (!query) return;
    const found = await geocode(query);
    if (!found?.length) {
      showErrors(ctx.form, ctx.summary, [{ field: "rt-address", message: t(found ? "ws.route.address_none" : "ws.route.address_failed") }]);
      return;
    }
    const first = found[0]!;
    edit((p) => [...p, [first.lon, first.lat]]);
    addressStatus.textContent = t("ws.route.address_added", { name: first.name || `${first.lat.toFixed(6)}, ${first.lon.toFixed(6)}` });
    input!.value = "";
  };
  if (addressField) {
    addressField.querySelector("input")!.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault(); // Enter here adds the point: it does not search yet
      void addAddress();
    });
    addressField.append(
      h("button", { type: "button", class: "usa-button usa-button--outline ws-address-add", onclick: () => void addAddress() }, t("ws.route.address_add")),
      addressStatus,
    );
  }
  const bufferField = textField({
    id: "rt-buffer",
    label: t("ws.route.buffer"),
    hint: ctx.policyRadius ? t("ws.route.buffer_hint", { max: formatNumber(ctx.policyRadius) }) : undefined,
    value: state.buffer,
    inputmode: "numeric",
    width: "small",
    onInput: (v) => ((state.buffer = v), redraw()),
  });
  const startField = textField({
    id: "rt-start",
    label: t("ws.route.start"),
    hint: t("ws.route.start_hint"),
    type: "datetime-local",
    value: state.start,
    onInput: (v) => (state.start = v),
  });
  const speedRadio = (value: "walking" | "driving") =>
    h(
      "div",
      { class: "usa-radio" },
      h("input", {
        class: "usa-radio__input",
        type: "radio",
        id: `rt-speed-${value}`,
        name: "rt-speed",
        value,
        checked: value === state.speed,
        onchange: () => (state.speed = value),
      }),
      h("label", { class: "usa-radio__label", for: `rt-speed-${value}` }, t(`ws.route.speed_${value}` as MessageKey)),
    );
  const speedField = h(
    "fieldset",
    { class: "usa-fieldset ws-fieldset", "data-field": "rt-speed-walking" },
    h("legend", { class: "usa-legend" }, t("ws.route.speed")),
    speedRadio("walking"),
    speedRadio("driving"),
  );
  const marginField = textField({
    id: "rt-margin",
    label: t("ws.route.margin"),
    hint: t("ws.route.margin_hint"),
    value: state.margin,
    inputmode: "decimal",
    width: "small",
    onInput: (v) => (state.margin = v),
  });

  const fieldset = h(
    "fieldset",
    { class: "usa-fieldset ws-fieldset ws-route", hidden: true },
    h("legend", { class: "usa-legend" }, t("ws.route.legend")),
    pointsField,
    addressField,
    bufferField,
    startField,
    speedField,
    marginField,
  );

  const points = (): [number, number][] => parseRing(state.points) ?? [];
  const edit = (change: (p: [number, number][]) => [number, number][]) => {
    state.points = change(points())
      .map(([lon, lat]) => `${lon.toFixed(6)}, ${lat.toFixed(6)}`)
      .join("\n");
    pointsInput.value = state.points;
    redraw();
  };

  const redraw = () => {
    drawing.clearLayers();
    const p = points();
    const latlngs = p.map(([lon, lat]) => [lat, lon] as [number, number]);
    if (latlngs.length >= 2) L.polyline(latlngs, PATH_STYLE).addTo(drawing);
    latlngs.forEach((ll, i) =>
      L.circleMarker(ll, { radius: i === 0 ? 7 : 5, color: "#162e51", weight: 2, fillColor: i === 0 ? "#d83933" : "#fff", fillOpacity: 1, interactive: false }).addTo(drawing),
    );
    ctx.mapBox.dataset.points = String(p.length);
    count.textContent = p.length === 1 ? t("ws.route.count_one") : t("ws.route.count", { n: p.length });
  };
  redraw();

  const fields: Record<string, string> = {
    "/body/path": "rt-points",
    "/body/crs": "rt-points",
    "/body/buffer_m": "rt-buffer",
    "/body/start": "rt-start",
    "/body/times": "rt-start",
    "/body/speed": "rt-speed-walking",
    "/body/margin_s": "rt-margin",
    "/query/case_number": "ws-case",
  };
  const labels: Record<string, string> = {
    "rt-points": t("ws.route.points"),
    "rt-buffer": t("ws.route.buffer"),
    "rt-start": t("ws.route.start"),
    "rt-speed-walking": t("ws.route.speed"),
    "rt-margin": t("ws.route.margin"),
    "ws-case": t("ws.map.case"),
  };

  const search = async () => {
    clearErrors(ctx.form);
    ctx.summary.replaceChildren();
    const errors: FieldError[] = [];
    const p = parseRing(state.points);
    if (p === null) errors.push({ field: "rt-points", message: t("ws.route.bad_points") });
    else if (p.length < 2) errors.push({ field: "rt-points", message: t("ws.route.too_few") });
    const buffer = state.buffer.trim() === "" ? NaN : Number(state.buffer);
    if (!(buffer > 0)) errors.push({ field: "rt-buffer", message: t("ws.map.bad_radius") });
    else if (ctx.policyRadius && buffer > ctx.policyRadius) errors.push({ field: "rt-buffer", message: t("ws.map.radius_over", { max: formatNumber(ctx.policyRadius) }) });
    const start = localToIso(state.start);
    if (!start) errors.push({ field: "rt-start", message: t("ws.new.bad_time") });
    const margin = state.margin.trim() === "" ? NaN : Number(state.margin);
    if (!(margin >= 0 && margin <= MAX_MARGIN_MIN)) errors.push({ field: "rt-margin", message: t("ws.route.bad_margin", { max: MAX_MARGIN_MIN }) });
    const caseNumber = ctx.caseNumber();
    if (caseNumber && !ctx.casePattern.test(caseNumber)) errors.push({ field: "ws-case", message: t("ws.map.bad_case") });
    if (errors.length) {
      showErrors(ctx.form, ctx.summary, errors);
      return;
    }
    const route: DrawnRoute = { points: p!, buffer_m: buffer, start: start!, speed: state.speed, margin_s: Math.round(margin * 60) };
    ctx.results.replaceChildren(h("p", { role: "status" }, t("ws.map.searching")));
    const query = { ...ctx.query(), ...(caseNumber ? { case_number: caseNumber } : {}), contacts: false, limit: 1000 };
    const outcome = await attempt(() =>
      geo().POST("/v1/cameras/route", { params: { query: query as never }, body: routeBody(route), headers: bearer(ctx.token) }),
    );
    if (ctx.left()) return;
    if (!outcome.ok) {
      ctx.results.replaceChildren();
      const refused = errorsFromFailure(outcome.failure, fields, labels);
      const shown = outcome.failure.errors.some((e) => e.pointer.startsWith("/body/path"))
        ? [...refused.filter((e) => e.field !== "rt-points"), { field: "rt-points", message: pathRefusal(route.points) }]
        : refused;
      showErrors(ctx.form, ctx.summary, shown, outcome.failure.retryable ? () => void search() : undefined);
      return;
    }
    show(outcome.data, route, caseNumber);
  };

  const show = (answer: RouteCollection, route: DrawnRoute, caseNumber: string) => {
    const found = ctx.found;
    found.clearLayers();
    const area = L.geoJSON(answer.route.area, {
      style: { color: "#e66f0e", weight: 2, dashArray: "6 4", fillColor: "#e66f0e", fillOpacity: 0.12 },
      interactive: false,
    }).addTo(found);
    answer.features.forEach((c, i) => {
      const [lon, lat] = c.geometry.coordinates as [number, number];
      const gone = c.properties.footage_likely_available === false;
      // Numbered as in the list, so the map and the list are read together.
      L.circleMarker([lat, lon], { radius: 6, color: "#1b1b1b", weight: 2, fillColor: gone ? "#a9aeb1" : "#00a91c", fillOpacity: 1, interactive: false })
        .bindTooltip(String(i + 1), { permanent: true, direction: "right", className: "ws-rank" })
        .addTo(found);
    });
    if (area.getBounds().isValid()) ctx.map.fitBounds(area.getBounds().pad(0.15), { maxZoom: 19, animate: false });

    const n = answer.features.length;
    const heading = h(
      "h2",
      { id: "ws-results-heading", class: "ws-h2", tabindex: "-1" },
      n === 1 ? t("ws.route.results_one") : t("ws.route.results", { n }),
    );
    const more = answer.links.some((l) => l.rel === "next");
    const params = new URLSearchParams({ route: encodeRoute(route), ...(caseNumber ? { case: caseNumber } : {}) });
    ctx.results.replaceChildren(
      ...[
      heading,
      h(
        "p",
        { class: "ws-route-summary" },
        t("ws.route.summary", {
          km: formatNumber(answer.route.length_m / 1000, 2),
          m: formatNumber(route.buffer_m),
          from: `${formatDate(answer.route.starts_at, true)}`,
          to: formatTime(answer.route.ends_at),
        }),
      ),
      more ? h("p", { class: "usa-hint" }, t("ws.route.more")) : null,
      n ? null : h("p", {}, t("ws.route.none")),
      h("ol", { class: "usa-list usa-list--unstyled ws-result-list ws-route-list" }, answer.features.map((c, i) => item(c, i + 1))),
      n
        ? h(
            "div",
            { class: "portal-actions" },
            h("a", { class: "usa-button", href: `/agency/requests/new?${params.toString()}` }, t("ws.route.request")),
          )
        : null,
      ].filter((x) => x !== null),
    );
    heading.focus();
  };

  const item = (c: RouteCameraFeature, rank: number) => {
    const p = c.properties;
    const label = p.label ? `${p.label} — ` : "";
    const kind = t(`ws.kind.${p.owner_kind}` as MessageKey);
    const placement = p.placement ? t(`ws.placement.${p.placement}` as MessageKey) : t("ws.placement.unknown");
    const gone = p.footage_likely_available === false;
    const footage =
      p.footage_until != null
        ? gone
          ? t("ws.route.footage_gone", { when: formatDate(p.footage_until, true) })
          : t("ws.route.footage_until", { when: formatDate(p.footage_until, true) })
        : t("ws.route.footage_unknown");
    const headingId = uid("ws-route-item");
    return h(
      "li",
      {
        class: `ws-result${gone ? " ws-result--gone" : ""}`,
        "data-camera": c.id,
        "data-window-start": p.window.start,
        "data-window-end": p.window.end,
        "aria-labelledby": headingId,
      },
      h(
        "h3",
        { class: "ws-result__title", id: headingId },
        t("ws.route.item", { rank, along: formatNumber(p.along_m), m: formatNumber(p.distance_m ?? 0) }),
      ),
      h("p", { class: "ws-result__line" }, `${label}${kind} · ${placement}`),
      h("p", { class: "ws-result__line" }, t("ws.route.passed", { when: formatTime(p.passes_at) })),
      h(
        "p",
        { class: "ws-result__line ws-route-window" },
        h("strong", {}, t("ws.route.window")),
        " ",
        `${formatTime(p.window.start)} – ${formatTime(p.window.end)}`,
      ),
      h("p", { class: `ws-result__line${gone ? " ws-route-gone" : ""}` }, footage),
    );
  };

  return {
    fieldset,
    addPoint(lat, lon) {
      edit((p) => [...p, [lon, lat]]);
    },
    search,
    setActive(active) {
      fieldset.hidden = !active;
      if (active) drawing.addTo(ctx.map);
      else drawing.remove();
      const p = points();
      if (active && p.length) {
        ctx.map.fitBounds(L.latLngBounds(p.map(([lon, lat]) => [lat, lon] as [number, number])).pad(0.3), { maxZoom: 17, animate: false });
      }
      ctx.mapBox.setAttribute("aria-label", active ? t("ws.route.map_label") : t("ws.map.map_label"));
    },
  };
}
