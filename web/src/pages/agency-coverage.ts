/** The agency admin's coverage layer on the workspace map: geo_query's GET /v1/coverage/agency (the exact number
 * of cameras in every cell of the jurisdiction, 0 included), toggled on the map, with its legend and a text summary
 * — how many cells, how many have no camera, and the largest gaps (neighbouring empty cells) to recruit in, each
 * one button away on the map — and every cell's count in a table. Shown to agency admins only: the API refuses
 * anyone else, and a refusal reaching the page is said in words. */

import type L from "leaflet";
import { attempt, bearer, geo, type Failure } from "../api/client";
import { AGENCY_SIZES, byCount, cellAreaKm2, cellCentre, countClasses, gaps, type AgencySize, type CountClass, type CoverageCollection } from "../coverage";
import { cellLayer, legend } from "../coverage-layer";
import { h } from "../dom";
import { failureText } from "../forms";
import { formatNumber, t, type MessageKey } from "../i18n";

const SHOWN_GAPS = 5;
const TABLE_ROWS = 500; // beyond this many cells with cameras, the table lists the busiest

export function coverageControl(map: L.Map, mapBox: HTMLElement, token: () => Promise<string | null>, on: boolean): HTMLElement {
  const layer = cellLayer(map, mapBox);
  const result = h("div", { class: "cov-admin__result", "aria-live": "polite" });
  const toggle = h("input", { class: "usa-checkbox__input", type: "checkbox", id: "ws-coverage", name: "ws-coverage", checked: on });
  const size = h(
    "select",
    { class: "usa-select", id: "ws-coverage-size", name: "ws-coverage-size" },
    AGENCY_SIZES.map((s) =>
      h("option", { value: String(s), selected: s === 1000 }, t(`cov.admin.size_${s}` as MessageKey, { km2: formatNumber(cellAreaKm2(s), 2) })),
    ),
  );
  let asked = 0;

  const refusal = (failure: Failure): string => {
    if (failure.status === 401) return t("cov.admin.unauthorized");
    if (failure.status === 403) return t("cov.admin.forbidden");
    return failureText(failure);
  };

  const show = async () => {
    const mine = ++asked;
    if (!toggle.checked) {
      layer.clear();
      result.replaceChildren();
      return;
    }
    const sizeM = Number(size.value) as AgencySize;
    result.replaceChildren(h("p", {}, t("cov.admin.loading")));
    const credential = await token();
    const outcome = await attempt(() =>
      geo().GET("/v1/coverage/agency", { params: { query: { size: sizeM } }, headers: credential ? bearer(credential) : {} }),
    );
    if (mine !== asked) return; // a later choice is being shown
    if (!outcome.ok) {
      layer.clear();
      result.replaceChildren(
        h("div", { class: "usa-alert usa-alert--error usa-alert--slim", role: "alert" }, h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, refusal(outcome.failure)))),
      );
      return;
    }
    const cells = (outcome.data as unknown as CoverageCollection).features;
    const classes = countClasses(cells.map((c) => c.properties.cameras));
    layer.show(cells, classes);
    result.replaceChildren(...summary(cells, classes, sizeM, map).filter((e): e is HTMLElement => e !== null));
  };
  toggle.addEventListener("change", () => void show());
  size.addEventListener("change", () => void show());
  if (on) void show();

  return h(
    "section",
    { class: "cov-admin", "aria-labelledby": "cov-admin-heading" },
    h("h2", { class: "ws-h2", id: "cov-admin-heading" }, t("cov.admin.heading")),
    h("p", { class: "usa-hint" }, t("cov.admin.hint")),
    h("div", { class: "usa-checkbox" }, toggle, h("label", { class: "usa-checkbox__label", for: "ws-coverage" }, t("cov.admin.toggle"))),
    h("div", { class: "usa-form-group cov-admin__size" }, h("label", { class: "usa-label", for: "ws-coverage-size" }, t("cov.admin.size")), size),
    result,
  );
}

function summary(cells: CoverageCollection["features"], classes: CountClass[], sizeM: number, map: L.Map): (HTMLElement | null)[] {
  const cameras = cells.reduce((s, c) => s + c.properties.cameras, 0);
  const empty = cells.filter((c) => c.properties.cameras === 0).length;
  const area = formatNumber(cellAreaKm2(sizeM), 2);
  const classLabel = (c: CountClass) =>
    c.max == null ? t("cov.class_from", { min: formatNumber(c.min) }) : c.max === c.min ? formatNumber(c.min) : t("cov.class_range", { min: formatNumber(c.min), max: formatNumber(c.max) });
  const key = legend(classes, classLabel, empty ? t("cov.admin.legend_empty") : null);
  key.setAttribute("aria-label", t("cov.legend"));
  const found = gaps(cells).slice(0, SHOWN_GAPS);
  const withCameras = byCount(cells.filter((c) => c.properties.cameras > 0));
  return [
    key,
    h(
      "p",
      { class: "cov-admin__summary" },
      t("cov.admin.summary", { cells: formatNumber(cells.length), km2: area, cameras: formatNumber(cameras), empty: formatNumber(empty) }),
    ),
    found.length ? h("h3", { class: "cov-admin__h3" }, t("cov.admin.gaps_heading")) : h("p", {}, t("cov.admin.no_gaps")),
    found.length
      ? h(
          "ol",
          { class: "usa-list cov-gaps" },
          found.map((g) => {
            const [lon, lat] = g.centre;
            const where = t("cov.admin.gap", { cells: formatNumber(g.cells), km2: formatNumber(g.areaKm2, 1), lat: lat.toFixed(4), lon: lon.toFixed(4) });
            return h(
              "li",
              {},
              `${where} `,
              h(
                "button",
                { type: "button", class: "usa-button usa-button--unstyled", "aria-label": t("cov.admin.gap_show_label", { where }), onclick: () => {
                    map.setView([lat, lon], Math.max(map.getZoom(), sizeM <= 250 ? 15 : sizeM <= 1000 ? 13 : 11), { animate: false });
                    // On a narrow screen the map is far above the list: bring it into view.
                    map.getContainer().scrollIntoView({ block: "nearest" });
                  } },
                t("cov.admin.gap_show"),
              ),
            );
          }),
        )
      : null,
    withCameras.length
      ? h(
          "details",
          { class: "cov-admin__cells" },
          h("summary", {}, t("cov.admin.table_summary", { n: formatNumber(withCameras.length) })),
          h(
            "table",
            { class: "usa-table usa-table--borderless usa-table--compact" },
            h("caption", {}, t("cov.admin.table_caption", { km2: area })),
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("cov.table_where")), h("th", { scope: "col" }, t("cov.admin.table_cameras")))),
            h(
              "tbody",
              {},
              withCameras.slice(0, TABLE_ROWS).map((c) => {
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
          withCameras.length > TABLE_ROWS ? h("p", { class: "usa-hint" }, t("cov.admin.table_more", { n: formatNumber(TABLE_ROWS) })) : null,
        )
      : null,
  ];
}
