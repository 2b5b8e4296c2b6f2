/** Thousands of cameras on one map: clustered by supercluster at the zoom shown and drawn on a canvas (one
 * element however many dots), so 10,000 cameras pan and zoom smoothly. A cluster shows its count; the map
 * element carries what is drawn (data-loaded, data-drawn-points, data-drawn-clusters) for the tests and the
 * bench. The clusters are pictures only: the list beside the map says the same in words. */

import L from "leaflet";
import Supercluster, { type ClusterProperties } from "supercluster";
import { canvasRenderer } from "./map";
import type { CameraFeature } from "./workspace";

export interface ClusterLayer {
  setCameras(cameras: CameraFeature[]): void;
  /** Draws nothing and leaves the map element's figures alone (the map is drawn from tiles instead). */
  clear(): void;
  destroy(): void;
}

type Props = { id: string };

export function clusterLayer(map: L.Map, container: HTMLElement): ClusterLayer {
  const renderer = canvasRenderer({ padding: 0.2 });
  const group = L.layerGroup().addTo(map);
  let index: Supercluster<Props> | null = null;
  let loaded = 0;

  // Pages still arriving after the map was removed (the officer moved on) draw nothing.
  let removed = false;
  map.on("unload", () => (removed = true));
  const draw = () => {
    if (removed) return;
    group.clearLayers();
    if (!index) return;
    const b = map.getBounds();
    const zoom = Math.round(map.getZoom());
    const features = index.getClusters([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()], zoom);
    let points = 0;
    let clusters = 0;
    for (const f of features) {
      const [lon, lat] = f.geometry.coordinates as [number, number];
      const props = f.properties as Partial<ClusterProperties>;
      if (props.cluster) {
        const count = props.point_count ?? 0;
        clusters += 1;
        points += count;
        const size = count < 100 ? 30 : count < 1000 ? 38 : 46;
        L.marker([lat, lon], {
          interactive: false,
          keyboard: false,
          icon: L.divIcon({
            className: `camera-cluster camera-cluster--${size}`,
            html: `<span>${count >= 1000 ? `${Math.round(count / 100) / 10}k` : String(count)}</span>`,
            iconSize: [size, size],
          }),
        }).addTo(group);
      } else {
        points += 1;
        L.circleMarker([lat, lon], {
          renderer,
          radius: 5,
          color: "#1b1b1b",
          weight: 1,
          fillColor: "#00a91c",
          fillOpacity: 0.9,
          interactive: false,
        }).addTo(group);
      }
    }
    container.dataset.drawnPoints = String(points);
    container.dataset.drawnClusters = String(clusters);
    container.dataset.loaded = String(loaded);
  };
  map.on("moveend zoomend resize", draw);

  return {
    setCameras(cameras) {
      loaded = cameras.length;
      index = new Supercluster<Props>({ radius: 60, maxZoom: 16 });
      index.load(
        cameras.map((c) => ({
          type: "Feature" as const,
          geometry: { type: "Point" as const, coordinates: c.geometry.coordinates as [number, number] },
          properties: { id: c.id },
        })),
      );
      draw();
    },
    clear() {
      index = null;
      loaded = 0;
      group.clearLayers();
      delete container.dataset.drawnClusters;
    },
    destroy() {
      map.off("moveend zoomend resize", draw);
      group.remove();
    },
  };
}
