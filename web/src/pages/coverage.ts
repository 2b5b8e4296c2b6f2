/** The public coverage page: how well an agency program's registered cameras cover its area, as hexagonal
 * cells of 1 or 5 km (geo_query's public GET /v1/coverage: only cells with at least k cameras, counts rounded
 * down to 5 — shown as the API gives them, with what that means in plain words), on a map with a legend and as a
 * table for screen readers and keyboard users. This page's script (and the map's) is fetched only when the page
 * is opened. */

import L from "leaflet";
import { attempt, geo, registry, type Agency } from "../api/client";
import { config } from "../config";
import { byCount, cellAreaKm2, cellCentre, countClasses, coverageHref, PUBLIC_SIZES, type CoverageCollection, type PublicSize } from "../coverage";
import { cellLayer, legend } from "../coverage-layer";
import { h, uid } from "../dom";
import { formatNumber, t } from "../i18n";
import { canvasRenderer } from "../map";
import { failureBox } from "../owner";
import { navigate, onLeave, rerender } from "../router";

const SLUG = /^[a-z0-9][a-z0-9-]{1,62}$/;

/** The programs to choose from, by name (the first thousand: the public list is paged), without their
 * jurisdictions: only the chosen one's is drawn. */
async function programs(): Promise<Agency[]> {
  const outcome = await attempt(() => registry().GET("/v1/agencies", { params: { query: { limit: 1000, skipGeometry: true } } }));
  if (!outcome.ok) return [];
  return [...outcome.data.features].sort((a, b) => a.properties.name.localeCompare(b.properties.name));
}

