import { describe, expect, it } from "vitest";
import { byCount, cellAreaKm2, cellCentre, classOf, countClasses, gaps, neighbours, type CoverageCell } from "../src/coverage";

/** Hexagon (i, j) of ST_HexagonGrid(size) in plain x/y (as the API's lon/lat would be): flat-topped columns 1.5
 * size apart, odd columns half a row up — the layout PostGIS draws. */
function cell(i: number, j: number, cameras: number, size = 1): CoverageCell {
  const cx = 1.5 * size * i;
  const cy = Math.sqrt(3) * size * (j + (i & 1 ? 0.5 : 0));
  const corners: [number, number][] = [[-1, 0], [-0.5, -1], [0.5, -1], [1, 0], [0.5, 1], [-0.5, 1]].map(
    ([dx, dy]) => [cx + size * dx!, cy + ((size * Math.sqrt(3)) / 2) * dy!] as [number, number],
  );
  return {
    type: "Feature",
    id: `${size}/${i}/${j}`,
    geometry: { type: "Polygon", coordinates: [[...corners, corners[0]!]] },
    properties: { size_m: 1000, i, j, cameras },
  };
}

const distance = (a: CoverageCell, b: CoverageCell) => {
  const [ax, ay] = cellCentre(a);
  const [bx, by] = cellCentre(b);
  return Math.hypot(ax - bx, ay - by);
};

describe("the coverage cells", () => {
  it("finds exactly the six hexagons touching a cell as its neighbours, in even and odd columns", () => {
    for (const [i, j] of [[0, 0], [1, 0], [-1, -1], [4, 7], [-3, 2]] as [number, number][]) {
      const me = cell(i, j, 0);
      const found = neighbours(i, j).map(([x, y]) => distance(me, cell(x, y, 0)));
      // Touching hexagons of edge 1 have centres √3 apart; every other cell is farther.
      for (const d of found) expect(d).toBeCloseTo(Math.sqrt(3), 9);
      expect(new Set(neighbours(i, j).map((n) => n.join(","))).size).toBe(6);
    }
  });

  it("groups neighbouring empty cells into gaps, largest first", () => {
    const cells = [
      cell(0, 0, 0), cell(0, 1, 0), cell(1, 0, 0), // three touching empty cells
      cell(2, 0, 7), // a camera between them and the next gap
      cell(4, 0, 0), // a lone empty cell
      cell(6, 5, 3),
    ];
    const found = gaps(cells);
    expect(found.map((g) => g.cells)).toEqual([3, 1]);
    expect(found[0]!.areaKm2).toBeCloseTo(3 * cellAreaKm2(1000), 9);
    expect(found[1]!.centre[0]).toBeCloseTo(6, 9);
  });

  it("writes a cell's place as its centre, and lists the most cameras first", () => {
    expect(cellCentre(cell(2, 3, 1))[0]).toBeCloseTo(3, 9);
    expect(cellCentre(cell(2, 3, 1))[1]).toBeCloseTo(3 * Math.sqrt(3), 9);
    expect(byCount([cell(0, 0, 5), cell(0, 1, 20), cell(0, 2, 5)]).map((c) => c.id)).toEqual(["1/0/1", "1/0/2", "1/0/0"]);
  });

  it("makes legend classes that start at the smallest count and cover every count", () => {
    const counts = [5, 5, 10, 15, 25, 40, 60, 120];
    const classes = countClasses(counts);
    expect(classes[0]!.min).toBe(5);
    expect(classes.at(-1)!.max).toBeNull();
    for (const n of counts) expect(classOf(classes, n)).not.toBeNull();
    for (let i = 1; i < classes.length; i++) expect(classes[i - 1]!.max).toBe(classes[i]!.min - 1);
    expect(countClasses([0, 0])).toEqual([]);
    expect(countClasses([10]).map((c) => [c.min, c.max])).toEqual([[10, null]]);
  });
});
