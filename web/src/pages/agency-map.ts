/** The investigator's map: the agency's jurisdiction and every camera shared with it (clustered), the
 * filters, and a search around an incident — a click, typed lon/lat, or a CAD's x/y in its EPSG code —
 * answered as a ranked list with distance, bearing and whether each camera faces the incident. An owner's
 * contact is read only on demand, for a case. Everything the map does, the form and the list do too. */

import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { attempt, bearer, geo, registry } from "../api/client";
import { clusterLayer } from "../clusters";
import { config } from "../config";
import { canvasRenderer } from "../map";
import { focus, h, uid } from "../dom";
import { clearErrors, errorsFromFailure, failureText, showErrors, textField, type FieldError } from "../forms";
import { formatDate, formatNumber, t, type MessageKey } from "../i18n";
import { onLeave } from "../router";
import { wedge } from "../wedge";
import {
  agencyUser,
  compass,
  countCameras,
  isAgencyAdmin,
  mapUser,
  TILE_MAP_ABOVE,
  tileFilter,
  decodeRoute,
  faces,
  filterQuery,
  loadAllCameras,
  localToIso,
  OWNER_KINDS,
  PageFailure,
  PLACEMENTS,
  type AgencyFeature,
  type CameraFeature,
  type CameraFilters,
} from "../workspace";
import { staffToken } from "../staff";
import type { CameraTiles } from "../camera-tiles";
import { signInNeeded, workspaceNav } from "./agency-common";
import { coverageControl } from "./agency-coverage";
import { routeMode } from "./agency-route";

const DEFAULT_RANGE_M = 30;
const CASE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._:/#-]{0,63}$/;

/** What the officer typed in the search form, kept while the tab lives: the page is drawn anew when the language
 * changes (and when the officer comes back to it), and a case number and a place typed mid-search must not be
 * lost on the way. */
const typed = {
  lon: "",
  lat: "",
  x: "",
  y: "",
  crs: "",
  caseNumber: "",
  k: "10",
  radius: "",
  incidentAt: "",
};