export async function coveragePage(main: HTMLElement): Promise<void> {
  const query = new URLSearchParams(location.search);
  const wanted = query.get("agency") ?? "";
  const size = (PUBLIC_SIZES as readonly number[]).includes(Number(query.get("size"))) ? (Number(query.get("size")) as PublicSize) : PUBLIC_SIZES[0]!;
  main.append(h("h1", {}, t("cov.title")), h("p", { class: "usa-intro" }, t("cov.intro")));

  const list = await programs();
  const slug = SLUG.test(wanted) ? wanted : (list[0]?.properties.slug ?? "");
  // The chosen program with its jurisdiction (its outline on the map).
  let agency: Agency | null = null;
  if (slug) {
    const one = await attempt(() => registry().GET("/v1/agencies/{slug}", { params: { path: { slug } } }));
    if (one.ok) {
      agency = one.data;
      if (!list.some((a) => a.properties.slug === slug)) list.unshift(one.data);
    }
  }

  // The choice: a program and a cell size, shown when the button is pressed (a change alone moves nothing).
  const form = h(
    "form",
    { class: "usa-form cov-form", novalidate: true },
    h(
      "div",
      { class: "usa-form-group" },
      h("label", { class: "usa-label", for: "cov-agency" }, t("cov.program")),
      h(
        "select",
        { class: "usa-select", id: "cov-agency", name: "agency" },
        list.map((a) => h("option", { value: a.properties.slug, selected: a.properties.slug === slug }, a.properties.name)),
      ),
    ),
    h(
      "fieldset",
      { class: "usa-fieldset cov-sizes" },
      h("legend", { class: "usa-legend" }, t("cov.size")),
      PUBLIC_SIZES.map((s) =>
        h(
          "div",
          { class: "usa-radio" },
          h("input", { class: "usa-radio__input", type: "radio", id: `cov-size-${s}`, name: "size", value: String(s), checked: s === size }),
          h("label", { class: "usa-radio__label", for: `cov-size-${s}` }, t(s === 1000 ? "cov.size_1000" : "cov.size_5000", { km2: formatNumber(cellAreaKm2(s), 1) })),
        ),
      ),
    ),
    h("button", { type: "submit", class: "usa-button" }, t("cov.show")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const chosen = (form.querySelector("#cov-agency") as HTMLSelectElement).value;
    const sized = form.querySelector<HTMLInputElement>("input[name=size]:checked")?.value;
    navigate(coverageHref(chosen, Number(sized ?? size)));
  });
  main.append(form);
  if (!agency) {
    main.append(h("p", { class: "portal-empty" }, list.length ? t("cov.unknown_program") : t("cov.no_programs")));
    return;
  }
  const name = agency.properties.name;

  const outcome = await attempt(() => geo().GET("/v1/coverage", { params: { query: { agency: slug, size } } }));
  if (!outcome.ok) {
    main.append(failureBox(outcome.failure, rerender));
    return;
  }
  const answer = outcome.data as unknown as CoverageCollection;
  const cells = answer.features;
  const k = answer.min_cameras ?? 5;
  const roundedTo = answer.rounded_to ?? 5;
  const total = cells.reduce((s, c) => s + c.properties.cameras, 0);
  const classes = countClasses(cells.map((c) => c.properties.cameras));
  const area = formatNumber(cellAreaKm2(size), 1);

  const heading = h("h2", {}, t("cov.heading", { agency: name }));
  const status = h(
    "p",
    { class: "ws-status", role: "status" },
    cells.length === 1
      ? t("cov.summary_one", { cameras: formatNumber(total) })
      : cells.length
        ? t("cov.summary", { n: formatNumber(cells.length), cameras: formatNumber(total) })
        : t("cov.none", { k }),
  );
  // What the numbers mean, before the map: rounded counts and hidden cells are the point, not a footnote.
  const meaning = h(
    "div",
    { class: "usa-summary-box cov-meaning", role: "region", "aria-labelledby": "cov-meaning-heading" },
    h(
      "div",
      { class: "usa-summary-box__body" },
      h("h3", { class: "usa-summary-box__heading", id: "cov-meaning-heading" }, t("cov.meaning_title")),
      h(
        "ul",
        { class: "usa-list" },
        h("li", {}, t("cov.meaning_cell", { km2: area })),
        h("li", {}, t("cov.meaning_rounded", { step: roundedTo, example: 15, upto: 15 + roundedTo - 1 })),
        h("li", {}, t("cov.meaning_hidden", { k })),
        h("li", {}, t("cov.meaning_why")),
      ),
    ),
  );
  const mapBox = h("div", { class: "ws-map cov-map", id: "cov-map" });
  const classLabel = (c: { min: number; max: number | null }) =>
    c.max == null ? t("cov.class_from", { min: formatNumber(c.min) }) : c.max === c.min ? formatNumber(c.min) : t("cov.class_range", { min: formatNumber(c.min), max: formatNumber(c.max) });
  const key = cells.length ? legend(classes, classLabel, null) : null;
  if (key) key.setAttribute("aria-label", t("cov.legend"));

  const tableId = uid("cov-table");
  const table = cells.length
    ? h(
        "div",
        { class: "usa-table-container--scrollable cov-table", tabindex: 0, role: "region", "aria-labelledby": tableId },
        h(
          "table",
          { class: "usa-table usa-table--borderless usa-table--compact" },
          h("caption", { id: tableId }, t("cov.table_caption", { agency: name, km2: area })),
          h(
            "thead",
            {},
            h("tr", {}, h("th", { scope: "col" }, t("cov.table_where")), h("th", { scope: "col" }, t("cov.table_cameras"))),
          ),
          h(
            "tbody",
            {},
            byCount(cells).map((c) => {
              const [lon, lat] = cellCentre(c);
              return h(
                "tr",
                { "data-cell": c.id },
                h("th", { scope: "row" }, `${lat.toFixed(4)}, ${lon.toFixed(4)}`),
                h("td", {}, formatNumber(c.properties.cameras)),
              );
            }),
          ),
        ),
      )
    : null;

  main.append(
    heading,
    meaning,
    status,
    h("div", { class: "cov-map-wrap" }, mapBox, key),
    ...(table ? [h("h3", { class: "ws-h2" }, t("cov.table_heading")), table] : []),
    h("p", {}, h("a", { class: "usa-button usa-button--outline", href: "/register" }, t("cov.register"))),
  );

  // The map, drawn once the page is laid out (Leaflet measures its box).
  const map = L.map(mapBox, { zoomAnimation: false, fadeAnimation: false, renderer: canvasRenderer() }).setView([39.5, -98.35], 4);
  map.attributionControl.setPrefix(false);
  mapBox.setAttribute("role", "region");
  mapBox.setAttribute("aria-label", t("cov.map_label", { agency: name }));
  const { tile_url: tileUrl, tile_attribution: attribution } = config();
  if (tileUrl) L.tileLayer(tileUrl, { attribution: attribution ?? "", maxZoom: 19 }).addTo(map);
  else mapBox.classList.add("portal-map--plain");
  onLeave(() => map.remove());
  const outline = L.geoJSON(agency as unknown as GeoJSON.Feature, {
    style: { color: "#005ea2", weight: 2, fill: false },
    interactive: false,
  }).addTo(map);
  const cellsLayer = cellLayer(map, mapBox);
  cellsLayer.show(cells, classes);
  // The jurisdiction and its cells in view (a coarse cell reaches beyond the boundary).
  const bounds = outline.getBounds();
  for (const c of cells) for (const [lon, lat] of c.geometry.coordinates[0] ?? []) bounds.extend([lat, lon]);
  if (bounds.isValid()) map.fitBounds(bounds, { animate: false });
  mapBox.dataset.complete = "true";
}
