/** The workspace map's cameras drawn from geo_query's vector tiles (GET /v1/tiles/cameras/{z}/{x}/{y}.mvt), for
 * an agency with more cameras than the map's pages comfortably carry: only the tiles in view are fetched, each
 * decoded (@mapbox/vector-tile, pbf's reader) and drawn on its own canvas of a Leaflet GridLayer. The tiles are fetched
 * with the officer's bearer token in a header (never as image URLs, which could not carry it), so each is scoped
 * and audited as every search is. The decoded cameras are kept per tile so a click can find the camera under it.
 * The map element carries what is drawn (data-drawn-points, data-tiles) for the tests and the bench. This module
 * is loaded only by a map that needs it. */

import L from "leaflet";
import { VectorTile } from "@mapbox/vector-tile";
import { PbfReader } from "pbf";
import { config } from "./config";

/** The zooms geo_query serves camera tiles at (its tiles.py MIN_ZOOM, MAX_ZOOM): below 9 a tile spans a region. */
export const TILE_MIN_ZOOM = 9;
export const TILE_MAX_ZOOM = 22;
const LAYER = "cameras";
const TILE_PX = 256;
const DOT_PX = 5;
const PANE = "ws-camera-tiles";

export interface TileCamera {
  id: string;
  lon: number;
  lat: number;
  owner_kind: string;
  placement: string | null;
  live_mode: string;
}

interface Drawn {
  canvas: HTMLCanvasElement;
  z: number;
  x: number;
  y: number;
  // px, py: pixels in the tile; n: how many cameras the point stands for (several of one kind, far out)
  cameras: (TileCamera & { px: number; py: number; inside: boolean; n: number })[];
}

export interface CameraTiles {
  /** The camera drawn nearest to a point of the map, within `px` screen pixels, or null. */
  cameraAt(latlng: L.LatLng, px?: number): TileCamera | null;
  /** Draws only the cameras `keep` keeps (the filters the tiles carry: kind, placement, live sharing). */
  setFilter(keep: (c: TileCamera) => boolean): void;
  destroy(): void;
}

export class TileFailure extends Error {
  constructor(readonly status: number) {
    super(`tile failed: ${status}`);
  }
}

/** The tile pixel (0–256) of a point of tile z/x/y, as a lon/lat. */
function lonLat(z: number, x: number, y: number, px: number, py: number): [number, number] {
  const n = 2 ** z;
  const gx = (x + px / TILE_PX) / n;
  const gy = (y + py / TILE_PX) / n;
  return [gx * 360 - 180, (Math.atan(Math.sinh(Math.PI * (1 - 2 * gy))) * 180) / Math.PI];
}

/** The cameras of one tile's bytes, in the tile's pixels; `inside` is false for those in its buffer (drawn so a dot
 * on the edge is whole, but counted by their own tile). */
export function decodeTile(bytes: ArrayBuffer, z: number, x: number, y: number): Drawn["cameras"] {
  const out: Drawn["cameras"] = [];
  if (!bytes.byteLength) return out;
  const layer = new VectorTile(new PbfReader(new Uint8Array(bytes))).layers[LAYER];
  if (!layer) return out;
  const scale = TILE_PX / layer.extent;
  for (let i = 0; i < layer.length; i++) {
    const f = layer.feature(i);
    const point = f.loadGeometry()[0]?.[0];
    if (!point) continue;
    const p = f.properties;
    const px = point.x * scale;
    const py = point.y * scale;
    const [lon, lat] = lonLat(z, x, y, px, py);
    out.push({
      id: String(p.id ?? ""),
      lon,
      lat,
      owner_kind: String(p.owner_kind ?? ""),
      placement: p.placement == null ? null : String(p.placement),
      live_mode: String(p.live_mode ?? "never"),
      n: Number(p.cameras ?? 1),
      px,
      py,
      inside: point.x >= 0 && point.y >= 0 && point.x < layer.extent && point.y < layer.extent,
    });
  }
  return out;
}