export async function agencyMapPage(main: HTMLElement): Promise<void> {
  const user = mapUser();
  // An agency admin may search and see the coverage layer; contacts and requests are the workspace roles' only.
  const worker = agencyUser() !== null;
  if (!user) {
    signInNeeded(main);
    return;
  }
  const auth = bearer(user.token);
  main.classList.add("portal-main--wide");
  main.append(workspaceNav("/agency"), h("h1", {}, t("ws.map.title")), h("p", { class: "usa-intro" }, t("ws.map.intro")));

  const agencyOutcome = await attempt(() =>
    registry().GET("/v1/agencies/{slug}", { params: { path: { slug: user.agency } }, headers: auth }),
  );
  const agency: AgencyFeature | null = agencyOutcome.ok ? (agencyOutcome.data) : null;

  const status = h("p", { class: "ws-status", role: "status", "aria-live": "polite" }, t("ws.map.loading"));
  const mapBox = h("div", { class: "ws-map", id: "ws-map" });
  const legend = h(
    "ul",
    { class: "usa-list usa-list--unstyled ws-legend" },
    h("li", {}, h("span", { class: "ws-swatch ws-swatch--camera", "aria-hidden": "true" }), t("ws.map.legend_camera")),
    h("li", { "data-legend": "place" }, h("span", { class: "ws-swatch ws-swatch--facing", "aria-hidden": "true" }), t("ws.map.legend_facing")),
    h("li", { "data-legend": "route", hidden: true }, h("span", { class: "ws-swatch ws-swatch--path", "aria-hidden": "true" }), t("ws.route.legend_path")),
    h("li", { "data-legend": "route", hidden: true }, h("span", { class: "ws-swatch ws-swatch--gone", "aria-hidden": "true" }), t("ws.route.legend_gone")),
    h("li", { "data-legend-clusters": "" }, h("span", { class: "ws-swatch ws-swatch--cluster", "aria-hidden": "true" }), t("ws.map.legend_cluster")),
  );

  // ---------------------------------------------------------------- the form: where, which cameras, filters
  const state = typed;
  const caseInLink = new URLSearchParams(location.search).get("case");
  if (caseInLink) state.caseNumber = caseInLink;
  const summary = h("div", { class: "error-summary-host" });
  const coordMode = { value: "lonlat" as "lonlat" | "xy" };
  const lonField = textField({ id: "ws-lon", label: t("ws.map.lon"), value: state.lon, inputmode: "decimal", onInput: (v) => (state.lon = v) });
  const latField = textField({ id: "ws-lat", label: t("ws.map.lat"), value: state.lat, inputmode: "decimal", onInput: (v) => (state.lat = v) });
  const xField = textField({ id: "ws-x", label: t("ws.map.x"), value: state.x, inputmode: "decimal", onInput: (v) => (state.x = v) });
  const yField = textField({ id: "ws-y", label: t("ws.map.y"), value: state.y, inputmode: "decimal", onInput: (v) => (state.y = v) });
  const crsField = textField({ id: "ws-crs", label: t("ws.map.crs"), hint: t("ws.map.crs_hint"), value: state.crs, onInput: (v) => (state.crs = v) });
  const lonlatRow = h("div", { class: "place-picker__row" }, latField, lonField);
  const xyRow = h("div", { class: "place-picker__row", hidden: true }, xField, yField, crsField);
  const modeRadio = (value: "lonlat" | "xy", label: string) => {
    const id = `ws-coords-${value}`;
    return h(
      "div",
      { class: "usa-radio" },
      h("input", {
        class: "usa-radio__input",
        type: "radio",
        id,
        name: "ws-coords",
        value,
        checked: value === "lonlat",
        onchange: () => {
          coordMode.value = value;
          lonlatRow.hidden = value !== "lonlat";
          xyRow.hidden = value !== "xy";
        },
      }),
      h("label", { class: "usa-radio__label", for: id }, label),
    );
  };
  const searchMode = { value: "nearest" as "nearest" | "radius" };
  const kField = textField({ id: "ws-k", label: t("ws.map.k"), value: state.k, inputmode: "numeric", width: "small", onInput: (v) => (state.k = v) });
  const policyRadius = agency?.properties.policy?.max_search_radius_m ?? null;
  const radiusField = textField({
    id: "ws-radius",
    label: t("ws.map.radius"),
    hint: policyRadius ? t("ws.map.radius_hint", { max: formatNumber(policyRadius) }) : undefined,
    value: state.radius,
    inputmode: "numeric",
    width: "small",
    onInput: (v) => (state.radius = v),
  });
  radiusField.hidden = true;
  const searchRadio = (value: "nearest" | "radius", label: string) => {
    const id = `ws-search-${value}`;
    return h(
      "div",
      { class: "usa-radio" },
      h("input", {
        class: "usa-radio__input",
        type: "radio",
        id,
        name: "ws-search",
        value,
        checked: value === "nearest",
        onchange: () => {
          searchMode.value = value;
          kField.hidden = value !== "nearest";
          radiusField.hidden = value !== "radius";
        },
      }),
      h("label", { class: "usa-radio__label", for: id }, label),
    );
  };
  const caseField = textField({
    id: "ws-case",
    label: t("ws.map.case"),
    hint: t("ws.map.case_hint"),
    value: state.caseNumber,
    optional: true,
    onInput: (v) => (state.caseNumber = v),
  });
  const facing = h("input", { class: "usa-checkbox__input", type: "checkbox", id: "ws-facing", name: "ws-facing" });
  const facingLabel = h("label", { class: "usa-checkbox__label", for: "ws-facing" }, t("ws.map.facing_only"));

  // The filters apply to the map and to the search alike.
  const checkbox = (name: string, value: string, label: string) => {
    const id = `ws-${name}-${value}`;
    return h(
      "div",
      { class: "usa-checkbox" },
      h("input", { class: "usa-checkbox__input", type: "checkbox", id, name: `ws-${name}`, value }),
      h("label", { class: "usa-checkbox__label", for: id }, label),
    );
  };
  const kinds = h(
    "fieldset",
    { class: "usa-fieldset ws-fieldset" },
    h("legend", { class: "usa-legend" }, t("ws.filter.owner_kind")),
    OWNER_KINDS.map((k) => checkbox("kind", k, t(`ws.kind.${k}` as MessageKey))),
  );
  const placements = h(
    "fieldset",
    { class: "usa-fieldset ws-fieldset" },
    h("legend", { class: "usa-legend" }, t("ws.filter.placement")),
    PLACEMENTS.map((p) => checkbox("placement", p, t(`ws.placement.${p}` as MessageKey))),
  );
  const live = checkbox("live", "true", t("ws.filter.live"));
  const incidentField = textField({
    id: "ws-incident-at",
    label: t("ws.filter.incident_at"),
    hint: t("ws.filter.incident_at_hint"),
    type: "datetime-local",
    value: "",
    optional: true,
    onInput: (v) => (state.incidentAt = v),
  });
  const filters = (): CameraFilters => ({
    ownerKinds: [...kinds.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value),
    placements: [...placements.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value),
    liveOnly: live.querySelector<HTMLInputElement>("input")!.checked,
    incidentAt: localToIso(state.incidentAt),
  });
  const filtersBox = h(
    "details",
    { class: "ws-filters" },
    h("summary", {}, t("ws.filter.title")),
    kinds,
    placements,
    h("div", { class: "usa-form-group" }, live),
    incidentField,
    h(
      "button",
      { type: "button", class: "usa-button usa-button--outline", onclick: () => void loadMap() },
      t("ws.filter.apply"),
    ),
  );

  // Around a place (the nearest, or within a distance) or along a route of travel (agency-route.ts); a route
  // comes back in the address from a new request's page.
  const initialRoute = decodeRoute(new URLSearchParams(location.search).get("route"));
  const kind = { value: "place" as "place" | "route" };
  const searchHeading = h("h2", { id: "ws-search-heading", class: "ws-h2" }, t("ws.map.search_heading"));
  const searchHint = h("p", { class: "usa-hint" }, t("ws.map.search_hint"));
  const kindRadio = (value: "place" | "route", label: string) =>
    h(
      "div",
      { class: "usa-radio" },
      h("input", {
        class: "usa-radio__input",
        type: "radio",
        id: `ws-kind-${value}`,
        name: "ws-kind",
        value,
        checked: value === "place",
        onchange: () => setKind(value),
      }),
      h("label", { class: "usa-radio__label", for: `ws-kind-${value}` }, label),
    );
  const whereBox = h(
    "fieldset",
    { class: "usa-fieldset ws-fieldset" },
    h("legend", { class: "usa-legend" }, t("ws.map.where")),
    modeRadio("lonlat", t("ws.map.mode_lonlat")),
    modeRadio("xy", t("ws.map.mode_xy")),
    lonlatRow,
    xyRow,
  );
  const whichBox = h(
    "fieldset",
    { class: "usa-fieldset ws-fieldset" },
    h("legend", { class: "usa-legend" }, t("ws.map.which")),
    searchRadio("nearest", t("ws.map.mode_nearest")),
    searchRadio("radius", t("ws.map.mode_radius")),
    kField,
    radiusField,
  );
  const routeBox = h("div", {});
  const form = h(
    "form",
    { class: "usa-form ws-search", novalidate: true, "aria-labelledby": "ws-search-heading" },
    searchHeading,
    searchHint,
    caseField,
    h(
      "fieldset",
      { class: "usa-fieldset ws-fieldset" },
      h("legend", { class: "usa-legend" }, t("ws.map.kind")),
      kindRadio("place", t("ws.map.kind_place")),
      kindRadio("route", t("ws.map.kind_route")),
    ),
    whereBox,
    whichBox,
    routeBox,
    h("div", { class: "usa-form-group" }, h("div", { class: "usa-checkbox" }, facing, facingLabel)),
    filtersBox,
    h("button", { type: "submit", class: "usa-button ws-find" }, t("ws.map.find")),
  );

  const results = h("section", { class: "ws-results", "aria-labelledby": "ws-results-heading" });
  const coverageHost = h("div", {});

  main.append(
    status,
    summary,
    h("div", { class: "ws-layout" }, h("div", { class: "ws-layout__map" }, mapBox, legend, coverageHost), h("div", { class: "ws-layout__form" }, form), results),
  );

  // ---------------------------------------------------------------- the map
  const map = L.map(mapBox, { zoomAnimation: false, fadeAnimation: false, renderer: canvasRenderer() }).setView([39.5, -98.35], 4);
  map.attributionControl.setPrefix(false);
  mapBox.setAttribute("role", "region");
  mapBox.setAttribute("aria-label", t("ws.map.map_label"));
  const { tile_url: tileUrl, tile_attribution: attribution } = config();
  if (tileUrl) L.tileLayer(tileUrl, { attribution: attribution ?? "", maxZoom: 19 }).addTo(map);
  else mapBox.classList.add("portal-map--plain");
  // An answer that arrives after the page was left must not touch the removed map.
  let left = false;
  onLeave(() => {
    left = true;
    map.remove();
  });
  if (agency) {
    const area = L.geoJSON(agency as unknown as GeoJSON.Feature, {
      style: { color: "#005ea2", weight: 2, fillColor: "#73b3e7", fillOpacity: 0.1 },
      interactive: false,
    }).addTo(map);
    if (area.getBounds().isValid()) map.fitBounds(area.getBounds(), { animate: false });
  }
  const clusters = clusterLayer(map, mapBox);
  const found = L.layerGroup().addTo(map);
  if (isAgencyAdmin(user)) {
    coverageHost.append(coverageControl(map, mapBox, staffToken, new URLSearchParams(location.search).get("coverage") === "1"));
  }
  // A large agency's cameras come from the vector tiles (camera-tiles.ts, loaded only then).
  let tiles: CameraTiles | null = null;
  onLeave(() => tiles?.destroy());
  map.on("click", (e: L.LeafletMouseEvent) => {
    if (kind.value === "route") {
      route.addPoint(e.latlng.lat, e.latlng.lng);
      return;
    }
    // A camera drawn from the tiles under the click is selected: the search is made at its own place (read by
    // its id, as the tile's position is rounded to the tile's grid), so it comes first in the list.
    const picked = tiles?.cameraAt(e.latlng) ?? null;
    if (picked) {
      void selectCamera(picked.id, picked.lat, picked.lon);
      return;
    }
    delete mapBox.dataset.selectedCamera;
    setPlace(e.latlng.lat, e.latlng.lng);
    void search();
  });
  const selectCamera = async (id: string, lat: number, lon: number) => {
    mapBox.dataset.selectedCamera = id;
    const item = await attempt(() =>
      geo().GET("/v1/ogc/collections/{collection_id}/items/{feature_id}", {
        params: { path: { collection_id: "cameras", feature_id: id }, query: { contacts: false } as never },
        headers: auth,
      }),
    );
    if (left) return;
    const exact = item.ok ? item.data.geometry.coordinates : null;
    setPlace(exact?.[1] ?? lat, exact?.[0] ?? lon);
    await search();
  };
  const route = routeMode({
    map,
    mapBox,
    form,
    summary,
    results,
    found,
    token: user.token,
    policyRadius,
    caseNumber: () => state.caseNumber.trim(),
    casePattern: CASE_PATTERN,
    query: () => {
      // A route's times say when: the filters' incident time is not sent with it.
      const q: Record<string, string | boolean> = filterQuery({ ...filters(), incidentAt: null });
      if (facing.checked) q.facing = true;
      return q;
    },
    left: () => left,
    initial: initialRoute,
  });
  routeBox.append(route.fieldset);
  const setKind = (value: "place" | "route") => {
    kind.value = value;
    whereBox.hidden = value !== "place";
    whichBox.hidden = value !== "place";
    searchHeading.textContent = value === "route" ? t("ws.route.heading") : t("ws.map.search_heading");
    searchHint.textContent = value === "route" ? t("ws.route.hint") : t("ws.map.search_hint");
    facingLabel.textContent = value === "route" ? t("ws.route.facing_only") : t("ws.map.facing_only");
    clearErrors(form);
    summary.replaceChildren();
    results.replaceChildren();
    found.clearLayers();
    route.setActive(value === "route");
    legend.querySelectorAll<HTMLElement>("[data-legend]").forEach((li) => (li.hidden = li.dataset.legend !== value));
  };
  if (initialRoute) {
    (form.querySelector("#ws-kind-route") as HTMLInputElement).checked = true;
    setKind("route");
  }

  const setPlace = (lat: number, lon: number) => {
    state.lat = lat.toFixed(6);
    state.lon = lon.toFixed(6);
    (latField.querySelector("input") as HTMLInputElement).value = state.lat;
    (lonField.querySelector("input") as HTMLInputElement).value = state.lon;
    if (coordMode.value !== "lonlat") (document.getElementById("ws-coords-lonlat") as HTMLInputElement).click();
  };

  let loading: AbortController | null = null;
  const loadMap = async () => {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    onLeave(() => controller.abort());
    status.textContent = t("ws.map.loading");
    mapBox.dataset.complete = "false";
    tiles?.destroy();
    tiles = null;
    const chosen = filters();
    // More than one page: count them (one search) and, above the threshold, draw from the tiles instead.
    let total = 0;
    const bbox = agencyBounds(agency);
    const tooMany = async () => {
      if (!bbox) return false;
      try {
        total = await countCameras(user.token, chosen, bbox, controller.signal);
      } catch {
        return false; // no count: the pages still load, as they always did
      }
      return total > TILE_MAP_ABOVE;
    };
    try {
      const { cameras, stats, stopped } = await loadAllCameras(
        user.token,
        chosen,
        (sofar) => {
          clusters.setCameras(sofar);
          status.textContent = t("ws.map.loading_count", { n: formatNumber(sofar.length) });
        },
        controller.signal,
        tooMany,
      );
      if (left) return;
      // Drawn from tiles, the map has no groups of cameras: their legend goes.
      legend.querySelector<HTMLElement>("[data-legend-clusters]")!.hidden = stopped;
      if (stopped) {
        clusters.clear();
        mapBox.dataset.requests = String(stats.requests);
        await drawFromTiles(total, chosen);
        return;
      }
      delete mapBox.dataset.mode;
      clusters.setCameras(cameras);
      mapBox.dataset.requests = String(stats.requests);
      mapBox.dataset.complete = "true";
      // For the bench: when every camera is drawn, on the page's own clock.
      performance.mark("ws-cameras-drawn");
      status.textContent = t("ws.map.loaded", { n: formatNumber(cameras.length), agency: agency?.properties.name ?? user.agency });
    } catch (e) {
      if (controller.signal.aborted) return;
      status.textContent = e instanceof PageFailure && e.status === 403 ? t("errors.forbidden") : t("ws.map.load_failed");
    }
  };
  const drawFromTiles = async (total: number, chosen: CameraFilters) => {
    const { cameraTiles, TILE_MIN_ZOOM, TileFailure } = await import("../camera-tiles");
    if (left) return;
    const caseNumber = () => {
      const c = state.caseNumber.trim();
      return c && CASE_PATTERN.test(c) ? { case_number: c } : ({} as Record<string, string>);
    };
    tiles = cameraTiles(map, mapBox, {
      token: staffToken,
      query: caseNumber,
      onFailure: (e) => {
        status.textContent =
          e instanceof TileFailure && (e.status === 401 || e.status === 403) ? t("errors.forbidden") : t("ws.map.tiles_failed");
      },
    });
    tiles.setFilter(tileFilter(chosen));
    const name = agency?.properties.name ?? user.agency;
    const parts = [t("ws.map.tiles_loaded", { n: formatNumber(total), agency: name })];
    if (map.getZoom() < TILE_MIN_ZOOM) {
      parts.push(t("ws.map.tiles_zoom_in"));
      mapBox.dataset.complete = "true"; // nothing to fetch until the map is zoomed in
    }
    if (chosen.incidentAt) parts.push(t("ws.map.tiles_no_time_filter"));
    status.textContent = parts.join(" ");
    mapBox.dataset.loaded = String(total);
    performance.mark("ws-cameras-drawn");
  };
  void loadMap();

  // ---------------------------------------------------------------- the search
  const fieldLabels: Record<string, string> = {
    "ws-lon": t("ws.map.lon"),
    "ws-lat": t("ws.map.lat"),
    "ws-x": t("ws.map.x"),
    "ws-y": t("ws.map.y"),
    "ws-crs": t("ws.map.crs"),
    "ws-k": t("ws.map.k"),
    "ws-radius": t("ws.map.radius"),
    "ws-case": t("ws.map.case"),
    "ws-incident-at": t("ws.filter.incident_at"),
  };
  const pointers: Record<string, string> = {
    "/query/lon": "ws-lon",
    "/query/lat": "ws-lat",
    "/query/x": "ws-x",
    "/query/y": "ws-y",
    "/query/crs": "ws-crs",
    "/query/k": "ws-k",
    "/query/radius_m": "ws-radius",
    "/query/case_number": "ws-case",
    "/query/incident_at": "ws-incident-at",
  };
  let lastCase: string | null = null;

  const search = async () => {
    clearErrors(form);
    summary.replaceChildren();
    const errors: FieldError[] = [];
    const num = (v: string) => (v.trim() === "" ? NaN : Number(v));
    const where: Record<string, number | string> = {};
    if (coordMode.value === "lonlat") {
      const lat = num(state.lat);
      const lon = num(state.lon);
      if (!(Math.abs(lat) <= 90)) errors.push({ field: "ws-lat", message: t("ws.map.bad_lat") });
      if (!(Math.abs(lon) <= 180)) errors.push({ field: "ws-lon", message: t("ws.map.bad_lon") });
      where.lon = lon;
      where.lat = lat;
    } else {
      const x = num(state.x);
      const y = num(state.y);
      if (!Number.isFinite(x)) errors.push({ field: "ws-x", message: t("ws.map.bad_xy") });
      if (!Number.isFinite(y)) errors.push({ field: "ws-y", message: t("ws.map.bad_xy") });
      if (!state.crs.trim()) errors.push({ field: "ws-crs", message: t("ws.map.bad_crs") });
      where.x = x;
      where.y = y;
      where.crs = state.crs.trim();
    }
    const caseNumber = state.caseNumber.trim();
    if (caseNumber && !CASE_PATTERN.test(caseNumber)) errors.push({ field: "ws-case", message: t("ws.map.bad_case") });
    const k = Math.round(num(state.k));
    const radius = num(state.radius);
    if (searchMode.value === "nearest" && !(k >= 1 && k <= 1000)) errors.push({ field: "ws-k", message: t("ws.map.bad_k") });
    if (searchMode.value === "radius" && !(radius > 0)) errors.push({ field: "ws-radius", message: t("ws.map.bad_radius") });
    // The agency's limit, known from its policy: said here, in the officer's words, rather than by the service.
    else if (searchMode.value === "radius" && policyRadius && radius > policyRadius)
      errors.push({ field: "ws-radius", message: t("ws.map.radius_over", { max: formatNumber(policyRadius) }) });
    if (errors.length) {
      showErrors(form, summary, errors);
      return;
    }
    const query = {
      ...where,
      ...filterQuery(filters()),
      ...(caseNumber ? { case_number: caseNumber } : {}),
      ...(facing.checked ? { facing: true } : {}),
      contacts: false,
    };
    results.replaceChildren(h("p", { role: "status" }, t("ws.map.searching")));
    performance.mark("ws-search-start");
    const outcome =
      searchMode.value === "nearest"
        ? await attempt(() => geo().GET("/v1/cameras/nearest", { params: { query: { ...query, k } as never }, headers: auth }))
        : await attempt(() =>
            geo().GET("/v1/cameras/radius", { params: { query: { ...query, radius_m: radius, limit: 1000 } as never }, headers: auth }),
          );
    if (left) return;
    if (!outcome.ok) {
      results.replaceChildren();
      // A retry only where it can help (the service unreachable or busy), not for an answer to change.
      showErrors(form, summary, errorsFromFailure(outcome.failure, pointers, fieldLabels), outcome.failure.retryable ? () => void search() : undefined);
      return;
    }
    lastCase = caseNumber || null;
    showResults(outcome.data.features, searchMode.value === "radius" ? radius : null);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void (kind.value === "route" ? route.search() : search());
  });

  const showResults = (cameras: CameraFeature[], radius: number | null) => {
    found.clearLayers();
    // Where the search was made: a camera's own bearing is from the incident, so the incident is recovered
    // from the nearest answer when x/y were typed (the service transformed them).
    const incident = incidentOf(cameras, coordMode.value === "lonlat" ? state : null);
    if (incident) {
      if (radius) L.circle([incident[1], incident[0]], { radius, color: "#162e51", weight: 2, fill: false, interactive: false }).addTo(found);
      L.circleMarker([incident[1], incident[0]], {
        radius: 9,
        color: "#162e51",
        weight: 3,
        fillColor: "#d83933",
        fillOpacity: 1,
        interactive: false,
      }).addTo(found);
    }
    for (const c of cameras) {
      const [lon, lat] = c.geometry.coordinates as [number, number];
      const p = c.properties;
      const isFacing = faces(p, DEFAULT_RANGE_M);
      const colour = isFacing ? "#e66f0e" : "#00a91c";
      if (p.direction_deg != null && p.fov_deg != null) {
        L.polygon(wedge(lat, lon, p.direction_deg, p.fov_deg, p.range_m ?? DEFAULT_RANGE_M), {
          color: colour,
          weight: isFacing ? 2 : 1,
          fillOpacity: isFacing ? 0.35 : 0.2,
          interactive: false,
        }).addTo(found);
      }
      L.circleMarker([lat, lon], { radius: 6, color: "#1b1b1b", weight: 2, fillColor: colour, fillOpacity: 1, interactive: false }).addTo(found);
    }
    const layers = found.getLayers() as (L.Path & { getBounds?: () => L.LatLngBounds; getLatLng?: () => L.LatLng })[];
    const bounds = L.latLngBounds([]);
    for (const l of layers) {
      if (l.getBounds) bounds.extend(l.getBounds());
      else if (l.getLatLng) bounds.extend(l.getLatLng());
    }
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.2), { maxZoom: 19, animate: false });

    const heading = h("h2", { id: "ws-results-heading", class: "ws-h2", tabindex: "-1" }, cameras.length === 1 ? t("ws.map.results_one") : t("ws.map.results", { n: cameras.length }));
    const facingCount = cameras.filter((c) => faces(c.properties, DEFAULT_RANGE_M)).length;
    const requestLink = incident && worker
      ? h(
          "a",
          {
            class: "usa-button usa-button--outline",
            href: `/agency/requests/new?lon=${incident[0].toFixed(6)}&lat=${incident[1].toFixed(6)}${lastCase ? `&case=${encodeURIComponent(lastCase)}` : ""}`,
          },
          t("ws.map.request_here"),
        )
      : null;
    results.replaceChildren(
      heading,
      h("p", {}, facingCount === 1 ? t("ws.map.facing_count_one") : t("ws.map.facing_count", { n: facingCount })),
      cameras.length ? h("p", { class: "usa-hint" }, t("ws.map.contact_note")) : h("p", {}, t("ws.map.none")),
      h(
        "ol",
        { class: "usa-list usa-list--unstyled ws-result-list" },
        cameras.map((c, i) => resultItem(c, i + 1)),
      ),
      h("div", { class: "portal-actions" }, requestLink),
    );
    heading.focus();
    performance.measure("ws-search", "ws-search-start");
  };

  const resultItem = (c: CameraFeature, rank: number) => {
    const p = c.properties;
    const isFacing = faces(p, DEFAULT_RANGE_M);
    const contactBox = h("div", { class: "ws-contact" });
    const label = p.label ? `${p.label} — ` : "";
    const kind = t(`ws.kind.${p.owner_kind}` as MessageKey);
    const placement = p.placement ? t(`ws.placement.${p.placement}` as MessageKey) : t("ws.placement.unknown");
    const headingId = uid("ws-result");
    const footage =
      p.footage_until != null
        ? p.footage_likely_available
          ? t("ws.map.footage_until", { when: formatDate(p.footage_until, true) })
          : t("ws.map.footage_gone", { when: formatDate(p.footage_until, true) })
        : p.retention_days != null
          ? t("ws.map.retention", { days: p.retention_days })
          : null;
    const reveal = h(
      "button",
      { type: "button", class: "usa-button usa-button--unstyled ws-reveal", "aria-describedby": headingId },
      t("ws.map.show_contact"),
    );
    reveal.addEventListener("click", () => void showContact(p.registration_id, contactBox, reveal));
    if (!worker) reveal.hidden = true;
    const selected = mapBox.dataset.selectedCamera === c.id;
    return h(
      "li",
      { class: `ws-result${isFacing ? " ws-result--facing" : ""}`, "data-camera": c.id },
      h(
        "h3",
        { class: "ws-result__title", id: headingId },
        `${rank}. ${t("ws.map.distance", { m: formatNumber(p.distance_m ?? 0) })} ${compass(p.bearing_deg ?? 0, t("ws.map.compass"))} (${formatNumber(p.bearing_deg ?? 0)}°)`,
      ),
      h("p", { class: "ws-result__line" }, `${label}${kind} · ${placement}`),
      isFacing ? h("p", { class: "ws-tag ws-tag--facing" }, t("ws.map.faces")) : null,
      selected ? h("p", { class: "ws-tag ws-tag--selected" }, t("ws.map.selected")) : null,
      footage ? h("p", { class: "ws-result__line" }, footage) : null,
      contactBox,
      reveal,
    );
  };

  const showContact = async (registrationId: string, box: HTMLElement, button: HTMLButtonElement) => {
    const caseNumber = state.caseNumber.trim();
    if (!caseNumber || !CASE_PATTERN.test(caseNumber)) {
      showErrors(form, summary, [{ field: "ws-case", message: t("ws.map.case_for_contact") }]);
      return;
    }
    const outcome = await attempt(() =>
      registry().GET("/v1/registrations/{registration_id}/contact", {
        params: { path: { registration_id: registrationId }, query: { case_number: caseNumber } },
        headers: auth,
      }),
    );
    if (!outcome.ok) {
      box.replaceChildren(
        h("p", { class: "usa-error-message", role: "alert" }, failureText(outcome.failure)),
      );
      return;
    }
    const c = outcome.data;
    const row = (term: string, value: string | null | undefined) => (value ? [h("dt", {}, term), h("dd", {}, value)] : []);
    box.replaceChildren(
      h(
        "dl",
        { class: "portal-details" },
        row(t("ws.contact.business"), c.business_name),
        row(t("ws.contact.name"), c.contact.name),
        row(t("ws.contact.email"), c.contact.email),
        row(t("ws.contact.phone"), c.contact.phone),
        row(t("ws.contact.hours"), c.contact.hours),
        row(t("ws.contact.address"), c.address),
        row(t("ws.contact.notes"), c.notes_for_investigators),
      ),
      h("p", { class: "ws-recorded", role: "status" }, t("ws.contact.recorded", { case: caseNumber })),
    );
    // The button goes: the focus goes to what it revealed, not back to the page's start.
    button.remove();
    focus(box);
  };
}

/** The incident's lon/lat: as typed, or (for x/y) back from the nearest camera's distance and bearing. */
function incidentOf(cameras: CameraFeature[], typed: { lon: string; lat: string } | null): [number, number] | null {
  if (typed) return [Number(typed.lon), Number(typed.lat)];
  const first = cameras[0];
  if (!first || first.properties.distance_m == null || first.properties.bearing_deg == null) return null;
  const [lon, lat] = first.geometry.coordinates as [number, number];
  const d = first.properties.distance_m;
  const back = ((first.properties.bearing_deg + 180) * Math.PI) / 180;
  return [lon + (d * Math.sin(back)) / (111_320 * Math.cos((lat * Math.PI) / 180)), lat + (d * Math.cos(back)) / 111_320];
}

/** The box around the agency's jurisdiction (west, south, east, north), or null. */
function agencyBounds(agency: AgencyFeature | null): [number, number, number, number] | null {
  if (!agency) return null;
  const b = L.geoJSON(agency as unknown as GeoJSON.Feature).getBounds();
  return b.isValid() ? [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()] : null;
}
