/** A camera's field of view as a polygon on the map (plain geometry: no map library needed). */

/** The field of view as a polygon: the camera's place, then an arc of `fov` degrees around its bearing. */
export function wedge(
  lat: number,
  lon: number,
  directionDeg: number,
  fovDeg: number,
  rangeM: number,
): [number, number][] {
  const points: [number, number][] = [[lat, lon]];
  const steps = Math.max(4, Math.ceil(fovDeg / 10));
  const metresPerDegLat = 111_320;
  const metresPerDegLon = 111_320 * Math.cos((lat * Math.PI) / 180);
  for (let i = 0; i <= steps; i++) {
    const bearing = ((directionDeg - fovDeg / 2 + (fovDeg * i) / steps) * Math.PI) / 180;
    points.push([
      lat + (rangeM * Math.cos(bearing)) / metresPerDegLat,
      lon + (rangeM * Math.sin(bearing)) / metresPerDegLon,
    ]);
  }
  if (fovDeg < 360) points.push([lat, lon]);
  return points;
}

/** The compass bearing (0 = north, 90 = east) from one place to another, in whole degrees. */
export function bearing(fromLat: number, fromLon: number, toLat: number, toLon: number): number {
  const dy = toLat - fromLat;
  const dx = (toLon - fromLon) * Math.cos((fromLat * Math.PI) / 180);
  const deg = (Math.atan2(dx, dy) * 180) / Math.PI;
  return Math.round((deg + 360) % 360) % 360;
}