export function cameraTiles(
  map: L.Map,
  container: HTMLElement,
  options: {
    token: () => Promise<string | null>; // fresh for each tile: a session's token is renewed as it goes
    query: () => Record<string, string>; // e.g. the case number the tiles are audited under
    onFailure: (failure: TileFailure | Error) => void;
  },
): CameraTiles {
  const base = config().geo_query_url.replace(/\/$/, "");
  const drawn = new Map<string, Drawn>();
  let keep: (c: TileCamera) => boolean = () => true;
  let fetched = 0;

  const paint = (d: Drawn) => {
    const ratio = window.devicePixelRatio || 1;
    const ctx = d.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, TILE_PX, TILE_PX);
    // Far out, a city's cameras are a few pixels apart: small dots without an edge show where they are dense
    // without merging into one blot; close in, each is the map's usual camera dot.
    const radius = d.z >= 15 ? DOT_PX : d.z >= 13 ? 3.5 : 2;
    ctx.fillStyle = d.z >= 13 ? "#00a91c" : "#008817";
    ctx.strokeStyle = "#1b1b1b";
    ctx.lineWidth = 1;
    for (const c of d.cameras) {
      if (!keep(c)) continue;
      ctx.beginPath();
      ctx.arc(c.px, c.py, radius, 0, 2 * Math.PI);
      ctx.fill();
      if (d.z >= 13) ctx.stroke();
    }
  };

  const count = () => {
    const zoom = Math.min(Math.max(Math.round(map.getZoom()), TILE_MIN_ZOOM), TILE_MAX_ZOOM);
    let points = 0;
    let tiles = 0;
    for (const d of drawn.values()) {
      if (d.z !== zoom) continue;
      tiles += 1;
      for (const c of d.cameras) if (c.inside && keep(c)) points += c.n;
    }
    container.dataset.drawnPoints = String(points);
    container.dataset.tiles = String(tiles);
    container.dataset.tilesFetched = String(fetched);
  };

  const fetchTile = async (z: number, x: number, y: number, signal: AbortSignal): Promise<ArrayBuffer> => {
    const token = await options.token();
    const q = new URLSearchParams(options.query()).toString();
    const response = await fetch(`${base}/v1/tiles/cameras/${z}/${x}/${y}.mvt${q ? `?${q}` : ""}`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      signal,
    });
    fetched += 1;
    if (!response.ok) throw new TileFailure(response.status);
    return response.arrayBuffer();
  };

  // Their own pane: above the base map (tilePane, 200), below the overlays (400) where the search draws the cameras
  // it found, which must not be hidden under the same cameras' plain dots.
  if (!map.getPane(PANE)) {
    const pane = map.createPane(PANE);
    pane.style.zIndex = "350";
    pane.style.pointerEvents = "none";
  }
  const controllers = new Map<string, AbortController>();
  const Layer = L.GridLayer.extend({
    createTile(this: L.GridLayer, coords: L.Coords, done: L.DoneCallback): HTMLElement {
      const canvas = L.DomUtil.create("canvas", "leaflet-tile");
      const ratio = window.devicePixelRatio || 1;
      canvas.width = TILE_PX * ratio;
      canvas.height = TILE_PX * ratio;
      const key = `${coords.z}/${coords.x}/${coords.y}`;
      const controller = new AbortController();
      controllers.set(key, controller);
      fetchTile(coords.z, coords.x, coords.y, controller.signal)
        .then((bytes) => {
          const d: Drawn = { canvas, z: coords.z, x: coords.x, y: coords.y, cameras: decodeTile(bytes, coords.z, coords.x, coords.y) };
          drawn.set(key, d);
          paint(d);
          done(undefined, canvas);
        })
        .catch((e: unknown) => {
          if (controller.signal.aborted) return;
          options.onFailure(e instanceof Error ? e : new Error(String(e)));
          done(e instanceof Error ? e : new Error(String(e)), canvas);
        })
        .finally(() => controllers.delete(key));
      return canvas;
    },
  });
  const layer = new (Layer as unknown as new (o: L.GridLayerOptions) => L.GridLayer)({
    minZoom: TILE_MIN_ZOOM,
    maxZoom: TILE_MAX_ZOOM,
    tileSize: TILE_PX,
    updateWhenZooming: false,
    keepBuffer: 1,
    pane: PANE,
  });
  layer.on("tileunload", (e: L.TileEvent) => {
    const key = `${e.coords.z}/${e.coords.x}/${e.coords.y}`;
    controllers.get(key)?.abort();
    drawn.delete(key);
  });
  layer.on("load", () => {
    count();
    container.dataset.complete = "true";
  });
  layer.on("loading", () => (container.dataset.complete = "false"));
  map.on("zoomend", count);
  layer.addTo(map);
  container.dataset.mode = "tiles";

  return {
    cameraAt(latlng, px = 8) {
      const zoom = Math.round(map.getZoom());
      if (zoom < TILE_MIN_ZOOM) return null;
      const scale = 2 ** (map.getZoom() - zoom); // screen pixels per tile pixel
      const p = map.project(latlng, zoom);
      let best: TileCamera | null = null;
      let bestDist = px / scale;
      for (const d of drawn.values()) {
        if (d.z !== zoom) continue;
        const ox = d.x * TILE_PX;
        const oy = d.y * TILE_PX;
        if (p.x < ox - bestDist || p.x > ox + TILE_PX + bestDist || p.y < oy - bestDist || p.y > oy + TILE_PX + bestDist) continue;
        for (const c of d.cameras) {
          if (!keep(c)) continue;
          const dist = Math.hypot(ox + c.px - p.x, oy + c.py - p.y);
          if (dist <= bestDist) {
            bestDist = dist;
            best = c;
          }
        }
      }
      return best ? { id: best.id, lon: best.lon, lat: best.lat, owner_kind: best.owner_kind, placement: best.placement, live_mode: best.live_mode } : null;
    },
    setFilter(f) {
      keep = f;
      for (const d of drawn.values()) paint(d);
      count();
    },
    destroy() {
      for (const c of controllers.values()) c.abort();
      map.off("zoomend", count);
      layer.remove();
      drawn.clear();
      delete container.dataset.mode;
      delete container.dataset.tiles;
      delete container.dataset.tilesFetched;
    },
  };
}
