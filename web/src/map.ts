/** The map (Leaflet): the programs' jurisdictions, the pin, the cameras and their fields of view. Tiles come
 * only from the configured tile URL; without one the map is drawn on a plain background, which is enough to
 * see the jurisdiction, the pin and the cameras. The map is never the only way to give a place: every page
 * that has one also has fields for the coordinates. */

import L from "leaflet";
import "leaflet/dist/leaflet.css";
import type { Agency, Camera } from "./api/client";
import { config } from "./config";
import { t } from "./i18n";
import { wedge } from "./wedge";

export interface PortalMap {
  setPin(lat: number, lon: number, pan?: boolean): void;
  showAgencies(agencies: Agency[], fit?: boolean): void;
  showCameras(cameras: Camera[], fit?: boolean): void;
  /** The ground metres one pixel spans at the map's centre and zoom. */
  metresPerPixel(): number;
  /** Calls `fn` after each change of zoom (the resident's, or a fit to what is shown). */
  onZoom(fn: () => void): void;
  destroy(): void;
}

// The Earth's circumference at the equator as Web Mercator draws it (metres), over 256 pixels at zoom 0.
const EQUATOR_M = 40075016.686;

/** Leaflet 1.9's canvas renderer may still run a redraw it had queued after its map was removed (a page left
 * while its layers were being updated); its drawing context is gone by then and the redraw would throw. This
 * renderer skips a redraw without a context. */
const GuardedCanvas = L.Canvas.extend({
  _redraw(this: { _ctx?: CanvasRenderingContext2D }): void {
    if (this._ctx) (L.Canvas.prototype as unknown as { _redraw(this: unknown): void })._redraw.call(this);
  },
}) as unknown as new (options?: L.RendererOptions) => L.Canvas;

/** A canvas renderer for many markers (instead of `preferCanvas` or `L.canvas`). */
export function canvasRenderer(options?: L.RendererOptions): L.Canvas {
  return new GuardedCanvas(options);
}

const DEFAULT_RANGE_M = 30;

export function createMap(
  container: HTMLElement,
  options: { onPick?: (lat: number, lon: number) => void } = {},
): PortalMap {
  container.classList.add("portal-map");
  container.setAttribute("role", "region");
  container.setAttribute("aria-label", options.onPick ? t("map.label_pick") : t("map.label"));
  const map = L.map(container, { zoomControl: true, attributionControl: true, zoomAnimation: false, fadeAnimation: false }).setView([39.5, -98.35], 4);
  map.attributionControl.setPrefix(false);
  const { tile_url: tileUrl, tile_attribution: attribution } = config();
  if (tileUrl) {
    L.tileLayer(tileUrl, { attribution: attribution ?? "", maxZoom: 19 }).addTo(map);
  } else {
    container.classList.add("portal-map--plain");
  }
  const agencies = L.featureGroup().addTo(map);
  const cameras = L.featureGroup().addTo(map);
  let pin: L.CircleMarker | null = null;

  if (options.onPick) {
    const onPick = options.onPick;
    map.on("click", (e: L.LeafletMouseEvent) => onPick(e.latlng.lat, e.latlng.lng));
  }

  return {
    setPin(lat, lon, pan = true) {
      if (!pin) {
        pin = L.circleMarker([lat, lon], {
          radius: 9,
          color: "#162e51",
          weight: 3,
          fillColor: "#d83933",
          fillOpacity: 1,
          interactive: false,
        }).addTo(map);
      } else {
        pin.setLatLng([lat, lon]);
      }
      if (pan) map.setView([lat, lon], Math.max(map.getZoom(), 15), { animate: false });
    },
    showAgencies(list, fit = true) {
      agencies.clearLayers();
      for (const agency of list) {
        L.geoJSON(agency as unknown as GeoJSON.Feature, {
          style: { color: "#005ea2", weight: 2, fillColor: "#73b3e7", fillOpacity: 0.15 },
          interactive: false,
        }).addTo(agencies);
      }
      if (fit && list.length && agencies.getBounds().isValid()) map.fitBounds(agencies.getBounds(), { animate: false });
    },
    showCameras(list, fit = true) {
      cameras.clearLayers();
      for (const camera of list) {
        const [lon, lat] = camera.location.coordinates as [number, number];
        if (camera.direction_deg != null && camera.fov_deg != null) {
          L.polygon(wedge(lat, lon, camera.direction_deg, camera.fov_deg, camera.range_m ?? DEFAULT_RANGE_M), {
            color: "#00a91c",
            weight: 1,
            fillOpacity: 0.25,
            interactive: false,
          }).addTo(cameras);
        }
        L.circleMarker([lat, lon], {
          radius: 6,
          color: "#1b1b1b",
          weight: 2,
          fillColor: "#00a91c",
          fillOpacity: 1,
          interactive: false,
        }).addTo(cameras);
      }
      const bounds = cameras.getBounds();
      if (fit && list.length && bounds.isValid()) map.fitBounds(bounds.pad(0.5), { maxZoom: 18, animate: false });
    },
    metresPerPixel() {
      const lat = map.getCenter().lat;
      return (EQUATOR_M * Math.cos((lat * Math.PI) / 180)) / 2 ** (map.getZoom() + 8);
    },
    onZoom(fn) {
      map.on("zoomend", fn);
    },
    destroy() {
      map.remove();
    },
  };
}
