/** The coverage cells drawn on a Leaflet map (the public coverage page and the agency admin's layer on the
 * workspace map): each hexagon filled by its count's class, the cells with no camera (the admin's only) in orange
 * with a dashed edge, on the guarded canvas renderer. The map element carries what is drawn (data-drawn-cells,
 * data-drawn-cameras, data-drawn-empty) for the tests; the legend and the text beside the map say the same in
 * words. */

import L from "leaflet";
import { cellCentre, classOf, EMPTY_COLOUR, type CountClass, type CoverageCell } from "./coverage";
import { h } from "./dom";
import { formatNumber } from "./i18n";
import { canvasRenderer } from "./map";

export interface CellLayer {
  show(cells: CoverageCell[], classes: CountClass[], fit?: boolean): void;
  clear(): void;
  remove(): void;
}

// A cell's count is written on it when there are few enough cells and each is wide enough on screen to hold it.
const LABEL_MAX_CELLS = 500;
const LABEL_MIN_PX = 30;

export function cellLayer(map: L.Map, container: HTMLElement): CellLayer {
  const renderer = canvasRenderer({ padding: 0.2 });
  const group = L.featureGroup().addTo(map);
  const labels = L.layerGroup();
  let first: L.Polygon | null = null;
  // Shown or hidden as the zoom makes the cells wide or narrow on screen.
  const fitLabels = () => {
    if (!first || labels.getLayers().length === 0) {
      labels.remove();
      return;
    }
    const b = first.getBounds();
    const wide = map.latLngToContainerPoint(b.getNorthEast()).x - map.latLngToContainerPoint(b.getSouthWest()).x >= LABEL_MIN_PX;
    if (wide && !map.hasLayer(labels)) labels.addTo(map);
    if (!wide && map.hasLayer(labels)) labels.remove();
  };
  map.on("zoomend", fitLabels);
  const mark = (cells: number, cameras: number, empty: number) => {
    container.dataset.drawnCells = String(cells);
    container.dataset.drawnCameras = String(cameras);
    container.dataset.drawnEmpty = String(empty);
  };
  return {
    show(cells, classes, fit = false) {
      group.clearLayers();
      labels.clearLayers();
      first = null;
      let cameras = 0;
      let empty = 0;
      for (const cell of cells) {
        const n = cell.properties.cameras;
        cameras += n;
        if (n === 0) empty += 1;
        const ring = (cell.geometry.coordinates[0] ?? []).map(([lon, lat]) => L.latLng(lat, lon));
        const style: L.PolylineOptions =
          n === 0
            ? { color: "#c05600", weight: 2, dashArray: "4 3", fillColor: EMPTY_COLOUR, fillOpacity: 0.55 }
            : { color: "#1b1b1b", weight: 1, opacity: 0.6, fillColor: classOf(classes, n)?.colour ?? "#73b3e7", fillOpacity: 0.7 };
        const polygon = L.polygon(ring, { ...style, renderer, interactive: false }).addTo(group);
        first ??= polygon;
        if (cells.length <= LABEL_MAX_CELLS) {
          // The number is a picture of the table's: hidden from assistive technology, which reads the table.
          const [lon, lat] = cellCentre(cell);
          const text = document.createElement("span");
          text.setAttribute("aria-hidden", "true");
          text.textContent = formatNumber(n);
          L.marker([lat, lon], { interactive: false, keyboard: false, icon: L.divIcon({ className: "cov-label", html: text, iconSize: [48, 20] }) }).addTo(labels);
        }
      }
      mark(cells.length, cameras, empty);
      const bounds = group.getBounds();
      if (fit && cells.length && bounds.isValid()) map.fitBounds(bounds.pad(0.1), { animate: false });
      fitLabels();
    },
    clear() {
      group.clearLayers();
      labels.clearLayers();
      labels.remove();
      first = null;
      mark(0, 0, 0);
    },
    remove() {
      map.off("zoomend", fitLabels);
      group.remove();
      labels.remove();
      delete container.dataset.drawnCells;
      delete container.dataset.drawnCameras;
      delete container.dataset.drawnEmpty;
    },
  };
}

/** The legend: a swatch per class ("5 to 9") and, when shown, the empty cells'. The swatches are pictures; the
 * words beside them say the class. */
export function legend(classes: CountClass[], label: (c: CountClass) => string, emptyLabel: string | null): HTMLElement {
  const item = (extra: string, colour: string, text: string) => {
    const swatch = h("span", { class: `cov-swatch${extra}`, "aria-hidden": "true" });
    swatch.style.backgroundColor = colour; // through the CSSOM: the policy allows no inline style attribute
    return h("li", {}, swatch, text);
  };
  return h(
    "ul",
    { class: "usa-list usa-list--unstyled ws-legend cov-legend" },
    classes.map((c) => item("", c.colour, label(c))),
    emptyLabel ? item(" cov-swatch--empty", EMPTY_COLOUR, emptyLabel) : null,
  );
}
